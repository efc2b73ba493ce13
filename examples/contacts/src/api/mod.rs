//! The HTTP API: routes, the error body every failure gets, and the extractors that turn bad
//! input into those errors (malformed JSON 400, too large 413, missing or bad token 401, a user
//! who is not an admin 403).
//!
//! | route | what |
//! |---|---|
//! | `POST /data/{table}` | create a record |
//! | `GET /data/{table}?where=&sortBy=&pageSize=&offset=` | find records |
//! | `GET/PUT/DELETE /data/{table}/{id}` | read, change (only the fields sent), delete a record |
//! | `POST /data/bulk/{table}` | create the records of a JSON array (at most `--bulk-max`), all or none |
//! | `PUT /data/bulk/{table}?where=` | change the fields sent in every record `where` selects → `{"updated": n}` |
//! | `DELETE /data/bulk/{table}?where=` | delete every record `where` selects → `{"deleted": n}` |
//! | `POST /users/register`, `/users/login`, `/users/logout` | accounts and sessions |
//! | `POST /users/password-reset`, `/users/password-reset/confirm` | ask for a reset token; use it |
//! | `GET /health` | 200 while the database answers |
//! | `GET /hooks` | the hooks catalog (events, handlers, execution history), as JSON; admins only |
//!
//! Every error is `{"status": 400, "code": "rejected", "message": "..."}`, with the HTTP status
//! of the same number: a hook's rejection reaches the client exactly as the hook wrote it.

pub mod data;
pub mod query;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hooks::{Catalog, Context, HookError, Secret, User};
use hyper::body::Bytes;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::App;
use crate::users::{ADMIN, user_for_token};
use crate::work::{UnitOfWork, WorkGuard};

/// The service's routes over `app`.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/data/{table}", post(data::create).get(data::find))
        .route(
            "/data/{table}/{id}",
            get(data::find_by_id).put(data::update).delete(data::delete),
        )
        .route(
            "/data/bulk/{table}",
            post(data::bulk_create)
                .put(data::bulk_update)
                .delete(data::bulk_delete),
        )
        .route("/users/register", post(users::register))
        .route("/users/login", post(users::login))
        .route("/users/logout", post(users::logout))
        .route("/users/password-reset", post(users::request_password_reset))
        .route("/users/password-reset/confirm", post(users::reset_password))
        .route("/health", get(health))
        .route("/hooks", get(hooks_catalog))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(app.config.body_limit))
        .layer(middleware::from_fn_with_state(
            app.config.request_timeout,
            bounded,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

/// A failed call, answered as JSON with the error's status.
#[derive(Debug)]
pub struct ApiError(pub HookError);

impl From<HookError> for ApiError {
    fn from(e: HookError) -> Self {
        ApiError(e)
    }
}

/// How many seconds a 503's `Retry-After` asks a client to wait: a busy database or password
/// hashing frees up within moments.
pub const RETRY_AFTER_SECS: u32 = 1;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Whatever wrote the message (serde, the framework, a handler), it quotes at most a
        // short prefix of each thing the client sent, to the client and to the log alike.
        let error = crate::db::echoed(self.0);
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // The message often quotes what the client sent: logged with `?`, quoted and escaped, so
        // that a line break in it cannot forge a log line.
        let (code, message) = (error.code(), error.message());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Busy, not broken: a client may send the same call again shortly.
            tracing::warn!(code, message = ?message, "unavailable");
            let retry = [(RETRY_AFTER, RETRY_AFTER_SECS.to_string())];
            return (status, retry, Json(error)).into_response();
        }
        if status.is_server_error() {
            tracing::error!(code, message = ?message, "failed");
        } else {
            tracing::info!(code, message = ?message, "refused");
        }
        (status, Json(error)).into_response()
    }
}

/// The id of one request, for logs and for the hook context.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Give each request an id and a tracing span, and log its outcome.
async fn track(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let id: Arc<str> = format!("r{}", app.next_request_id()).into();
    request.extensions_mut().insert(RequestId(Arc::clone(&id)));
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "answered"));
    response
}

/// Answer 408 when a request takes longer than `limit`, from its head to its answer: a client
/// that stalls in the middle of its body does not hold a connection and a task for ever. What
/// the request was doing is dropped, its transaction rolled back.
async fn bounded(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError(HookError::new(
            408,
            "request_timeout",
            format!("the request took longer than {limit:?}"),
        ))
        .into_response(),
    }
}

async fn no_route() -> ApiError {
    ApiError(HookError::not_found("no such route"))
}

