//! Test harness: one application per test, with its own database and mail directory.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use account_service::auth::ConfirmationTokens;
use account_service::config::{Cli, RawSettings};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{get_account_request, Account};
use account_service::proto::account::v1::{GetAccountRequest, RegisterRequest};
use account_service::startup::{self, Application};
use account_service::storage::Storage;
use clap::Parser;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Signing key of every test application.
pub const TEST_SECRET_KEY: &str = "integration-test-secret-key-0123456789abcdef";
pub const HOMEPAGE: &str = "https://shop.example.com/";
pub const REQUEST_PAGE: &str = "https://shop.example.com/confirmation-mail-request/";

/// Where a test's data lives.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    /// The PostgreSQL backend when TEST_DATABASE_URL names a server. Without
    /// it the test is skipped, unless REQUIRE_POSTGRES_TESTS=1 (as in CI),
    /// where a skip would hide a gap and fails instead.
    pub fn postgres() -> Option<Backend> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres { admin_url: url }),
            _ => {
                assert!(
                    std::env::var("REQUIRE_POSTGRES_TESTS").as_deref() != Ok("1"),
                    "REQUIRE_POSTGRES_TESTS=1 but TEST_DATABASE_URL is not set"
                );
                eprintln!("skipped: set TEST_DATABASE_URL to run the PostgreSQL variant");
                None
            }
        }
    }
}

/// Generates, for each scenario `async fn name(backend: Backend)`, a module
/// `name` with one test per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(backend) = $crate::helpers::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            }
        )*
    };
}

/// A fresh, empty database for one test; dropped with the value (SQLite).
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create(backend: &Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("account.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres { admin_url } => {
                let name = format!("account_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(admin_url)
                    .await
                    .expect("cannot connect to TEST_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(admin_url).unwrap();
                url.set_path(&name);
                TestDatabase {
                    url: url.to_string(),
                    _dir: None,
                }
            }
        }
    }

    /// The same database reached at another URL (through a relay).
    pub fn at(url: String) -> TestDatabase {
        TestDatabase { url, _dir: None }
    }

    /// The same database again, for a second application instance.
    pub fn shared(&self) -> TestDatabase {
        TestDatabase {
            url: self.url.clone(),
            _dir: None,
        }
    }

    /// The storage the service would open on this database, migrated.
    pub async fn connect(&self) -> Arc<dyn Storage> {
        let storage = account_service::storage::open(&self.url, Default::default()).unwrap();
        storage.migrate().await.unwrap();
        storage
    }

    /// The stored password hash of an account, read straight from the table.
    pub async fn password_hash(&self, email: &str) -> String {
        let sql = if self.url.starts_with("sqlite:") {
            "SELECT password_hash FROM accounts WHERE email = ?1"
        } else {
            "SELECT password_hash FROM accounts WHERE email = $1"
        };
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(email)
                .fetch_one(&mut c)
                .await
                .unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(email)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }

    /// Rows in a table, read straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// A single integer computed by `sql`, read straight from the database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sql.to_owned();
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
    }

    /// Runs one statement straight on the database.
    pub async fn execute(&self, sql: &str) {
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// A single text value computed by `sql`, read straight from the database.
    pub async fn text(&self, sql: &str) -> String {
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

/// Settings with every value that could leak in from the environment pinned.
pub fn test_settings(db_url: &str, mail_dir: &Path) -> RawSettings {
    let mut raw = Cli::try_parse_from(["account-service"]).unwrap().settings;
    raw.database_url = db_url.to_owned();
    raw.grpc_addr = "127.0.0.1:0".into();
    raw.http_addr = "127.0.0.1:0".into();
    raw.secret_key = Some(TEST_SECRET_KEY.into());
    raw.confirmation_link_timeout = "3600".into();
    raw.frontend_homepage = HOMEPAGE.into();
    raw.confirmation_mail_request_page = REQUEST_PAGE.into();
    raw.email_backend = "file".into();
    raw.email_file_path = mail_dir.display().to_string();
    raw.email_from = "Ecoms <noreply@ecoms.example>".into();
    raw.site_name = "Ecoms".into();
    raw.email_max_retries = "2".into();
    raw.email_retry_delay = "0.2".into();
    raw.email_claim_lease = "300".into();
    raw.hash_concurrency = Some("2".into());
    raw.hash_queue = "256".into();
    raw.database_acquire_timeout = "2".into();
    // Outbox gauges follow the outbox closely enough for tests to read them.
    raw.metrics_refresh = "0.2".into();
    // Every test comes from 127.0.0.1; the limits have tests of their own.
    raw.rate_limits = "off".into();
    raw.enumeration_protection = "off".into();
    raw.app_env = "development".into();
    raw.secret_key_previous = None;
    raw
}

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub client: AccountServiceClient<Channel>,
    pub channel: Channel,
    pub http: reqwest::Client,
    pub mail_dir: PathBuf,
    pub db: TestDatabase,
    pub storage: Arc<dyn Storage>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _mail_tmp: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the application on port 0 with settings adjusted by `customize`.
pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    let db = TestDatabase::create(&backend).await;
    spawn_app_on(db, customize).await
}

/// Starts the application on an existing database.
pub async fn spawn_app_on(db: TestDatabase, customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    start_app(db, customize, true).await
}

/// Starts the application and returns at once, ready or not.
pub async fn spawn_app_unready(
    db: TestDatabase,
    customize: impl FnOnce(&mut RawSettings),
) -> TestApp {
    start_app(db, customize, false).await
}

async fn start_app(
    db: TestDatabase,
    customize: impl FnOnce(&mut RawSettings),
    wait_until_ready: bool,
) -> TestApp {
    init_test_logging();
    let mail_tmp = tempfile::tempdir().unwrap();
    let mail_dir = mail_tmp.path().join("mail");

    let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    let http_addr = http_listener.local_addr().unwrap();

    let mut raw = test_settings(&db.url, &mail_dir);
    raw.public_base_url = format!("http://{http_addr}");
    customize(&mut raw);
    let settings = raw.validate().unwrap();

    // Opened lazily, as the binary does: the application reaches and
    // migrates the database itself.
    let storage = account_service::storage::open(&db.url, settings.pool()).unwrap();
    let dispatcher = startup::dispatcher(&settings).unwrap();
    let app = Application::build_with(
        settings,
        grpc_listener,
        http_listener,
        Arc::clone(&storage),
        dispatcher,
    )
    .unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));

    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = TestApp {
        grpc_addr,
        http_addr,
        client: AccountServiceClient::new(channel.clone()),
        channel,
        http,
        mail_dir,
        db,
        storage,
        shutdown: Some(tx),
        server: Some(server),
        _mail_tmp: mail_tmp,
    };
    if wait_until_ready {
        app.wait_until_ready().await;
    }
    app
}

