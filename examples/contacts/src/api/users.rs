//! `/users/*`: register, log in (a bearer token), log out, ask for a password reset and complete
//! one. Each call runs through the hooks runtime as one of the framework's user operations
//! (`hooks::ops::users`), or, for the reset's second step, the service's own [`ResetPassword`];
//! the handlers of [`crate::handlers`] run around it.
//!
//! The request bodies keep the service's own shape (`{"email", "password", "name"}`); each
//! endpoint turns it into the framework's payload ([`NewUser`], [`Credentials`]) and wraps the
//! passwords in [`Secret`]s at once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hooks::ops::users::{Login, Logout, PasswordReset, Register};
use hooks::{Credentials, HookError, NewUser, ResetRequest, Secret, Session, User};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::App;
use crate::api::{ApiError, CurrentUser, JsonBody, Rid, context};
use crate::db::{self, now_ms};
use crate::handlers::login_policy::INVALID_CREDENTIALS;
use crate::users::{self, NewPassword, RESET_INTERVAL, RESET_MAX_LIVE, RESET_TTL, ResetPassword};
use crate::work::UnitOfWork;

/// What a client sends to register.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterForm {
    /// The email, which is also the login.
    #[serde(default)]
    pub email: String,
    /// The password.
    pub password: Secret,
    /// The display name.
    #[serde(default)]
    pub name: String,
}

impl From<RegisterForm> for NewUser {
    fn from(form: RegisterForm) -> Self {
        let mut fields = Map::new();
        fields.insert("name".into(), Value::String(form.name));
        NewUser {
            email: form.email,
            password: form.password,
            fields,
        }
    }
}

/// What a client sends to log in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    /// The email.
    #[serde(default)]
    pub email: String,
    /// The password.
    pub password: Secret,
}

/// What a client sends to ask for a password reset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetForm {
    /// The account's email (required: a request without one is a 400, not a silent 202).
    pub email: String,
}

