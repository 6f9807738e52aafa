//! Settings from flags, the environment or a `.env` file: one typed group per
//! part of the service, each field parsed and bounded by its own parser.

mod error;
mod media;
mod parse;
mod pool;
mod sessions;
mod sign_in;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};

use crate::telemetry::LogFormat;
use error::bad;
pub use error::ConfigError;
pub use media::{
    MediaLocation, MediaSettings, S3Access, MAX_IMAGE_CONCURRENCY, MAX_PROFILE_IMAGE_BYTES,
};
use parse::{address, bounded, days, http_url, ip_list, language_tag, mailbox, not_empty};
use parse::{positive_seconds, retention, seconds, secret, smtp_url, switch};
pub use parse::{redact_url, DatabaseKind, DatabaseUrl, IpList, SecretUrl, WebUrl};
pub use pool::PoolSettings;
pub use sessions::{SessionPolicy, SessionSettings, MAX_SESSION_SECS};
pub use sign_in::{SignInPolicy, MAX_LOCKOUT};

/// Signs tokens when SECRET_KEY is unset, so the service starts on a laptop
/// with no setup. Anyone can forge tokens with it: never use it in production.
pub const DEVELOPMENT_SECRET_KEY: &str = "development-only-secret-key-do-not-use-in-production";
/// Longest any duration setting may be: beyond it a value is a typo, and
/// date arithmetic with it could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);
/// Shortest confirmation link lifetime: a shopper needs time to open the mail.
pub const MIN_LINK_TIMEOUT_SECS: u64 = 60;
/// Minimum SECRET_KEY length in production: 256 bits, HS256's own strength.
pub const MIN_PRODUCTION_KEY_BYTES: usize = 32;
/// The most EVENT_STREAMS_PER_CALLER may be: every stream one instance
/// feeds (`events::MAX_WATCHERS`, which a test holds equal to it).
pub const MAX_STREAMS_PER_CALLER: u64 = 256;

/// Every setting, by the part of the service it configures.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub security: SecuritySettings,
    #[command(flatten)]
    pub access: AccessSettings,
    #[command(flatten)]
    pub mail: MailSettings,
    #[command(flatten)]
    pub delivery: DeliverySettings,
    #[command(flatten)]
    pub sessions: SessionSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub events: EventSettings,
    #[command(flatten)]
    pub media: MediaSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Account events")]
