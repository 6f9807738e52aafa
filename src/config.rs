//! Settings from the environment, a `.env` file or command-line flags,
//! validated once at start-up; secrets are redacted in `Debug`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::telemetry::LogFormat;

/// Signs tokens when SECRET_KEY is unset, so the service starts on a laptop
/// with no setup. Anyone can forge tokens with it: never use it in production.
pub const DEVELOPMENT_SECRET_KEY: &str = "development-only-secret-key-do-not-use-in-production";

#[derive(Debug, Parser)]
#[command(
    name = "account-service",
    version,
    about = "gRPC account service: registration, confirmation e-mail, account lookup",
    long_about = "gRPC account service: registration, confirmation e-mail, account lookup.\n\n\
Every setting is read from a flag, else from the environment (a .env file in the \
working directory is loaded first), else from its default."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: RawSettings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC, the HTTP sidecar and the mail worker until SIGINT/SIGTERM (the default).
    Serve,
    /// Apply the database migrations, then exit.
    Migrate,
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig,
    /// Inspect the mail outbox and replay dead letters.
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Counts of messages by state, and the age of the oldest pending one.
    Status,
    /// The dead letters, newest first, one line each.
    Failed {
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Send dead letters back to the queue, with their attempts reset.
    Retry {
        /// The dead letter's id, as `outbox failed` shows it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// Settings as given, before validation.
#[derive(Debug, Clone, Args)]
pub struct RawSettings {
    /// Database: sqlite://PATH (created when missing) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://account.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Address the gRPC server listens on.
    #[arg(long, env = "GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: String,
    /// Address the HTTP sidecar (confirmation link, probes) listens on.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: String,
    /// Base URL of the HTTP sidecar as shoppers reach it; confirmation links start with it.
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://localhost:8080")]
    pub public_base_url: String,
    /// Key that signs confirmation tokens (HS256). Unset: a development key, with a warning.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The previous SECRET_KEY during a rotation: tokens it signed still verify.
    #[arg(long, env = "SECRET_KEY_PREVIOUS", hide_env_values = true)]
    pub secret_key_previous: Option<String>,
    /// development or production. Production refuses to start without a
    /// SECRET_KEY of at least 32 bytes.
    #[arg(long, env = "APP_ENV", default_value = "development")]
    pub app_env: String,
    /// on: Register with an already registered address answers like a success
    /// (the owner gets an "you already have an account" mail instead).
    #[arg(long, env = "ENUMERATION_PROTECTION", default_value = "off")]
    pub enumeration_protection: String,
    /// on or off: per-client and per-address limits on Register and ResendConfirmation.
    #[arg(long, env = "RATE_LIMITS", default_value = "on")]
    pub rate_limits: String,
    /// Register and ResendConfirmation calls a minute from one client address (0: no limit).
    #[arg(long, env = "RATE_LIMIT_PER_CLIENT", default_value = "600")]
    pub rate_limit_per_client: String,
    /// Register and ResendConfirmation calls an hour for one target e-mail address (0: no limit).
    #[arg(long, env = "RATE_LIMIT_PER_EMAIL", default_value = "10")]
    pub rate_limit_per_email: String,
    /// Most keys (client addresses, e-mail addresses) each rate limiter keeps
    /// in memory; beyond it the idlest are evicted.
    #[arg(long, env = "RATE_LIMIT_MAX_KEYS", default_value = "100000")]
    pub rate_limit_max_keys: String,
    /// Comma-separated IP addresses of proxies whose X-Forwarded-For is believed.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Lifetime of a confirmation link, in seconds.
    #[arg(long, env = "CONFIRMATION_LINK_TIMEOUT", default_value = "3600")]
    pub confirmation_link_timeout: String,
    /// Where a shopper lands after a successful confirmation.
    #[arg(
        long,
        env = "FRONTEND_HOMEPAGE",
        default_value = "http://localhost:3000/"
    )]
    pub frontend_homepage: String,
    /// Where a shopper lands when the link is missing, invalid or expired.
    #[arg(
        long,
        env = "CONFIRMATION_MAIL_REQUEST_PAGE",
        default_value = "http://localhost:3000/confirmation-mail-request/"
    )]
    pub confirmation_mail_request_page: String,
    /// How mail leaves: console (stdout), file (one .eml per message in
    /// EMAIL_FILE_PATH) or smtp (through SMTP_URL).
    #[arg(long, env = "EMAIL_BACKEND", default_value = "console")]
    pub email_backend: String,
    /// SMTP server for the smtp backend, in lettre's URL form:
    /// smtp://user:pass@host:587?tls=required, smtps://host, or smtp://host:port for a local relay.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Bound on one SMTP delivery attempt's network operations, in seconds.
    #[arg(long, env = "SMTP_TIMEOUT", default_value = "10")]
    pub smtp_timeout: String,
    /// Directory for the file backend.
    #[arg(long, env = "EMAIL_FILE_PATH", default_value = "mail")]
    pub email_file_path: String,
    /// Sender of every mail, `address` or `Name <address>`.
    #[arg(long, env = "EMAIL_FROM", default_value = "noreply@example.com")]
    pub email_from: String,
    /// Shop name used in mail subjects and bodies.
    #[arg(long, env = "SITE_NAME", default_value = "Ecoms")]
    pub site_name: String,
    /// Retries after a failed first delivery attempt.
    #[arg(long, env = "EMAIL_MAX_RETRIES", default_value = "2")]
    pub email_max_retries: String,
    /// Delay before the first retry, in seconds; doubled at each retry (±20% jitter).
    #[arg(long, env = "EMAIL_RETRY_DELAY", default_value = "60")]
    pub email_retry_delay: String,
    /// Days a delivered message stays in the outbox before it is pruned.
    #[arg(long, env = "EMAIL_SENT_RETENTION", default_value = "7")]
    pub email_sent_retention: String,
    /// Seconds before the same address may ask for another confirmation mail.
    #[arg(long, env = "EMAIL_RESEND_COOLDOWN", default_value = "60")]
    pub email_resend_cooldown: String,
    /// How long a worker's claim on a message lasts, in seconds; a crashed
    /// worker's messages are taken over after it.
    #[arg(long, env = "EMAIL_CLAIM_LEASE", default_value = "300")]
    pub email_claim_lease: String,
    /// Password hashes computed at once (default: the number of cores).
    #[arg(long, env = "HASH_CONCURRENCY")]
    pub hash_concurrency: Option<String>,
    /// Registrations allowed to wait for a hashing slot before RESOURCE_EXHAUSTED.
    #[arg(long, env = "HASH_QUEUE", default_value = "64")]
    pub hash_queue: String,
    /// RPCs and confirmation links handled at once; beyond it requests are
    /// refused at once with RESOURCE_EXHAUSTED (HTTP 503) instead of queueing.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value = "1024")]
    pub max_concurrent_requests: String,
    /// Database connections kept open by each instance.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value = "16")]
    pub database_max_connections: String,
    /// Seconds to wait for a database connection before a request fails with UNAVAILABLE.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT", default_value = "5")]
    pub database_acquire_timeout: String,
    /// Seconds a client may take to send an HTTP request head, or stay idle
    /// between requests, before the sidecar closes the connection; also the
    /// time a gRPC connection has to complete the HTTP/2 preface and its
    /// first request head.
    #[arg(long, env = "REQUEST_HEAD_TIMEOUT", default_value = "10")]
    pub request_head_timeout: String,
    /// Seconds after which a gRPC connection is closed (gracefully, with
    /// GOAWAY; clients reconnect), so a slow, idle or stuck client cannot hold one forever.
    #[arg(long, env = "GRPC_MAX_CONNECTION_AGE", default_value = "1800")]
    pub grpc_max_connection_age: String,
    /// Seconds calls in flight and mail being sent get to finish after
    /// SIGTERM before the process exits; must exceed SMTP_TIMEOUT.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "15")]
    pub shutdown_grace: String,
    /// Seconds between refreshes of the outbox gauges that /metrics reports
    /// (a scrape itself never queries the database).
    #[arg(long, env = "METRICS_REFRESH", default_value = "10")]
    pub metrics_refresh: String,
    /// true: `serve` applies pending migrations at start-up. false: it only
    /// checks that the schema is current (run `account-service migrate` first).
    #[arg(long, env = "MIGRATE_ON_START", default_value = "true")]
    pub migrate_on_start: String,
    /// pretty or json (default: pretty on a terminal, json otherwise).
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log filter (tracing-subscriber EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub rust_log: String,
}