impl TestApp {
    /// Waits until `/readyz` answers 200 (the database was reached and migrated).
    pub async fn wait_until_ready(&self) {
        let ready = eventually(Duration::from_secs(20), || async {
            let r = self.http.get(self.http_url("/readyz")).send().await.ok()?;
            (r.status() == reqwest::StatusCode::OK).then_some(())
        })
        .await;
        assert!(ready.is_some(), "the application did not become ready");
    }

    /// Stops the application and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    pub async fn register(&self, request: RegisterRequest) -> Result<Account, Status> {
        self.client
            .clone()
            .register(request)
            .await
            .map(|r| r.into_inner().account.expect("account in response"))
    }

    pub async fn get_by_email(&self, email: &str) -> Result<Account, Status> {
        self.get(get_account_request::Lookup::Email(email.into()))
            .await
    }

    pub async fn get_by_id(&self, id: &str) -> Result<Account, Status> {
        self.get(get_account_request::Lookup::Id(id.into())).await
    }

    pub async fn get(&self, lookup: get_account_request::Lookup) -> Result<Account, Status> {
        self.client
            .clone()
            .get_account(GetAccountRequest {
                lookup: Some(lookup),
            })
            .await
            .map(|r| r.into_inner().account.expect("account in response"))
    }

    /// Waits until at least `n` messages were written, and returns them all.
    pub async fn wait_for_mails(&self, n: usize) -> Vec<Mail> {
        let found = eventually(Duration::from_secs(10), || async {
            let mails = read_mails(&self.mail_dir);
            (mails.len() >= n).then_some(mails)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "expected {n} mail(s), found {}",
                read_mails(&self.mail_dir).len()
            )
        })
    }

    /// Messages written so far.
    pub fn mails(&self) -> Vec<Mail> {
        read_mails(&self.mail_dir)
    }

    /// Registers `email` and returns its account and the link of its welcome mail.
    pub async fn register_and_get_link(&self, email: &str) -> (Account, String) {
        let before = self.mails().len();
        let account = self.register(registration(email)).await.unwrap();
        let mails = self.wait_for_mails(before + 1).await;
        let mail = mails
            .into_iter()
            .find(|m| m.to.contains(email))
            .expect("welcome mail for the new account");
        (account, mail.link())
    }

    /// A token signed with the application's key, for any subject and time.
    pub fn tokens(&self) -> ConfirmationTokens {
        ConfirmationTokens::new(TEST_SECRET_KEY.as_bytes(), None, 3600)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid registration for `email`.
pub fn registration(email: &str) -> RegisterRequest {
    RegisterRequest {
        email: email.into(),
        username: "shopper".into(),
        password: "secret123".into(),
        confirm_password: "secret123".into(),
        term_and_condition: true,
        address: "1 Main Street".into(),
        first_name: "Ann".into(),
        last_name: "Shopper".into(),
        phone_number: "+15550100".into(),
        created_from: "web".into(),
    }
}

/// A unique address for a test.
pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A delivered message, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub content_type: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        let parsed = mailparse::parse_mail(raw).unwrap();
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case(name))
                .map(|h| h.get_value())
                .unwrap_or_default()
        };
        let part = |mime: &str| {
            parsed
                .subparts
                .iter()
                .find(|p| p.ctype.mimetype == mime)
                .map(|p| p.get_body().unwrap())
                .unwrap_or_default()
        };
        Mail {
            from: header("From"),
            to: header("To"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            content_type: parsed.ctype.mimetype.clone(),
            text: part("text/plain"),
            html: part("text/html"),
        }
    }

    /// The confirmation link in the plain-text part.
    pub fn link(&self) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains("token="))
            .expect("a confirmation link in the text part")
            .to_owned()
    }

    /// The token of the confirmation link.
    pub fn token(&self) -> String {
        token_of(&self.link())
    }
}

pub fn token_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn read_mails(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "eml")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| Mail::parse(&std::fs::read(p).unwrap()))
        .collect()
}

/// The BadRequest violations of a status, as (field, description) pairs.
pub fn violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|i| {
        assert_eq!(i.domain, "account.v1");
        i.reason
    })
}

pub fn assert_code(result: &Result<impl std::fmt::Debug, Status>, code: Code) {
    match result {
        Err(s) => assert_eq!(s.code(), code, "unexpected status: {s:?}"),
        Ok(v) => panic!("expected {code:?}, got OK: {v:?}"),
    }
}

fn init_test_logging() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        account_service::telemetry::init(&filter, account_service::telemetry::LogFormat::Pretty);
    }
}
