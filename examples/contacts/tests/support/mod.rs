//! What the end-to-end tests share: a service on a free loopback port with a temporary SQLite
//! file, a small JSON client, and a stub of a third-party endpoint.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contacts::http::{self, Response};
use contacts::{Config, Database, Service};
use hyper::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A generous bound on one request, so a hung service fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running service and the temporary directory of its database.
pub struct Running {
    pub service: Service,
    pub dir: TempDir,
}

/// Settings for a test service keeping its data in `dir`.
pub fn config(dir: &TempDir) -> Config {
    Config {
        database: Database::File(dir.path().join("contacts.db")),
        ..Config::for_tests()
    }
}

/// Start a service on a fresh database, with `tweak` applied to its settings.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = config(&dir);
    tweak(&mut config);
    let service = contacts::start(config).await.expect("the service starts");
    Running { service, dir }
}

/// Start a service on a fresh database.
pub async fn start() -> Running {
    start_with(|_| {}).await
}

/// The email that [`admin`] names as the service's admin.
pub const ADMIN: &str = "ops@example.com";

/// Name [`ADMIN`] the service's admin, as `--admin ops@example.com` does: a tweak for
/// [`start_with`]. The account is the tests' to register (`sign_up(ADMIN)`).
pub fn admin(config: &mut Config) {
    config.admins = vec![ADMIN.to_owned()];
}

/// A client of one service, signed in or not.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub token: Option<String>,
}

impl Client {
    pub fn new(service: &Service) -> Self {
        Client {
            url: service.url(),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Client {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// Send raw bytes, with extra headers.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            all.push(("authorization", auth));
        }
        all.extend_from_slice(headers);
        http::send(method, &format!("{}{path}", self.url), &all, body, PATIENCE)
            .await
            .expect("the service answers")
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let r = self.raw(method, path, &[], bytes).await;
        (r.status, r.json())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(Method::DELETE, path, None).await
    }

    /// Register `email` (password `correct horse`) and return a client signed in as it.
    pub async fn sign_up(&self, email: &str) -> Client {
        let (status, body) = self
            .post(
                "/users/register",
                json!({ "email": email, "password": "correct horse", "name": email }),
            )
            .await;
        assert_eq!(status, 201, "register {email}: {body}");
        self.sign_in(email, "correct horse").await
    }

    /// Log in and return a client signed in as `email`.
    pub async fn sign_in(&self, email: &str, password: &str) -> Client {
        let (status, body) = self
            .post(
                "/users/login",
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        let token = body["token"].as_str().expect("a token");
        self.with_token(token)
    }
}

/// `s` percent-encoded for a query string (every byte but unreserved ones).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Rows of a one-column query on the service's database.
pub async fn column(service: &Service, sql: &'static str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(sql)
        .fetch_all(&service.app().pool)
        .await
        .expect("the query runs")
}

/// The number of rows of a table.
pub async fn count(service: &Service, table: &str) -> i64 {
    let sql = match table {
        "contacts" => "SELECT COUNT(*) FROM contacts",
        "notes" => "SELECT COUNT(*) FROM notes",
        "audit" => "SELECT COUNT(*) FROM audit",
        "outbox" => "SELECT COUNT(*) FROM outbox",
        "password_resets" => "SELECT COUNT(*) FROM password_resets",
        other => panic!("no table {other} to count"),
    };
    sqlx::query_scalar(sql)
        .fetch_one(&service.app().pool)
        .await
        .expect("the count runs")
}

/// A stub of a third-party endpoint on a free loopback port: it records each JSON body it
/// receives, after an optional delay, and answers 200.
pub struct Stub {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Value>>>,
}

pub async fn stub(delay: Duration) -> Stub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let record = Arc::clone(&record);
            async move {
                tokio::time::sleep(delay).await;
                record.lock().expect("the stub's lock").push(body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stub { url, seen }
}

impl Stub {
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().expect("the stub's lock").clone()
    }
}