async fn wrong_method() -> ApiError {
    ApiError(HookError::new(
        405,
        "method_not_allowed",
        "this route does not take that method",
    ))
}

/// `GET /health`: 200 while the database answers a query.
async fn health(State(app): State<App>) -> Result<Json<serde_json::Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&app.pool)
        .await
        .map_err(crate::db::error)?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// `GET /hooks`: the framework's catalog: every event with its subscriber count, every handler
/// with its settings, source location and execution history. It tells how the service works
/// inside and what its handlers have been failing at, so only an admin reads it.
async fn hooks_catalog(State(app): State<App>, _admin: Admin) -> Json<Catalog> {
    Json(app.hooks.catalog())
}

/// The hook context of one client call, with the call's unit of work as an extension, and the
/// guard that ends the unit of work.
pub fn context(app: &App, request: &RequestId, user: Option<User>) -> (Context, WorkGuard) {
    let (work, guard) = UnitOfWork::begin(app.pool.clone());
    let mut ctx = Context::client()
        .with_request_id(Arc::clone(&request.0))
        .with_extension(app.clone())
        .with_extension(work);
    if let Some(user) = user {
        ctx = ctx.with_user(user);
    }
    (ctx, guard)
}

/// A JSON body: a 400 when it is not JSON of the expected shape, a 413 when it is over the
/// limit.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|r| {
            let status = r.status().as_u16();
            ApiError(if status == 413 {
                HookError::payload_too_large(r.body_text())
            } else {
                HookError::new(status, "bad_request", r.body_text())
            })
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            // serde quotes what it could not take (a whole string value, an unknown key):
            // each quote cut short.
            let reason = crate::db::echo_quoted(&e.to_string());
            ApiError(HookError::bad_request(format!("malformed JSON: {reason}")))
        })
    }
}

/// The user a valid bearer token belongs to; a 401 without one.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The user, as the hook context carries it.
    pub user: User,
    /// The bearer token (a logout ends its session).
    pub token: Secret,
}

impl FromRequestParts<App> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| HookError::unauthorized("send `Authorization: Bearer <token>`"))?;
        // The scheme is case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                HookError::unauthorized("the Authorization header is not `Bearer <token>`")
            })?;
        let token = Secret::new(token);
        let user = user_for_token(&app.pool, &token, &app.config)
            .await?
            .ok_or_else(|| {
                HookError::unauthorized("the token is unknown, expired or logged out")
            })?;
        Ok(CurrentUser { user, token })
    }
}

/// A [`CurrentUser`] with the `admin` role ([`crate::config::Config::admins`]): a 401 without a
/// valid token, as for any signed-in route, and a 403 for a user who is not an admin.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let current = CurrentUser::from_request_parts(parts, app).await?;
        if !current.user.has_role(ADMIN) {
            return Err(ApiError(HookError::forbidden("only an admin may do this")));
        }
        Ok(Admin(current))
    }
}

/// Turn an extractor's rejection into the JSON error body.
pub fn rejection(status: StatusCode, text: String) -> ApiError {
    ApiError(HookError::new(status.as_u16(), "bad_request", text))
}

/// The request id, which the request-tracking middleware always sets.
pub type Rid = Extension<RequestId>;

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_error_quotes_at_most_a_short_prefix_of_the_client_input_to_the_client_and_the_log() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let long = "x".repeat(60_000);
        let response = tracing::subscriber::with_default(subscriber, || {
            let serde = format!("invalid type: string {long:?}, expected a map");
            ApiError(HookError::bad_request(serde)).into_response()
        });
        let logged = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let too_long = "x".repeat(crate::db::ECHO_MAX + 1);
        assert!(!logged.contains(&too_long), "{} bytes logged", logged.len());
        assert!(
            logged.contains(&"x".repeat(crate::db::ECHO_MAX)),
            "{logged}"
        );
        let length = hyper::body::Body::size_hint(response.body()).exact();
        assert!(length.is_some_and(|n| n < 200), "{length:?} bytes answered");
    }

    #[test]
    fn a_client_text_in_an_error_cannot_forge_a_log_line() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let forged = "x\n2026-12-07T00:00:00Z  WARN contacts: FORGED\0";
            let _ = ApiError(HookError::not_found(forged)).into_response();
        });
        let logged = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged.lines().count(), 1, "{logged:?}");
        assert!(logged.contains(r"x\n2026"), "{logged:?}");
        assert!(!logged.contains('\0'), "{logged:?}");
    }
}
