//! # contacts
//!
//! A contacts service on axum, tokio and SQLite (through sqlx) that shows what the `hooks`
//! framework is for: a BaaS-style data and user API where every call runs through the hooks
//! runtime, and hook handlers for each classic use case (validation, a login policy, an audit
//! trail, injected properties, shaped responses, notifications, a third-party integration), each in
//! its own module under [`handlers`].
//!
//! Run it with `cargo run -p contacts` (see `examples/contacts/README.md`); start it from code with
//! [`start`], as the end-to-end tests do.
#![deny(missing_docs)]

pub mod api;
pub mod config;
pub mod db;
pub mod handlers;
pub mod http;
pub mod model;
pub mod users;
pub mod work;

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hooks::{AfterFailure, Hooks, HooksBuilder, Table, TableError};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sqlx::sqlite::SqlitePool;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Config, Database};

/// The service's state: the hooks runtime, the database, the settings. Every request's hook
/// context carries it as an extension. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The hooks runtime.
    pub hooks: Hooks,
    /// The database.
    pub pool: SqlitePool,
    /// The settings.
    pub config: Arc<Config>,
    /// Password hashing, with a bound on how many hashes run at once.
    pub passwords: users::Passwords,
    /// The tokio runtime the service runs on (background handlers run their I/O there).
    pub runtime: Handle,
    requests: Arc<AtomicU64>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the service did not start.
#[derive(Debug)]
pub enum StartError {
    /// The hook handlers linked into the binary do not form a valid table.
    Hooks(TableError),
    /// The database could not be opened or migrated.
    Database(String),
    /// The port could not be bound.
    Listen(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Hooks(e) => write!(f, "{e}"),
            StartError::Database(e) => write!(f, "the database: {e}"),
            StartError::Listen(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl App {
    /// Build the hook table ([`hooks_builder`]), open and migrate the database. Call it inside
    /// the tokio runtime the service is to run on.
    pub async fn open(config: Config) -> Result<App, StartError> {
        let hooks = hooks_builder(&config)
            .and_then(HooksBuilder::build)
            .map_err(StartError::Hooks)?;
        App::with_hooks(config, hooks).await
    }

    /// [`App::open`] with `hooks` as its runtime (a test's, say, built from [`hooks_builder`]
    /// with a shorter timeout).
    pub async fn with_hooks(config: Config, hooks: Hooks) -> Result<App, StartError> {
        let pool = db::connect(&config.database)
            .await
            .map_err(|e| StartError::Database(e.to_string()))?;
        Ok(App {
            hooks,
            pool,
            passwords: users::Passwords::for_this_machine(config.password_cost),
            config: Arc::new(config),
            runtime: Handle::current(),
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The next request's number.
    pub fn next_request_id(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The settings of the service's hooks runtime, as [`App::open`] builds it.
///
/// An after handler that panics or times out fails its call ([`AfterFailure::Fail`]), and the
/// call's unit of work rolls back: the audit rows and outbox messages the after handlers write
/// are part of the call's all-or-nothing write, so a change never commits without them (under
/// the framework's default, `AfterFailure::Keep`, the call would commit without the rows the
/// failed handler did not write). It also keeps a response whose redaction failed half-way from
/// reaching a client. With [`Config::no_hooks`], the table is empty.
pub fn hooks_builder(config: &Config) -> Result<HooksBuilder, TableError> {
    let builder = Hooks::builder().after_failure(AfterFailure::Fail);
    if config.no_hooks {
        // An empty table: every call finds no handler and runs its default logic only.
        Ok(builder.table(Table::from_registrations(std::iter::empty())?))
    } else {
        Ok(builder)
    }
}

/// Listen on 127.0.0.1 at the configured port (0 for any free one).
pub async fn listen(app: &App) -> Result<TcpListener, StartError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, app.config.port))
        .await
        .map_err(StartError::Listen)
}

/// Serve `app` on `listener` until `shutdown` resolves; then finish the requests in flight (for up
/// to the configured shutdown deadline, after which they are dropped), the queued background
/// handlers (for up to the same deadline), and close the database.
///
/// Each connection reads with hyper's HTTP/1 server directly rather than through `axum::serve`,
/// for the timeouts a service exposed to slow or stalled clients needs: a request's head must
/// arrive within [`Config::header_timeout`], and the whole request, body and answer, is bounded
/// by [`Config::request_timeout`] ([`api::router`]).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = api::router(app.clone());
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(app.config.header_timeout)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    let deadline = app.config.shutdown_deadline;
    tracing::info!("no longer accepting requests; finishing the requests in flight");
    if tokio::time::timeout(deadline, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {deadline:?}: dropped");
    }
    tracing::info!("finishing background handlers");
    finish_background(&app.hooks, deadline).await;
    app.pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Close the hooks runtime's background queue and wait, up to `deadline`, for every queued
/// handler to finish. `Hooks::shutdown` blocks its thread, so it runs on a blocking thread while
/// this runtime stays free to drive what the handlers wait for.
async fn finish_background(hooks: &Hooks, deadline: Duration) {
    let hooks = hooks.clone();
    match tokio::task::spawn_blocking(move || hooks.shutdown(deadline)).await {
        Ok(Ok(stats)) => tracing::info!(
            queued = stats.queued,
            finished = stats.finished,
            refused = stats.refused,
            "background handlers finished"
        ),
        Ok(Err(e)) => tracing::error!(code = e.code(), "{}", e.message()),
        Err(e) => tracing::error!(error = %e, "the background shutdown stopped"),
    }
}

/// A service running in this process (see [`start`]).
#[derive(Debug)]
pub struct Service {
    addr: SocketAddr,
    app: App,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Start the service in this process, on its own task: what the end-to-end tests use.
pub async fn start(config: Config) -> Result<Service, StartError> {
    let app = App::open(config).await?;
    let listener = listen(&app).await?;
    let addr = listener.local_addr().map_err(StartError::Listen)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    Ok(Service {
        addr,
        app,
        stop: Some(stop),
        task,
    })
}

impl Service {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, such as `http://127.0.0.1:4321`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its state (the database, for tests that look behind the API).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Shut down gracefully and wait until it has.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }
}