/// `POST /users/register`: create an account; answers with the new [`User`].
pub async fn register(
    State(app): State<App>,
    rid: Rid,
    JsonBody(form): JsonBody<RegisterForm>,
) -> Result<Response, ApiError> {
    let (mut ctx, guard) = context(&app, &rid, None);
    let a = app.clone();
    let result = app
        .hooks
        .run::<Register, _, _>(&mut ctx, form.into(), |new| store_user(a, new))
        .await;
    let user = guard.finish(result).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

fn already_registered() -> HookError {
    HookError::conflict("this email is already registered")
}

async fn store_user(app: App, new: NewUser) -> Result<User, HookError> {
    let name = new.fields.get("name").and_then(Value::as_str).unwrap_or("");
    // The cheap check before the expensive hash: a taken email costs no Argon2 run. (Two new
    // registrations of one email may both get past it; the UNIQUE index still refuses one.)
    let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = ?")
        .bind(&new.email)
        .fetch_optional(&app.pool)
        .await
        .map_err(db::error)?;
    if taken.is_some() {
        return Err(already_registered());
    }
    let password_hash = app.passwords.hash(new.password).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, created) VALUES (?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(&new.email)
    .bind(name)
    .bind(&password_hash)
    .bind(now_ms())
    .fetch_one(&app.pool)
    .await
    .map_err(|e| match db::error(e) {
        e if e.status() == 409 => already_registered(),
        e => e,
    })?;
    Ok(users::user(id, new.email, &app.config))
}

/// `POST /users/login`: trade an email and password for a bearer token:
/// `{"token": "...", "user": {...}}`.
pub async fn login(
    State(app): State<App>,
    rid: Rid,
    JsonBody(form): JsonBody<LoginForm>,
) -> Result<Response, ApiError> {
    let (mut ctx, guard) = context(&app, &rid, None);
    let credentials = Credentials {
        login: form.email,
        password: form.password,
    };
    let a = app.clone();
    let result = app
        .hooks
        .run::<Login, _, _>(&mut ctx, credentials, |c| open_session(a, c))
        .await;
    let session = guard.finish(result).await?;
    // The one place the token leaves as itself: `Session` serializes it as `***`.
    Ok(Json(json!({ "token": session.token.expose(), "user": session.user })).into_response())
}

async fn open_session(app: App, credentials: Credentials) -> Result<Session, HookError> {
    let wrong = || HookError::new(401, INVALID_CREDENTIALS, "wrong email or password");
    let Some(stored) = users::by_email(&app.pool, &credentials.login).await? else {
        // An unknown email costs the same password check as a real one, so that how long the
        // answer takes does not tell which addresses have an account.
        app.passwords.verify_unknown(credentials.password).await?;
        return Err(wrong());
    };
    if !app
        .passwords
        .verify(credentials.password, stored.password_hash)
        .await?
    {
        return Err(wrong());
    }
    let token = users::new_token()?;
    sqlx::query("INSERT INTO sessions (token_hash, user_id, created) VALUES (?, ?, ?)")
        .bind(users::token_hash(&token))
        .bind(stored.id)
        .bind(now_ms())
        .execute(&app.pool)
        .await
        .map_err(db::error)?;
    Ok(Session {
        user: users::user(stored.id, stored.email, &app.config),
        token,
    })
}

/// `POST /users/logout`: end the session of the token sent.
pub async fn logout(
    State(app): State<App>,
    rid: Rid,
    current: CurrentUser,
) -> Result<Response, ApiError> {
    let (mut ctx, guard) = context(&app, &rid, Some(current.user.clone()));
    let session = Session {
        user: current.user,
        token: current.token,
    };
    let pool = app.pool.clone();
    let result = app
        .hooks
        .run::<Logout, _, _>(&mut ctx, session, |session| async move {
            sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
                .bind(users::token_hash(&session.token))
                .execute(&pool)
                .await
                .map_err(db::error)?;
            Ok(())
        })
        .await;
    guard.finish(result).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /users/password-reset`: queue a reset link for the address, if it has an account. The
/// answer is the same 202 either way, and whatever goes wrong on the server's side (a busy or
/// broken database is logged, and no link is sent): only a malformed request gets its 4xx.
///
/// A request never voids a link already sent. An account holds at most [`RESET_MAX_LIVE`] live
/// tokens, and a request while that many are live, or within [`RESET_INTERVAL`] of the last
/// one, sends nothing: at most [`RESET_MAX_LIVE`] messages an hour reach a mailbox.
pub async fn request_password_reset(
    State(app): State<App>,
    rid: Rid,
    JsonBody(form): JsonBody<ResetForm>,
) -> Result<Response, ApiError> {
    let (mut ctx, guard) = context(&app, &rid, None);
    let w = guard.work();
    let a = app.clone();
    let request = ResetRequest { email: form.email };
    let result = app
        .hooks
        .run::<PasswordReset, _, _>(&mut ctx, request, |request| async move {
            if let Err(e) = send_reset_link(&a, &w, &request.email).await {
                // Whatever it wrote goes: no token without its message, nor the reverse.
                w.roll_back().await;
                tracing::warn!(
                    code = e.code(),
                    message = ?e.message(),
                    "password reset request failed: no link sent"
                );
            }
            Ok(())
        })
        .await;
    match guard.finish(result).await {
        Ok(()) => {}
        // The commit failed, or a handler did: logged, and answered as any other request, so
        // that a 5xx does not tell that the address has an account.
        Err(e) if e.status() >= 500 => tracing::warn!(
            code = e.code(),
            message = ?e.message(),
            "password reset request failed: no link sent"
        ),
        Err(e) => return Err(e.into()),
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "accepted",
            "message": "if the address has an account, a reset link is on its way",
        })),
    )
        .into_response())
}

/// Queue a reset link for `email`'s account, if it has one and may get another now.
async fn send_reset_link(app: &App, w: &UnitOfWork, email: &str) -> Result<(), HookError> {
    let Some(user) = users::by_email(&app.pool, email).await? else {
        return Ok(());
    };
    let mut tx = w.tx().await?;
    // The write transaction holds the lock from these reads to the inserts, so two requests at
    // once take turns. Expired tokens are deleted; live ones never are, so no request voids a
    // link its owner is about to use.
    let now = now_ms();
    let ttl = i64::try_from(RESET_TTL.as_millis()).unwrap_or(i64::MAX);
    let interval = i64::try_from(RESET_INTERVAL.as_millis()).unwrap_or(i64::MAX);
    sqlx::query("DELETE FROM password_resets WHERE user_id = ? AND created <= ?")
        .bind(user.id)
        .bind(now.saturating_sub(ttl))
        .execute(tx.conn()?)
        .await
        .map_err(db::error)?;
    let (live, last): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MAX(created) FROM password_resets WHERE user_id = ?")
            .bind(user.id)
            .fetch_one(tx.conn()?)
            .await
            .map_err(db::error)?;
    if live >= RESET_MAX_LIVE {
        tracing::info!(
            user = user.id,
            "password reset asked with {live} live tokens: nothing sent"
        );
        return Ok(());
    }
    if last.is_some_and(|last| last > now.saturating_sub(interval)) {
        tracing::info!(
            user = user.id,
            "password reset asked again within {RESET_INTERVAL:?}: nothing sent"
        );
        return Ok(());
    }
    let token = users::new_token()?;
    sqlx::query("INSERT INTO password_resets (token_hash, user_id, created) VALUES (?, ?, ?)")
        .bind(users::token_hash(&token))
        .bind(user.id)
        .bind(now)
        .execute(tx.conn()?)
        .await
        .map_err(db::error)?;
    sqlx::query("INSERT INTO outbox (at, topic, payload) VALUES (?, ?, ?)")
        .bind(now)
        .bind("user.password_reset")
        .bind(json!({ "email": user.email, "token": token.expose() }).to_string())
        .execute(tx.conn()?)
        .await
        .map_err(db::error)?;
    Ok(())
}

/// `POST /users/password-reset/confirm`: set a new password with the token of a reset request.
/// The token works once and for an hour; every other reset token of the account is deleted with
/// it, the account is unlocked and its sessions end.
pub async fn reset_password(
    State(app): State<App>,
    rid: Rid,
    JsonBody(input): JsonBody<NewPassword>,
) -> Result<Response, ApiError> {
    let (mut ctx, guard) = context(&app, &rid, None);
    let w = guard.work();
    let passwords = app.passwords.clone();
    let pool = app.pool.clone();
    let result = app
        .hooks
        .run::<ResetPassword, _, _>(&mut ctx, input, |input| async move {
            let ttl = i64::try_from(RESET_TTL.as_millis()).unwrap_or(i64::MAX);
            let token_hash = users::token_hash(&input.token);
            let invalid = || {
                HookError::new(
                    400,
                    "invalid_reset_token",
                    "the reset token is unknown, used or expired",
                )
            };
            // The cheap check before the expensive hash: a bad token costs no Argon2 run. It
            // reads outside the transaction, so that no write lock is held while the hash runs.
            let valid: Option<i64> = sqlx::query_scalar(
                "SELECT user_id FROM password_resets WHERE token_hash = ? AND created > ?",
            )
            .bind(&token_hash)
            .bind(now_ms().saturating_sub(ttl))
            .fetch_optional(&pool)
            .await
            .map_err(db::error)?;
            if valid.is_none() {
                return Err(invalid());
            }
            let password_hash = passwords.hash(input.password).await?;
            // Taking the token is what makes it single-use: of two calls with one token, only
            // the one whose DELETE finds it sets the password.
            let mut tx = w.tx().await?;
            let user_id: Option<i64> = sqlx::query_scalar(
                "DELETE FROM password_resets WHERE token_hash = ? AND created > ? \
                 RETURNING user_id",
            )
            .bind(&token_hash)
            .bind(now_ms().saturating_sub(ttl))
            .fetch_optional(tx.conn()?)
            .await
            .map_err(db::error)?;
            let user_id = user_id.ok_or_else(invalid)?;
            // Every other token of the account goes too: a reset completed leaves no older
            // link (in a mailbox someone else may read) that resets the password again.
            sqlx::query("DELETE FROM password_resets WHERE user_id = ?")
                .bind(user_id)
                .execute(tx.conn()?)
                .await
                .map_err(db::error)?;
            sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                .bind(password_hash)
                .bind(user_id)
                .execute(tx.conn()?)
                .await
                .map_err(db::error)?;
            // Unlocked: the failed logins of its email are forgotten.
            sqlx::query(
                "DELETE FROM login_failures WHERE email = (SELECT email FROM users WHERE id = ?)",
            )
            .bind(user_id)
            .execute(tx.conn()?)
            .await
            .map_err(db::error)?;
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(user_id)
                .execute(tx.conn()?)
                .await
                .map_err(db::error)?;
            Ok(())
        })
        .await;
    guard.finish(result).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