#[derive(Clone)]
pub enum EmailBackend {
    Console,
    File,
    /// Holds the SMTP URL, which may carry credentials.
    Smtp(SecretString),
}

impl std::fmt::Debug for EmailBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmailBackend::Console => f.write_str("Console"),
            EmailBackend::File => f.write_str("File"),
            EmailBackend::Smtp(url) => write!(f, "Smtp({})", redact_url(url.expose_secret())),
        }
    }
}

/// A setting that could not be used, naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_client_per_minute: u32,
    pub per_email_per_hour: u32,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub max_keys: usize,
}

/// Longest any duration setting may be: beyond it a value is a typo, and
/// date arithmetic with it could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);
/// Shortest confirmation link lifetime: a shopper needs time to open the mail.
pub const MIN_LINK_TIMEOUT_SECS: u64 = 60;

/// Minimum SECRET_KEY length in production: 256 bits, HS256's own strength.
pub const MIN_PRODUCTION_KEY_BYTES: usize = 32;

fn switch(variable: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(bad(variable, format!("'{other}' is not on or off"))),
    }
}

/// Validated settings.
#[derive(Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub public_base_url: Url,
    pub secret_key: SecretString,
    pub secret_key_previous: Option<SecretString>,
    /// True when SECRET_KEY was unset and the development key is in use.
    pub using_development_key: bool,
    pub production: bool,
    pub enumeration_protection: bool,
    /// None when RATE_LIMITS=off.
    pub rate_limits: Option<RateLimitSettings>,
    pub confirmation_link_timeout: u64,
    pub frontend_homepage: Url,
    pub confirmation_mail_request_page: Url,
    pub email_backend: EmailBackend,
    pub smtp_timeout: Duration,
    pub email_file_path: PathBuf,
    pub email_from: Mailbox,
    pub site_name: String,
    pub email_max_retries: u32,
    pub email_retry_delay: Duration,
    pub email_claim_lease: Duration,
    pub email_sent_retention: Duration,
    pub email_resend_cooldown: Duration,
    pub hash_concurrency: usize,
    pub hash_queue: usize,
    pub max_concurrent_requests: usize,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub request_head_timeout: Duration,
    pub grpc_max_connection_age: Duration,
    pub shutdown_grace: Duration,
    pub metrics_refresh: Duration,
    pub migrate_on_start: bool,
    pub log_format: LogFormat,
    pub rust_log: String,
}