pub struct EventSettings {
    /// How long events are kept for WatchAccountEvents: days (`7`), or with
    /// a unit (`90s`, `30m`, `12h`, `7d`). An older cursor is refused
    /// (CURSOR_EXPIRED).
    #[arg(long, env, default_value = "7", value_parser = retention)]
    pub account_event_retention: Duration,
    /// Seconds without events after which a watcher gets a keep-alive message.
    #[arg(long, env, default_value = "30", value_parser = positive_seconds)]
    pub account_event_keepalive: Duration,
    /// WatchAccountEvents streams one caller may hold open on one instance
    /// (an authenticated caller by name; without callers, a client
    /// address), so that one cannot take all of the instance's 256.
    #[arg(long, env, default_value = "32",
        value_parser = bounded::<usize>(1, MAX_STREAMS_PER_CALLER))]
    pub event_streams_per_caller: usize,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerSettings {
    /// Address the gRPC server listens on.
    #[arg(long, env, default_value = "0.0.0.0:50051", value_parser = address)]
    pub grpc_addr: SocketAddr,
    /// Address the HTTP sidecar (confirmation link, probes) listens on.
    #[arg(long, env, default_value = "0.0.0.0:8080", value_parser = address)]
    pub http_addr: SocketAddr,
    /// Base URL of the HTTP sidecar as shoppers reach it; confirmation links start with it.
    #[arg(long, env, default_value = "http://localhost:8080", value_parser = http_url)]
    pub public_base_url: WebUrl,
    /// Where a shopper lands after a successful confirmation.
    #[arg(long, env, default_value = "http://localhost:3000/", value_parser = http_url)]
    pub frontend_homepage: WebUrl,
    /// Where a shopper lands when the link is missing, invalid or expired.
    #[arg(long, env, value_parser = http_url,
        default_value = "http://localhost:3000/confirmation-mail-request/")]
    pub confirmation_mail_request_page: WebUrl,
    /// Seconds a client may take to send an HTTP request head, or stay idle
    /// between requests, before the sidecar closes the connection; also the
    /// time a gRPC connection has to complete the HTTP/2 preface and its
    /// first request head.
    #[arg(long, env, default_value = "10", value_parser = positive_seconds)]
    pub request_head_timeout: Duration,
    /// Seconds after which a gRPC connection is closed (gracefully, with
    /// GOAWAY; clients reconnect), so a slow, idle or stuck client cannot hold one forever.
    #[arg(long, env, default_value = "1800", value_parser = positive_seconds)]
    pub grpc_max_connection_age: Duration,
    /// Where a valid password reset link leads, with `token` appended to its query.
    #[arg(long, env, default_value = "http://localhost:3000/reset-password/", value_parser = http_url)]
    pub password_reset_page: WebUrl,
    /// Where an invalid or expired password reset link leads, to ask for a new one.
    #[arg(long, env, value_parser = http_url,
        default_value = "http://localhost:3000/password-reset-request/")]
    pub password_reset_request_page: WebUrl,
    /// Seconds calls in flight and mail being sent get to finish after
    /// SIGTERM before the process exits; must exceed SMTP_TIMEOUT.
    #[arg(long, env, default_value = "15", value_parser = seconds)]
    pub shutdown_grace: Duration,
    /// Address of a listener serving only /metrics; when set, /metrics
    /// leaves HTTP_ADDR, the port shoppers reach.
    #[arg(long, env, value_parser = address)]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseSettings {
    /// Database: sqlite://PATH (created when missing) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env, default_value = "sqlite://account.db",
        hide_env_values = true, value_parser = DatabaseUrl::parse)]
    pub database_url: DatabaseUrl,
    /// Database connections kept open by each instance.
    #[arg(long, env, default_value = "16",
        value_parser = bounded::<u32>(1, 10_000))]
    pub database_max_connections: u32,
    /// Seconds to wait for a database connection before a request fails with UNAVAILABLE.
    #[arg(long, env, default_value = "5",
        value_parser = positive_seconds)]
    pub database_acquire_timeout: Duration,
    /// true: `serve` applies pending migrations at start-up. false: it only
    /// checks that the schema is current (run `account-service migrate` first).
    #[arg(long, env, default_value = "true", value_parser = switch, action = ArgAction::Set)]
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Security")]
pub struct SecuritySettings {
    /// development or production. Production refuses to start without a
    /// SECRET_KEY of at least 32 bytes.
    #[arg(
        long,
        env,
        default_value = "development",
        value_enum,
        ignore_case = true
    )]
    pub app_env: AppEnv,
    /// Key that signs confirmation tokens (HS256). Unset: a development key, with a warning.
    #[arg(long, env, hide_env_values = true, value_parser = secret)]
    pub secret_key: Option<SecretString>,
    /// The previous SECRET_KEY during a rotation: tokens it signed still verify.
    #[arg(long, env, hide_env_values = true, value_parser = secret)]
    pub secret_key_previous: Option<SecretString>,
    /// Lifetime of a confirmation link, in seconds.
    #[arg(long, env, default_value = "3600",
        value_parser = bounded::<u64>(MIN_LINK_TIMEOUT_SECS, MAX_DURATION.as_secs()))]
    pub confirmation_link_timeout: u64,
    /// on: Register with an already registered address answers like a success
    /// (the owner gets an "you already have an account" mail instead).
    #[arg(long, env, default_value = "off", value_parser = switch, action = ArgAction::Set)]
    pub enumeration_protection: bool,
    /// Lifetime of a password reset link, in seconds.
    #[arg(long, env, default_value = "3600",
        value_parser = bounded::<u64>(MIN_LINK_TIMEOUT_SECS, MAX_DURATION.as_secs()))]
    pub password_reset_timeout: u64,
    /// Consecutive failed password checks for one address that lock it out.
    #[arg(long, env, default_value = "5", value_parser = bounded::<u32>(1, 1000))]
    pub login_max_failures: u32,
    /// Seconds of the first sign-in lockout; each further one doubles, up to one hour.
    #[arg(long, env, default_value = "60",
        value_parser = bounded::<u64>(1, MAX_LOCKOUT.as_secs()))]
    pub login_lockout: u64,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Callers and TLS")]
