//! `/users/*`: register, log in (a bearer token), log out, ask for a password reset. Each call
//! runs through the hooks runtime as one of the service's own operations ([`crate::users`]).
//!
//! The framework has no attributes for these operations yet (issue 3), so their handlers are
//! called here by hand, around `Hooks::run`, in the order the dispatcher would call them: before
//! handlers first (a rejection skips the rest), the after handlers on the result, success or not.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hooks::HookError;
use serde_json::json;

use crate::App;
use crate::api::{ApiError, CurrentUser, JsonBody, Rid, context};
use crate::db::{self, now_ms};
use crate::handlers::{login_policy, validation};
use crate::users::{
    self, Account, Credentials, Login, Logout, NewPassword, NewUser, RESET_TTL, Register,
    RequestPasswordReset, ResetPassword, ResetRequest, Session, SessionKey,
};

/// `POST /users/register`: create an account.
pub async fn register(
    State(app): State<App>,
    rid: Rid,
    JsonBody(mut input): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let (mut ctx, work) = context(&app, &rid, None);
    // TODO(issue 3): switch to #[before_register]: these two become attributes on the handlers.
    let before = validation::validate_registration(&mut input, &ctx)
        .and_then(|()| login_policy::reject_banned_domain(&mut input, &ctx));
    let result = match before {
        Err(e) => Err(e),
        Ok(()) => {
            app.hooks
                .run::<Register, _, _>(&mut ctx, input, |user| store_user(app.clone(), user))
                .await
        }
    };
    let account = work.finish(result, &app.background).await?;
    Ok((StatusCode::CREATED, Json(account)).into_response())
}

async fn store_user(app: App, user: NewUser) -> Result<Account, HookError> {
    let password_hash = users::hash_password(user.password, app.config.password_cost).await?;
    let created = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, created) VALUES (?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(&user.email)
    .bind(&user.name)
    .bind(&password_hash)
    .bind(created)
    .fetch_one(&app.pool)
    .await
    .map_err(|e| match db::error(e) {
        e if e.status() == 409 => HookError::conflict("this email is already registered"),
        e => e,
    })?;
    Ok(Account {
        id,
        email: user.email,
        name: user.name,
        created,
    })
}

/// `POST /users/login`: trade an email and password for a bearer token.
pub async fn login(
    State(app): State<App>,
    rid: Rid,
    JsonBody(mut input): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let (mut ctx, work) = context(&app, &rid, None);
    // TODO(issue 3): switch to #[before_login] / #[after_login] on the login policy handlers.
    let mut result = match login_policy::reject_locked_account(&mut input, &ctx).await {
        Err(e) => Err(e),
        Ok(()) => {
            app.hooks
                .run::<Login, _, _>(&mut ctx, input, |c| open_session(app.clone(), c))
                .await
        }
    };
    if let Err(e) = login_policy::count_failed_logins(&mut result, &ctx).await {
        result = Err(e);
    }
    let session = work.finish(result, &app.background).await?;
    Ok(Json(session).into_response())
}

async fn open_session(app: App, credentials: Credentials) -> Result<Session, HookError> {
    let wrong = || {
        HookError::new(
            401,
            login_policy::INVALID_CREDENTIALS,
            "wrong email or password",
        )
    };
    let stored = users::by_email(&app.pool, &credentials.email)
        .await?
        .ok_or_else(wrong)?;
    if !users::verify_password(credentials.password, stored.password_hash).await {
        return Err(wrong());
    }
    let token = users::new_token()?;
    sqlx::query("INSERT INTO sessions (token_hash, user_id, created) VALUES (?, ?, ?)")
        .bind(users::token_hash(&token))
        .bind(stored.account.id)
        .bind(now_ms())
        .execute(&app.pool)
        .await
        .map_err(db::error)?;
    Ok(Session {
        token,
        user: stored.account,
    })
}

/// `POST /users/logout`: end the session of the token sent.
pub async fn logout(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
) -> Result<Response, ApiError> {
    let (mut ctx, work) = context(&app, &rid, Some(user.user));
    let pool = app.pool.clone();
    let result = app
        .hooks
        .run::<Logout, _, _>(&mut ctx, user.session, |key: SessionKey| async move {
            sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
                .bind(key.token_hash)
                .execute(&pool)
                .await
                .map_err(db::error)?;
            Ok(())
        })
        .await;
    work.finish(result, &app.background).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /users/password-reset`: queue a reset link for the address, if it has an account. The
/// answer is the same either way.
pub async fn request_password_reset(
    State(app): State<App>,
    rid: Rid,
    JsonBody(input): JsonBody<ResetRequest>,
) -> Result<Response, ApiError> {
    let (mut ctx, work) = context(&app, &rid, None);
    let w = work.clone();
    let a = app.clone();
    let result = app
        .hooks
        .run::<RequestPasswordReset, _, _>(&mut ctx, input, |request| async move {
            let Some(user) = users::by_email(&a.pool, &request.email).await? else {
                return Ok(());
            };
            let token = users::new_token()?;
            let mut tx = w.tx().await?;
            sqlx::query(
                "INSERT INTO password_resets (token_hash, user_id, created) VALUES (?, ?, ?)",
            )
            .bind(users::token_hash(&token))
            .bind(user.account.id)
            .bind(now_ms())
            .execute(tx.conn()?)
            .await
            .map_err(db::error)?;
            sqlx::query("INSERT INTO outbox (at, topic, payload) VALUES (?, ?, ?)")
                .bind(now_ms())
                .bind("user.password_reset")
                .bind(json!({ "email": user.account.email, "token": token }).to_string())
                .execute(tx.conn()?)
                .await
                .map_err(db::error)?;
            Ok(())
        })
        .await;
    work.finish(result, &app.background).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "accepted",
            "message": "if the address has an account, a reset link is on its way",
        })),
    )
        .into_response())
}

/// `POST /users/password-reset/confirm`: set a new password with the token of a reset request.
/// The token works once and for an hour; the account is unlocked and its sessions end.
pub async fn reset_password(
    State(app): State<App>,
    rid: Rid,
    JsonBody(mut input): JsonBody<NewPassword>,
) -> Result<Response, ApiError> {
    let (mut ctx, work) = context(&app, &rid, None);
    // TODO(issue 3): switch to #[before_password_reset_confirm] on the validation handler.
    let result = match validation::validate_new_password(&mut input, &ctx) {
        Err(e) => Err(e),
        Ok(()) => {
            let w = work.clone();
            let cost = app.config.password_cost;
            app.hooks
                .run::<ResetPassword, _, _>(&mut ctx, input, |input| async move {
                    let password_hash = users::hash_password(input.password, cost).await?;
                    let ttl = i64::try_from(RESET_TTL.as_millis()).unwrap_or(i64::MAX);
                    let mut tx = w.tx().await?;
                    let user_id: Option<i64> = sqlx::query_scalar(
                        "DELETE FROM password_resets WHERE token_hash = ? AND created > ? \
                         RETURNING user_id",
                    )
                    .bind(users::token_hash(&input.token))
                    .bind(now_ms().saturating_sub(ttl))
                    .fetch_optional(tx.conn()?)
                    .await
                    .map_err(db::error)?;
                    let user_id = user_id.ok_or_else(|| {
                        HookError::new(
                            400,
                            "invalid_reset_token",
                            "the reset token is unknown, used or expired",
                        )
                    })?;
                    sqlx::query(
                        "UPDATE users SET password_hash = ?, failed_logins = 0, \
                         locked_until = NULL WHERE id = ?",
                    )
                    .bind(password_hash)
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
                .await
        }
    };
    work.finish(result, &app.background).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