fn http_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| bad(variable, format!("not a URL ({e})")))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(bad(
            variable,
            "must be an http:// or https:// URL with a host",
        )),
    }
}

fn number<T: std::str::FromStr>(variable: &'static str, raw: &str) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| {
        bad(
            variable,
            format!("'{}' is not a non-negative whole number", shown(raw)),
        )
    })
}

/// A whole number within `min..=max`.
fn bounded_number<T>(variable: &'static str, raw: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = number(variable, raw)?;
    if n < min || n > max {
        return Err(bad(variable, format!("must be between {min} and {max}")));
    }
    Ok(n)
}

/// A value echoed in an error, cut short so that one line stays one line.
fn shown(raw: &str) -> String {
    let one_line: String = raw.chars().filter(|c| !c.is_control()).take(40).collect();
    one_line
}

/// A duration in seconds, at most [`MAX_DURATION`]; fractions are allowed
/// (tests use short delays).
fn seconds(variable: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    let secs: f64 = raw.trim().parse().map_err(|_| {
        bad(
            variable,
            format!("'{}' is not a number of seconds", shown(raw)),
        )
    })?;
    let d = Duration::try_from_secs_f64(secs).map_err(|_| {
        bad(
            variable,
            format!("'{}' is not a non-negative number of seconds", shown(raw)),
        )
    })?;
    if d > MAX_DURATION {
        return Err(bad(
            variable,
            format!(
                "must be at most {} seconds (one week)",
                MAX_DURATION.as_secs()
            ),
        ));
    }
    Ok(d)
}

