//! The `account-service` binary: read settings, start, run until a signal.

use std::io::Write;
use std::process::ExitCode;

use account_service::cli::{Cli, Command};
use account_service::config::{ConfigError, Settings};
use account_service::startup::Application;
use account_service::telemetry;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is reported by line, never
    // with its content (it holds secrets).
    if let Err(e) = dotenvy::from_path(DOTENV) {
        if !e.not_found() {
            eprintln!("{}", dotenv_error(&e));
            return ExitCode::from(2);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match ConfigError::from_clap(&e) {
            Some(bad) => {
                eprintln!("{bad}");
                return ExitCode::from(2);
            }
            // Help, version and usage errors, as clap renders them.
            None => e.exit(),
        },
    };
    // Creating a key needs no settings: it works before any are configured.
    let command = match cli.command.unwrap_or(Command::Serve) {
        Command::ApiKey(command) => return api_key(command),
        command => command,
    };
    let settings = match cli.settings.check() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let exporter = telemetry::init(
        &settings.telemetry.rust_log,
        settings.telemetry.log_format(),
    );

    match command {
        Command::Serve => {
            let code = serve(settings).await;
            if let Some(exporter) = exporter {
                exporter.shutdown();
            }
            code
        }
        Command::Migrate => migrate(settings).await,
        Command::CheckConfig => {
            // The files the settings name are checked here as at start-up:
            // the callers, the signing key, the certificates and the mail text.
            if let Some(path) = settings.access.api_keys_file() {
                if let Err(e) = account_service::access::Callers::load(path) {
                    eprintln!("invalid API_KEYS_FILE: {e}");
                    return ExitCode::from(2);
                }
            }
            if let Some(path) = settings.sessions.signing_key_file() {
                if let Err(e) = account_service::auth::SigningKeys::from_pem_file(path) {
                    eprintln!("invalid {e:#}");
                    return ExitCode::from(2);
                }
            }
            if let Some(files) = settings.access.tls() {
                if let Err(e) = account_service::tls::Tls::load(files) {
                    eprintln!("invalid TLS files: {e:#}");
                    return ExitCode::from(2);
                }
            }
            let catalogues = match account_service::mail::Catalogues::load(
                &settings.mail.default_locale,
                settings.mail.templates_dir.as_deref(),
            ) {
                Ok(catalogues) => catalogues,
                Err(e) => {
                    eprintln!("invalid mail text: {e}");
                    return ExitCode::from(2);
                }
            };
            // A closed stdout (`| head`) is not an error worth a panic.
            let _ = writeln!(
                std::io::stdout(),
                "configuration is valid:\n{settings:#?}\nmail locales: {} (default {})",
                catalogues.locales().join(", "),
                catalogues.default_locale()
            );
            ExitCode::SUCCESS
        }
        Command::Outbox(command) => outbox(settings, command).await,
        Command::ImportDjango { from } => import_django(settings, &from).await,
        Command::ApiKey(command) => api_key(command),
    }
}

fn api_key(command: account_service::cli::ApiKeyCommand) -> ExitCode {
    match account_service::admin::run_api_key(command, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

/// The settings file read at start-up, in the working directory.
const DOTENV: &str = ".env";

/// What went wrong with the `.env` file, naming the file and the line but
/// not repeating what the line says.
fn dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(line, _) => {
            let number = std::fs::read_to_string(DOTENV).ok().and_then(|text| {
                let first = line.lines().next().unwrap_or_default();
                text.lines().position(|l| l == first).map(|i| i + 1)
            });
            match number {
                Some(n) => format!(
                    "cannot read {DOTENV}: line {n} is not KEY=VALUE (its content is not shown)"
                ),
                None => format!(
                    "cannot read {DOTENV}: a line is not KEY=VALUE (its content is not shown)"
                ),
            }
        }
        dotenvy::Error::Io(io) => format!("cannot read {DOTENV}: {io}"),
        dotenvy::Error::EnvVar(_) => {
            format!("cannot read {DOTENV}: a value is not valid Unicode (not shown)")
        }
        _ => format!("cannot read {DOTENV}"),
    }
}

async fn migrate(settings: Settings) -> ExitCode {
    let migrated = async {
        let storage = account_service::storage::open(
            &settings.database.database_url,
            settings.database.pool(),
        )?;
        let result = storage.migrate().await;
        storage.close().await;
        result
    };
    match migrated.await {
        Ok(()) => {
            let _ = writeln!(std::io::stdout(), "migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "cannot migrate the database named by DATABASE_URL: {}",
                account_service::telemetry::error_chain(&e)
            );
            ExitCode::FAILURE
        }
    }
}

/// The database for an operator's command: opened, and checked to have this
/// binary's schema (such commands never migrate).
async fn operator_storage(
    settings: &Settings,
) -> Result<std::sync::Arc<dyn account_service::storage::Storage>, ExitCode> {
    let storage = match account_service::storage::open(
        &settings.database.database_url,
        settings.database.pool(),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the database named by DATABASE_URL: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    if let Err(e) = storage.check_schema().await {
        storage.close().await;
        eprintln!(
            "cannot use the database named by DATABASE_URL: {}",
            account_service::telemetry::error_chain(&e)
        );
        return Err(ExitCode::FAILURE);
    }
    Ok(storage)
}

async fn outbox(settings: Settings, command: account_service::cli::OutboxCommand) -> ExitCode {
    // Operators' commands never change the schema: they work on a database
    // that `account-service migrate` brought up to this binary's version.
    let storage = match operator_storage(&settings).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    let result = account_service::admin::run_outbox(storage.as_ref(), command, &mut out).await;
    storage.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn import_django(settings: Settings, from: &std::path::Path) -> ExitCode {
    let storage = match operator_storage(&settings).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    let result = account_service::admin::run_import(storage.as_ref(), from, &mut out).await;
    storage.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    if settings.security.using_development_key() {
        tracing::warn!(
            "SECRET_KEY is not set: confirmation links are signed with the public development key, \
             so anyone can forge them. Set SECRET_KEY to a long random value outside local development."
        );
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let (Ok(grpc), Ok(http)) = (app.grpc_addr(), app.http_addr()) {
        tracing::info!(%grpc, %http, "account-service listening");
    }
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("stopped on error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for SIGINT: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
