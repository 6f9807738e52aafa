//! Test harness for account-service: the real application on port 0 with
//! its own database and mail directory, direct database access for checks,
//! and a real SMTP server.

pub mod images;
pub mod s3;
pub mod samples;
pub mod smtp_server;
pub mod tls;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use account_service::auth::ConfirmationTokens;
use account_service::cli::Cli;
use account_service::config::{DatabaseKind, DatabaseUrl};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{get_account_request, Account};
use account_service::proto::account::v1::{GetAccountRequest, RegisterRequest};
use account_service::startup::Application;
use account_service::storage::Storage;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use samples::{
    django_pbkdf2, error_reason, metric_sample, password_hashes_so_far, smtp_settings,
};
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
                    super::$name($crate::Backend::Sqlite).await
                }
                #[cfg_attr(not(postgres_tests), ignore = "set TEST_DATABASE_URL to run the PostgreSQL variant")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(backend) = $crate::Backend::postgres() {
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

    /// The storage the service would open on this database, not yet reached.
    pub fn open(&self) -> Arc<dyn Storage> {
        let url = DatabaseUrl::parse(&self.url).unwrap();
        account_service::storage::open(&url, Default::default()).unwrap()
    }

    /// The storage the service would open on this database, migrated.
    pub async fn connect(&self) -> Arc<dyn Storage> {
        let storage = self.open();
        storage.migrate().await.unwrap();
        storage
    }

    /// The stored password hash of an account, read straight from the table.
    pub async fn password_hash(&self, email: &str) -> String {
        let email = email.replace('\'', "''");
        self.text(&format!(
            "SELECT password_hash FROM accounts WHERE email = '{email}'"
        ))
        .await
    }

    /// Rows in a table, read straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// A single integer computed by `sql`, read straight from the database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.fetch_one(sql).await
    }

    /// A single text value computed by `sql`, read straight from the database.
    pub async fn text(&self, sql: &str) -> String {
        self.fetch_one(sql).await
    }

    /// Runs one statement straight on the database.
    pub async fn execute(&self, sql: &str) {
        let _: Option<i64> = self.run(sql, false).await;
    }

    pub fn is_sqlite(&self) -> bool {
        self.kind() == DatabaseKind::Sqlite
    }

    fn kind(&self) -> DatabaseKind {
        DatabaseUrl::parse(&self.url).unwrap().kind
    }

    async fn fetch_one<T>(&self, sql: &str) -> T
    where
        T: Send + Unpin,
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        self.run(sql, true).await.unwrap()
    }

    /// The one place that tells the backends apart: runs `sql` on a fresh
    /// connection, returning its single value when `fetch` is set.
    async fn run<T>(&self, sql: &str, fetch: bool) -> Option<T>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        macro_rules! on {
            ($connection:ty) => {{
                let mut c = <$connection>::connect(&self.url).await.unwrap();
                if fetch {
                    Some(sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap())
                } else {
                    sqlx::query(sql).execute(&mut c).await.unwrap();
                    None
                }
            }};
        }
        match self.kind() {
            DatabaseKind::Sqlite => on!(sqlx::SqliteConnection),
            DatabaseKind::Postgres => on!(sqlx::PgConnection),
        }
    }
}