fn positive_seconds(variable: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match seconds(variable, raw)? {
        d if d.is_zero() => Err(bad(variable, "must be more than zero seconds")),
        d => Ok(d),
    }
}

fn address(variable: &'static str, raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.trim().parse().map_err(|_| {
        bad(
            variable,
            format!("'{}' is not an IP:PORT address", shown(raw)),
        )
    })
}

impl RawSettings {
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let database_url = self.database_url.trim().to_owned();
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "DATABASE_URL",
                "must start with sqlite:// or postgres:// (value not shown: it may hold a password)",
            ));
        }
        let production = match self.app_env.trim().to_ascii_lowercase().as_str() {
            "production" | "prod" => true,
            "development" | "dev" | "test" => false,
            other => {
                return Err(bad(
                    "APP_ENV",
                    format!("unknown environment '{other}' (expected development or production)"),
                ))
            }
        };
        let (secret_key, using_development_key) = match self.secret_key {
            Some(k) if !k.is_empty() => (SecretString::from(k), false),
            _ => (SecretString::from(DEVELOPMENT_SECRET_KEY), true),
        };
        if production {
            if using_development_key || secret_key.expose_secret() == DEVELOPMENT_SECRET_KEY {
                return Err(bad(
                    "SECRET_KEY",
                    "must be set to a secret of your own when APP_ENV=production",
                ));
            }
            if secret_key.expose_secret().len() < MIN_PRODUCTION_KEY_BYTES {
                return Err(bad(
                    "SECRET_KEY",
                    format!(
                        "must be at least {MIN_PRODUCTION_KEY_BYTES} bytes when APP_ENV=production"
                    ),
                ));
            }
        }
        let secret_key_previous = self
            .secret_key_previous
            .filter(|k| !k.is_empty())
            .map(SecretString::from);
        if let (true, Some(previous)) = (production, &secret_key_previous) {
            if previous.expose_secret() == DEVELOPMENT_SECRET_KEY {
                return Err(bad(
                    "SECRET_KEY_PREVIOUS",
                    "must not be the development key when APP_ENV=production",
                ));
            }
            if previous.expose_secret().len() < MIN_PRODUCTION_KEY_BYTES {
                return Err(bad(
                    "SECRET_KEY_PREVIOUS",
                    format!(
                        "must be at least {MIN_PRODUCTION_KEY_BYTES} bytes when APP_ENV=production"
                    ),
                ));
            }
        }
        // Checked even when the limits are off, so that turning them on
        // later cannot reveal a typo at the worst moment.
        let trusted_proxies = self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse().map_err(|_| {
                    bad(
                        "TRUSTED_PROXIES",
                        format!("'{}' is not an IP address", shown(s)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limits = RateLimitSettings {
            per_client_per_minute: number("RATE_LIMIT_PER_CLIENT", &self.rate_limit_per_client)?,
            per_email_per_hour: number("RATE_LIMIT_PER_EMAIL", &self.rate_limit_per_email)?,
            trusted_proxies,
            max_keys: bounded_number(
                "RATE_LIMIT_MAX_KEYS",
                &self.rate_limit_max_keys,
                1,
                10_000_000,
            )?,
        };
        let rate_limits = switch("RATE_LIMITS", &self.rate_limits)?.then_some(limits);
        let email_backend = match self.email_backend.trim().to_ascii_lowercase().as_str() {
            "console" => EmailBackend::Console,
            "file" => EmailBackend::File,
            "smtp" => {
                let url = self.smtp_url.as_deref().map(str::trim).unwrap_or_default();
                if url.is_empty() {
                    return Err(bad("SMTP_URL", "must be set when EMAIL_BACKEND=smtp"));
                }
                match Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => {}
                    // The value is not echoed: it may hold a password.
                    _ => {
                        return Err(bad(
                            "SMTP_URL",
                            "must look like smtp://[user:pass@]host[:port][?tls=required] or smtps://host",
                        ))
                    }
                }
                EmailBackend::Smtp(SecretString::from(url.to_owned()))
            }
            other => {
                return Err(bad(
                    "EMAIL_BACKEND",
                    format!("unknown backend '{other}' (expected console, file or smtp)"),
                ))
            }
        };
        let email_from: Mailbox = self.email_from.trim().parse().map_err(|e| {
            bad(
                "EMAIL_FROM",
                format!(
                    "'{}' is not an e-mail address ({e})",
                    shown(&self.email_from)
                ),
            )
        })?;
        let hash_concurrency = match self.hash_concurrency {
            Some(raw) => bounded_number::<usize>("HASH_CONCURRENCY", &raw, 1, 1024)?,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let smtp_timeout = positive_seconds("SMTP_TIMEOUT", &self.smtp_timeout)?;
        let shutdown_grace = seconds("SHUTDOWN_GRACE", &self.shutdown_grace)?;
        // The worker lets a send in progress finish on shutdown; a grace
        // shorter than a send could cut it after the mail server took the
        // message but before it was recorded, and it would be sent twice.
        if shutdown_grace <= smtp_timeout {
            return Err(bad(
                "SHUTDOWN_GRACE",
                "must be longer than SMTP_TIMEOUT, so that a send in progress can finish",
            ));
        }
        let email_claim_lease = seconds("EMAIL_CLAIM_LEASE", &self.email_claim_lease)?;
        // A claim that lapses while its batch is still being sent (in at most
        // two rounds of sends) lets a second worker send the same messages.
        if email_claim_lease <= smtp_timeout * 2 {
            return Err(bad(
                "EMAIL_CLAIM_LEASE",
                "must be longer than twice SMTP_TIMEOUT, or a slow batch could be sent twice",
            ));
        }
        let site_name = self.site_name.trim().to_owned();
        if site_name.is_empty() {
            return Err(bad("SITE_NAME", "must not be empty"));
        }
        Ok(Settings {
            database_url: SecretString::from(database_url),
            grpc_addr: address("GRPC_ADDR", &self.grpc_addr)?,
            http_addr: address("HTTP_ADDR", &self.http_addr)?,
            public_base_url: http_url("PUBLIC_BASE_URL", &self.public_base_url)?,
            secret_key,
            secret_key_previous,
            using_development_key,
            production,
            enumeration_protection: switch("ENUMERATION_PROTECTION", &self.enumeration_protection)?,
            rate_limits,
            confirmation_link_timeout: bounded_number(
                "CONFIRMATION_LINK_TIMEOUT",
                &self.confirmation_link_timeout,
                MIN_LINK_TIMEOUT_SECS,
                MAX_DURATION.as_secs(),
            )?,
            frontend_homepage: http_url("FRONTEND_HOMEPAGE", &self.frontend_homepage)?,
            confirmation_mail_request_page: http_url(
                "CONFIRMATION_MAIL_REQUEST_PAGE",
                &self.confirmation_mail_request_page,
            )?,
            email_backend,
            smtp_timeout,
            email_file_path: PathBuf::from(self.email_file_path.trim()),
            email_from,
            site_name,
            email_max_retries: bounded_number("EMAIL_MAX_RETRIES", &self.email_max_retries, 0, 30)?,
            email_retry_delay: seconds("EMAIL_RETRY_DELAY", &self.email_retry_delay)?,
            email_claim_lease,
            email_sent_retention: Duration::from_secs(
                bounded_number::<u64>("EMAIL_SENT_RETENTION", &self.email_sent_retention, 0, 3650)?
                    * 86_400,
            ),
            email_resend_cooldown: seconds("EMAIL_RESEND_COOLDOWN", &self.email_resend_cooldown)?,
            hash_concurrency,
            hash_queue: bounded_number("HASH_QUEUE", &self.hash_queue, 0, 1_000_000)?,
            max_concurrent_requests: bounded_number(
                "MAX_CONCURRENT_REQUESTS",
                &self.max_concurrent_requests,
                1,
                1_000_000,
            )?,
            database_max_connections: bounded_number(
                "DATABASE_MAX_CONNECTIONS",
                &self.database_max_connections,
                1,
                10_000,
            )?,
            database_acquire_timeout: positive_seconds(
                "DATABASE_ACQUIRE_TIMEOUT",
                &self.database_acquire_timeout,
            )?,
            request_head_timeout: positive_seconds(
                "REQUEST_HEAD_TIMEOUT",
                &self.request_head_timeout,
            )?,
            grpc_max_connection_age: positive_seconds(
                "GRPC_MAX_CONNECTION_AGE",
                &self.grpc_max_connection_age,
            )?,
            shutdown_grace,
            metrics_refresh: positive_seconds("METRICS_REFRESH", &self.metrics_refresh)?,
            migrate_on_start: switch("MIGRATE_ON_START", &self.migrate_on_start)?,
            log_format: match self
                .log_format
                .as_deref()
                .map(|f| f.trim().to_ascii_lowercase())
            {
                None => {
                    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                        LogFormat::Pretty
                    } else {
                        LogFormat::Json
                    }
                }
                Some(f) if f == "pretty" => LogFormat::Pretty,
                Some(f) if f == "json" => LogFormat::Json,
                Some(other) => {
                    return Err(bad(
                        "LOG_FORMAT",
                        format!("unknown format '{other}' (expected pretty or json)"),
                    ))
                }
            },
            rust_log: self.rust_log,
        })
    }
}

impl Settings {
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn pool(&self) -> crate::storage::PoolSettings {
        crate::storage::PoolSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_acquire_timeout,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("public_base_url", &self.public_base_url.as_str())
            .field("secret_key", &"[REDACTED]")
            .field(
                "secret_key_previous",
                &self.secret_key_previous.as_ref().map(|_| "[REDACTED]"),
            )
            .field("using_development_key", &self.using_development_key)
            .field("production", &self.production)
            .field("enumeration_protection", &self.enumeration_protection)
            .field("rate_limits", &self.rate_limits)
            .field("confirmation_link_timeout", &self.confirmation_link_timeout)
            .field("frontend_homepage", &self.frontend_homepage.as_str())
            .field(
                "confirmation_mail_request_page",
                &self.confirmation_mail_request_page.as_str(),
            )
            .field("email_backend", &self.email_backend)
            .field("smtp_timeout", &self.smtp_timeout)
            .field("email_file_path", &self.email_file_path)
            .field("email_from", &self.email_from.to_string())
            .field("site_name", &self.site_name)
            .field("email_max_retries", &self.email_max_retries)
            .field("email_retry_delay", &self.email_retry_delay)
            .field("email_claim_lease", &self.email_claim_lease)
            .field("email_sent_retention", &self.email_sent_retention)
            .field("email_resend_cooldown", &self.email_resend_cooldown)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("hash_queue", &self.hash_queue)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("database_max_connections", &self.database_max_connections)
            .field("database_acquire_timeout", &self.database_acquire_timeout)
            .field("request_head_timeout", &self.request_head_timeout)
            .field("grpc_max_connection_age", &self.grpc_max_connection_age)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("metrics_refresh", &self.metrics_refresh)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("log_format", &self.log_format)
            .field("rust_log", &self.rust_log)
            .finish()
    }
}

/// A URL with every credential replaced, for display: the user name and
/// password, and any query parameter that may carry a secret (`password`,
/// `sslpassword`, tokens, keys).
pub fn redact_url(raw: &str) -> String {
    const REDACTED: &str = "REDACTED";
    let Ok(mut url) = Url::parse(raw) else {
        return "[unparsable URL]".to_owned();
    };
    if !url.username().is_empty() {
        let _ = url.set_username(REDACTED);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let key = k.to_ascii_lowercase();
                let secret = ["pass", "secret", "token", "key", "auth", "credential"]
                    .iter()
                    .any(|s| key.contains(s));
                let value = if secret {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut all = vec!["account-service"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().settings.validate()
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: [(&[&str], &str); 10] = [
            (&["--email-backend", "smtp"], "SMTP_URL"),
            (
                &[
                    "--email-backend",
                    "smtp",
                    "--smtp-url",
                    "http://u:hunter2@h",
                ],
                "SMTP_URL",
            ),
            (&["--smtp-timeout", "soon"], "SMTP_TIMEOUT"),
            (&["--email-claim-lease", "5"], "EMAIL_CLAIM_LEASE"),
            (&["--email-backend", "pigeon"], "EMAIL_BACKEND"),
            (&["--email-from", "not an address"], "EMAIL_FROM"),
            (&["--public-base-url", "localhost"], "PUBLIC_BASE_URL"),
            (&["--grpc-addr", "nowhere"], "GRPC_ADDR"),
            (
                &["--confirmation-link-timeout=-5"],
                "CONFIRMATION_LINK_TIMEOUT",
            ),
            (
                &["--database-url", "mysql://u:hunter2@h/db"],
                "DATABASE_URL",
            ),
        ];
        for (args, variable) in cases {
            let err = parse(args).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(!err.to_string().contains('\n'));
            assert!(!err.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn production_demands_a_real_secret_key() {
        let err = parse(&["--app-env", "production"]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
        let err = parse(&["--app-env", "production", "--secret-key", "short"]).unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
        let err = parse(&[
            "--app-env",
            "production",
            "--secret-key",
            DEVELOPMENT_SECRET_KEY,
        ])
        .unwrap_err();
        assert_eq!(err.variable, "SECRET_KEY");
        let ok = parse(&["--app-env", "production", "--secret-key", &"k".repeat(32)]).unwrap();
        assert!(ok.production && !ok.using_development_key);
        // Development starts without a key, on the development key.
        assert!(parse(&[]).unwrap().using_development_key);
    }

    #[test]
    fn rate_limits_and_switches() {
        let s = parse(&[
            "--trusted-proxies",
            "10.0.0.1, ::1",
            "--rate-limit-per-client",
            "5",
        ])
        .unwrap();
        let limits = s.rate_limits.unwrap();
        assert_eq!(limits.per_client_per_minute, 5);
        assert_eq!(limits.trusted_proxies.len(), 2);
        assert!(parse(&["--rate-limits", "off"])
            .unwrap()
            .rate_limits
            .is_none());
        assert_eq!(
            parse(&["--rate-limits", "maybe"]).unwrap_err().variable,
            "RATE_LIMITS"
        );
        assert_eq!(
            parse(&["--trusted-proxies", "proxy.local"])
                .unwrap_err()
                .variable,
            "TRUSTED_PROXIES"
        );
        assert!(
            parse(&["--enumeration-protection", "on"])
                .unwrap()
                .enumeration_protection
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = parse(&[
            "--secret-key",
            "super-secret-value",
            "--database-url",
            "postgres://app:hunter2@db/accounts",
            "--email-backend",
            "smtp",
            "--smtp-url",
            "smtp://mailer:hunter2@relay.example:587?tls=required",
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("super-secret-value"));
        assert!(!shown.contains("hunter2"));
        assert!(!s.using_development_key);
    }
}