pub struct AccessSettings {
    /// TOML file of the services allowed to call, their scopes and the
    /// SHA-256 digests of their API keys. Unset: every call is allowed.
    #[arg(long, env)]
    pub api_keys_file: Option<PathBuf>,
    /// PEM certificate chain of the gRPC port; with GRPC_TLS_KEY, gRPC is served over TLS.
    #[arg(long, env)]
    pub grpc_tls_cert: Option<PathBuf>,
    /// PEM private key of GRPC_TLS_CERT.
    #[arg(long, env)]
    pub grpc_tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate it signed
    /// (mTLS), whose common name is the caller's name.
    #[arg(long, env)]
    pub grpc_tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AppEnv {
    #[value(aliases = ["dev", "test"])]
    Development,
    #[value(alias = "prod")]
    Production,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Mail")]
pub struct MailSettings {
    /// How mail leaves: console (stdout), file (one .eml per message in
    /// EMAIL_FILE_PATH) or smtp (through SMTP_URL).
    #[arg(long, env, default_value = "console", value_enum, ignore_case = true)]
    pub email_backend: EmailBackend,
    /// SMTP server for the smtp backend, in lettre's URL form:
    /// smtp://user:pass@host:587?tls=required, smtps://host, or smtp://host:port for a local relay.
    #[arg(long, env, hide_env_values = true, value_parser = smtp_url)]
    pub smtp_url: Option<SecretUrl>,
    /// Bound on one SMTP delivery attempt's network operations, in seconds.
    #[arg(long, env, default_value = "10", value_parser = positive_seconds)]
    pub smtp_timeout: Duration,
    /// Directory for the file backend.
    #[arg(long, env, default_value = "mail")]
    pub email_file_path: PathBuf,
    /// Sender of every mail, `address` or `Name <address>`.
    #[arg(long, env, default_value = "noreply@example.com", value_parser = mailbox)]
    pub email_from: Mailbox,
    /// Shop name used in mail subjects and bodies.
    #[arg(long, env, default_value = "Ecoms", value_parser = not_empty)]
    pub site_name: String,
    /// Language of mail for accounts that chose none, a BCP 47 tag: en, de,
    /// fr and es are built in; others need a folder in TEMPLATES_DIR.
    #[arg(long, env, default_value = "en", value_parser = language_tag)]
    pub default_locale: String,
    /// Folder overriding the built-in mail text: one folder per language tag
    /// (de, fr-CA, …) holding messages.ftl and/or layouts such as
    /// welcome_mail.txt. Files it lacks fall back to the built-in ones.
    #[arg(long, env)]
    pub templates_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailBackend {
    Console,
    File,
    Smtp,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Mail delivery")]
pub struct DeliverySettings {
    /// Retries after a failed first delivery attempt.
    #[arg(long, env, default_value = "2", value_parser = bounded::<u32>(0, 30))]
    pub email_max_retries: u32,
    /// Delay before the first retry, in seconds; doubled at each retry (±20% jitter).
    #[arg(long, env, default_value = "60", value_parser = seconds)]
    pub email_retry_delay: Duration,
    /// Days a delivered message stays in the outbox before it is pruned.
    #[arg(long, env, default_value = "7", value_parser = days)]
    pub email_sent_retention: Duration,
    /// Seconds before the same address may ask for another confirmation mail.
    #[arg(long, env, default_value = "60", value_parser = seconds)]
    pub email_resend_cooldown: Duration,
    /// Seconds before the same address may ask for another password reset mail.
    #[arg(long, env, default_value = "60", value_parser = seconds)]
    pub password_reset_cooldown: Duration,
    /// Seconds between looks at the outbox when nothing announced new mail:
    /// a safety net (PostgreSQL announces queued mail to every instance at
    /// once, and retries wake the worker on a timer).
    #[arg(long, env, default_value = "30", value_parser = positive_seconds)]
    pub email_poll_interval: Duration,
    /// How long a worker's claim on a message lasts, in seconds; a crashed
    /// worker's messages are taken over after it.
    #[arg(long, env, default_value = "300", value_parser = seconds)]
    pub email_claim_lease: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitSettings {
    /// Where rate-limit buckets live: memory (each instance its own) or
    /// postgres (shared by every instance on the database). Default: postgres
    /// on PostgreSQL, memory on SQLite.
    #[arg(long, env, value_enum, ignore_case = true)]
    pub rate_limit_store: Option<RateLimitStore>,
    /// on or off: per-client and per-address limits on Register and ResendConfirmation.
    #[arg(long, env, default_value = "on", value_parser = switch, action = ArgAction::Set)]
    pub rate_limits: bool,
    /// Register and ResendConfirmation calls a minute from one client address (0: no limit).
    #[arg(long, env, default_value = "600", value_parser = bounded::<u32>(0, u32::MAX.into()))]
    pub rate_limit_per_client: u32,
    /// Register and ResendConfirmation calls an hour for one target e-mail address (0: no limit).
    #[arg(long, env, default_value = "10", value_parser = bounded::<u32>(0, u32::MAX.into()))]
    pub rate_limit_per_email: u32,
    /// Most keys (client addresses, e-mail addresses) each rate limiter keeps
    /// in memory; beyond it the idlest are evicted.
    #[arg(long, env, default_value = "100000", value_parser = bounded::<usize>(1, 10_000_000))]
    pub rate_limit_max_keys: usize,
    /// Comma-separated IP addresses of proxies whose X-Forwarded-For is believed
    /// (checked even while RATE_LIMITS=off, so that turning them on reveals no typo).
    #[arg(long, env, default_value = "", value_parser = ip_list)]
    pub trusted_proxies: IpList,
    /// RPCs and confirmation links handled at once; beyond it requests are
    /// refused at once with RESOURCE_EXHAUSTED (HTTP 503) instead of queueing.
    #[arg(long, env, default_value = "1024", value_parser = bounded::<usize>(1, 1_000_000))]
    pub max_concurrent_requests: usize,
    /// Password hashes computed at once (default: the number of cores).
    #[arg(long, env, value_parser = bounded::<usize>(1, 1024))]
    pub hash_concurrency: Option<usize>,
    /// Registrations allowed to wait for a hashing slot before RESOURCE_EXHAUSTED.
    #[arg(long, env, default_value = "64", value_parser = bounded::<usize>(0, 1_000_000))]
    pub hash_queue: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitStore {
    Memory,
    Postgres,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetrySettings {
    /// pretty or json (default: pretty on a terminal, json otherwise).
    #[arg(long, env, value_enum, ignore_case = true)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing-subscriber EnvFilter syntax).
    #[arg(long, env, default_value = "info")]
    pub rust_log: String,
    /// Seconds between refreshes of the outbox gauges that /metrics reports
    /// (a scrape itself never queries the database).
    #[arg(long, env, default_value = "10", value_parser = positive_seconds)]
    pub metrics_refresh: Duration,
}

impl Settings {
    /// Checks what no single setting can check alone.
    pub fn check(self) -> Result<Settings, ConfigError> {
        self.security.check()?;
        self.access.check(self.security.production())?;
        if self.limits.rate_limit_store == Some(RateLimitStore::Postgres)
            && self.database.database_url.kind != DatabaseKind::Postgres
        {
            return Err(bad(
                "RATE_LIMIT_STORE",
                "postgres needs a PostgreSQL DATABASE_URL",
            ));
        }
        if let Some(metrics) = self.server.metrics_addr {
            // Port 0 asks for any free port: never a clash.
            let clash = |other: SocketAddr| metrics.port() != 0 && metrics == other;
            if clash(self.server.http_addr) || clash(self.server.grpc_addr) {
                return Err(bad(
                    "METRICS_ADDR",
                    "must differ from HTTP_ADDR and GRPC_ADDR",
                ));
            }
        }
        if self.mail.email_backend == EmailBackend::Smtp && self.mail.smtp_url().is_none() {
            return Err(bad("SMTP_URL", "must be set when EMAIL_BACKEND=smtp"));
        }
        let smtp_timeout = self.mail.smtp_timeout;
        // The worker lets a send in progress finish on shutdown; a grace
        // shorter than a send could cut it after the mail server took the
        // message but before it was recorded, and it would be sent twice.
        if self.server.shutdown_grace <= smtp_timeout {
            return Err(bad(
                "SHUTDOWN_GRACE",
                "must be longer than SMTP_TIMEOUT, so that a send in progress can finish",
            ));
        }
        // A claim that lapses while its batch is still being sent (in at most
        // two rounds of sends) lets a second worker send the same messages.
        if self.delivery.email_claim_lease <= smtp_timeout * 2 {
            return Err(bad(
                "EMAIL_CLAIM_LEASE",
                "must be longer than twice SMTP_TIMEOUT, or a slow batch could be sent twice",
            ));
        }
        Ok(self)
    }
}

impl SecuritySettings {
    pub fn production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    /// True when SECRET_KEY is unset and the development key signs tokens.
    pub fn using_development_key(&self) -> bool {
        self.signing_key() == DEVELOPMENT_SECRET_KEY
    }

    /// The key that signs tokens.
    pub fn signing_key(&self) -> &str {
        match &self.secret_key {
            Some(k) if !k.expose_secret().is_empty() => k.expose_secret(),
            _ => DEVELOPMENT_SECRET_KEY,
        }
    }

    /// When failed password checks lock an address out.
    pub fn sign_in(&self) -> SignInPolicy {
        SignInPolicy {
            max_failures: self.login_max_failures,
            lockout: Duration::from_secs(self.login_lockout),
        }
    }

    /// The previous key, still accepted for verification.
    pub fn previous_key(&self) -> Option<&str> {
        let key = self.secret_key_previous.as_ref()?.expose_secret();
        (!key.is_empty()).then_some(key)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !self.production() {
            return Ok(());
        }
        if self.signing_key() == DEVELOPMENT_SECRET_KEY {
            return Err(bad(
                "SECRET_KEY",
                "must be set to a secret of your own when APP_ENV=production",
            ));
        }
        let short =
            format!("must be at least {MIN_PRODUCTION_KEY_BYTES} bytes when APP_ENV=production");
        if self.signing_key().len() < MIN_PRODUCTION_KEY_BYTES {
            return Err(bad("SECRET_KEY", short));
        }
        match self.previous_key() {
            Some(DEVELOPMENT_SECRET_KEY) => Err(bad(
                "SECRET_KEY_PREVIOUS",
                "must not be the development key when APP_ENV=production",
            )),
            Some(k) if k.len() < MIN_PRODUCTION_KEY_BYTES => Err(bad("SECRET_KEY_PREVIOUS", short)),
            _ => Ok(()),
        }
    }
}

impl AccessSettings {
    /// API_KEYS_FILE, unless unset or empty.
    pub fn api_keys_file(&self) -> Option<&std::path::Path> {
        non_empty(&self.api_keys_file)
    }

    /// The TLS files, when gRPC is served over TLS.
    pub fn tls(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: non_empty(&self.grpc_tls_cert)?.to_owned(),
            key: non_empty(&self.grpc_tls_key)?.to_owned(),
            client_ca: non_empty(&self.grpc_tls_client_ca).map(ToOwned::to_owned),
        })
    }

    fn check(&self, production: bool) -> Result<(), ConfigError> {
        let (cert, key) = (
            non_empty(&self.grpc_tls_cert),
            non_empty(&self.grpc_tls_key),
        );
        match (cert, key) {
            (Some(_), None) => return Err(bad("GRPC_TLS_KEY", "must be set with GRPC_TLS_CERT")),
            (None, Some(_)) => return Err(bad("GRPC_TLS_CERT", "must be set with GRPC_TLS_KEY")),
            _ => {}
        }
        let client_ca = non_empty(&self.grpc_tls_client_ca);
        if client_ca.is_some() && cert.is_none() {
            return Err(bad(
                "GRPC_TLS_CLIENT_CA",
                "needs GRPC_TLS_CERT and GRPC_TLS_KEY (client certificates are checked over TLS)",
            ));
        }
        if production && self.api_keys_file().is_none() && client_ca.is_none() {
            return Err(bad(
                "API_KEYS_FILE",
                "APP_ENV=production needs callers to be authenticated: set API_KEYS_FILE, or GRPC_TLS_CLIENT_CA for client certificates",
            ));
        }
        Ok(())
    }
}

fn non_empty(path: &Option<PathBuf>) -> Option<&std::path::Path> {
    path.as_deref().filter(|p| !p.as_os_str().is_empty())
}

impl DatabaseSettings {
    /// The connection pool these settings ask for.
    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_acquire_timeout,
        }
    }
}

impl MailSettings {
    /// SMTP_URL, unless unset or empty.
    pub fn smtp_url(&self) -> Option<&SecretUrl> {
        self.smtp_url.as_ref().filter(|u| !u.expose().is_empty())
    }
}

impl LimitSettings {
    /// RATE_LIMIT_STORE, or the default for the database in use.
    pub fn rate_limit_store(&self, database: DatabaseKind) -> RateLimitStore {
        self.rate_limit_store.unwrap_or(match database {
            DatabaseKind::Postgres => RateLimitStore::Postgres,
            DatabaseKind::Sqlite => RateLimitStore::Memory,
        })
    }

    /// HASH_CONCURRENCY, or the number of cores when unset.
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl TelemetrySettings {
    /// LOG_FORMAT, or pretty on a terminal and JSON otherwise.
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or_else(|| {
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            }
        })
    }
}

#[cfg(test)]
mod tests;
