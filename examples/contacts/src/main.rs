//! The `contacts` service: `cargo run -p contacts -- --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use contacts::{App, Config, config::USAGE, listen, serve};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> ExitCode {
    let config =
        match Config::from_env_and_args(|k| std::env::var(k).ok(), std::env::args().skip(1)) {
            Ok(Some(config)) => config,
            Ok(None) => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("contacts: {e}");
                return ExitCode::from(2);
            }
        };
    let filter: Targets = match config.log.parse() {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("contacts: --log `{}`: {e}", config.log);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();

    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("contacts: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = App::open(config).await?;
    let listener = listen(&app).await?;
    let addr = listener.local_addr()?;
    let catalog = app.hooks.catalog();
    if app.config.no_hooks {
        println!("hooks switched off (--no-hooks): every call runs its default logic only");
    }
    println!("{} hook handlers registered", catalog.handlers.len());
    print!("{catalog}");
    println!("listening on http://{addr}");
    tracing::info!(%addr, database = ?app.config.database, no_hooks = app.config.no_hooks, "started");
    serve(listener, app, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