/// Settings of every test application: every value that could leak in from
/// the environment is pinned. Every test comes from 127.0.0.1, so the rate
/// limits are off (they have tests of their own); outbox gauges follow the
/// outbox closely enough for tests to read them.
fn test_settings(db_url: &str, mail_dir: &Path, http_addr: SocketAddr) -> Vec<(String, String)> {
    let pinned = [
        ("DATABASE_URL", db_url.to_owned()),
        ("GRPC_ADDR", "127.0.0.1:0".into()),
        ("HTTP_ADDR", "127.0.0.1:0".into()),
        ("PUBLIC_BASE_URL", format!("http://{http_addr}")),
        ("SECRET_KEY", TEST_SECRET_KEY.into()),
        ("SECRET_KEY_PREVIOUS", String::new()),
        ("CONFIRMATION_LINK_TIMEOUT", "3600".into()),
        ("FRONTEND_HOMEPAGE", HOMEPAGE.into()),
        ("CONFIRMATION_MAIL_REQUEST_PAGE", REQUEST_PAGE.into()),
        ("EMAIL_BACKEND", "file".into()),
        ("EMAIL_FILE_PATH", mail_dir.display().to_string()),
        // Beside the mail, never in the working directory.
        (
            "MEDIA_STORE",
            format!("file://{}", mail_dir.with_file_name("media").display()),
        ),
        ("EMAIL_FROM", "Ecoms <noreply@ecoms.example>".into()),
        ("SITE_NAME", "Ecoms".into()),
        ("EMAIL_MAX_RETRIES", "2".into()),
        ("EMAIL_RETRY_DELAY", "0.2".into()),
        ("EMAIL_CLAIM_LEASE", "300".into()),
        ("HASH_CONCURRENCY", "2".into()),
        ("HASH_QUEUE", "256".into()),
        ("DATABASE_ACQUIRE_TIMEOUT", "2".into()),
        ("METRICS_REFRESH", "0.2".into()),
        // Direct changes to the database by a test are seen within a second.
        ("EMAIL_POLL_INTERVAL", "1".into()),
        ("RATE_LIMITS", "off".into()),
        ("ENUMERATION_PROTECTION", "off".into()),
        ("APP_ENV", "development".into()),
    ];
    pinned.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The /metrics listener, when METRICS_ADDR was set (bound on port 0).
    pub metrics_addr: Option<SocketAddr>,
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

/// Where a test application keeps its data: a fresh database of a backend,
/// or one a test prepared (shared with another instance, behind a relay).
pub enum Data {
    Fresh(Backend),
    Existing(TestDatabase),
}

impl From<Backend> for Data {
    fn from(backend: Backend) -> Data {
        Data::Fresh(backend)
    }
}

impl From<TestDatabase> for Data {
    fn from(db: TestDatabase) -> Data {
        Data::Existing(db)
    }
}

/// Starts the application on port 0: `spawn_app(backend).await`, with
/// settings changed by `.set("VARIABLE", value)` (parsed exactly as the
/// binary parses its environment) and `.unready()` to return before the
/// database was reached.
pub fn spawn_app(data: impl Into<Data>) -> TestAppBuilder {
    TestAppBuilder {
        data: data.into(),
        settings: Vec::new(),
        wait_until_ready: true,
    }
}

pub struct TestAppBuilder {
    data: Data,
    settings: Vec<(String, String)>,
    wait_until_ready: bool,
}

impl TestAppBuilder {
    /// Sets a setting by its environment variable's name.
    pub fn set(mut self, variable: &str, value: impl Into<String>) -> Self {
        self.settings.push((variable.to_owned(), value.into()));
        self
    }

    /// Sets several settings.
    pub fn set_all<K: AsRef<str>, V: Into<String>>(
        self,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        settings
            .into_iter()
            .fold(self, |app, (k, v)| app.set(k.as_ref(), v))
    }

    /// Returns at once, ready or not.
    pub fn unready(mut self) -> Self {
        self.wait_until_ready = false;
        self
    }

    pub async fn spawn(self) -> TestApp {
        init_test_logging();
        let db = match self.data {
            Data::Fresh(backend) => TestDatabase::create(&backend).await,
            Data::Existing(db) => db,
        };
        let mail_tmp = tempfile::tempdir().unwrap();
        let mail_dir = mail_tmp.path().join("mail");

        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc_listener.local_addr().unwrap();
        let http_addr = http_listener.local_addr().unwrap();

        // A setting given twice is taken from its last mention, as a test's
        // own settings override the pinned ones.
        let mut given = test_settings(&db.url, &mail_dir, http_addr);
        for (variable, value) in self.settings {
            given.retain(|(v, _)| *v != variable);
            given.push((variable, value));
        }
        let mut args = vec!["account-service".to_owned()];
        for (variable, value) in given {
            let flag = variable.to_lowercase().replace('_', "-");
            args.push(format!("--{flag}={value}"));
        }
        let settings = <Cli as clap::Parser>::try_parse_from(args)
            .unwrap()
            .settings
            .check()
            .unwrap();

        // Opened lazily, as the binary does: the application reaches and
        // migrates the database itself.
        let storage = account_service::storage::open(
            &settings.database.database_url,
            settings.database.pool(),
        )
        .unwrap();
        let dispatcher = account_service::mail::dispatcher(&settings.mail).unwrap();
        let tls = settings.access.tls().is_some();
        let metrics_listener = match settings.server.metrics_addr {
            Some(_) => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().map(|l| l.local_addr().unwrap());
        let mut app = Application::build_with(
            settings,
            grpc_listener,
            http_listener,
            Arc::clone(&storage),
            dispatcher,
        )
        .unwrap();
        if let Some(listener) = metrics_listener {
            app = app.with_metrics_listener(listener);
        }
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));

        let endpoint = Channel::from_shared(format!("http://{grpc_addr}")).unwrap();
        // Over TLS, tests build their own channels (see `tls`).
        let channel = if tls {
            endpoint.connect_lazy()
        } else {
            endpoint.connect().await.unwrap()
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let app = TestApp {
            grpc_addr,
            http_addr,
            metrics_addr,
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
        if self.wait_until_ready {
            app.wait_until_ready().await;
        }
        app
    }
}

impl IntoFuture for TestAppBuilder {
    type Output = TestApp;
    type IntoFuture = Pin<Box<dyn Future<Output = TestApp> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.spawn())
    }
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
        ConfirmationTokens::new(
            &account_service::auth::Keyring::new(TEST_SECRET_KEY.as_bytes(), None),
            3600,
        )
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
        locale: String::new(),
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
    /// Empty when the message has none.
    pub content_language: String,
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
            content_language: header("Content-Language"),
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

    /// The six-digit confirmation code of the plain-text part.
    pub fn code(&self) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
            .expect("a confirmation code in the text part")
            .to_owned()
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
