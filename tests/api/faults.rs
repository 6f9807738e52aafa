//! Faults: the database down at start-up or gone mid-run, SIGTERM, SIGKILL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{get_account_request, GetAccountRequest};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::*;
use crate::smtp_server::{reserve_addr, Behaviour, SmtpServer};

/// A TCP relay between the service and PostgreSQL that a test can cut and
/// restore, as a network partition or a database restart would.
struct Relay {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    fn new(upstream: SocketAddr) -> Relay {
        Relay {
            addr: reserve_addr(),
            upstream,
            tasks: Arc::new(Mutex::new(Vec::new())),
        }
    }

    async fn open(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let (upstream, tasks) = (self.upstream, Arc::clone(&self.tasks));
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(relay);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Drops every connection and stops listening.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

fn postgres_upstream(admin_url: &str) -> SocketAddr {
    let url = url::Url::parse(admin_url).unwrap();
    let host = url.host_str().unwrap();
    let port = url.port().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .unwrap()
        .next()
        .unwrap()
}

fn via(db_url: &str, relay: &Relay) -> String {
    let mut url = url::Url::parse(db_url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(relay.addr.port())).unwrap();
    url.to_string()
}

async fn health(app: &TestApp, service: &str) -> i32 {
    HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_at_start_up_and_gone_mid_run() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres { admin_url } = &backend else {
        unreachable!()
    };
    let db = TestDatabase::create(&backend).await;
    let relay = Relay::new(postgres_upstream(admin_url));
    let through_relay = TestDatabase::at(via(&db.url, &relay));

    // Start-up with the database unreachable: the service answers, but is not ready.
    // Rate limits on, in the database: their store fails as the rest does.
    let app = spawn_app(through_relay)
        .set("RATE_LIMITS", "on")
        .set("RATE_LIMIT_STORE", "postgres")
        .unready()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ready = app.http.get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    for service in ["", "account.v1.AccountService"] {
        assert_eq!(
            health(&app, service).await,
            ServingStatus::NotServing as i32
        );
    }
    let early = app.register(registration(&unique_email())).await;
    assert_code(&early, Code::Unavailable);
    let early = app
        .client
        .clone()
        .resend_confirmation(
            account_service::proto::account::v1::ResendConfirmationRequest {
                email: unique_email(),
            },
        )
        .await;
    assert_code(&early, Code::Unavailable);

    // The database comes up: the service connects by itself.
    relay.open().await;
    app.wait_until_ready().await;
    assert_eq!(health(&app, "").await, ServingStatus::Serving as i32);
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();

    // The database goes away mid-run: UNAVAILABLE, never INTERNAL.
    relay.cut();
    let during = app.get_by_email(&email).await;
    assert_code(&during, Code::Unavailable);
    let during = app.register(registration(&unique_email())).await;
    assert_code(&during, Code::Unavailable);
    let ready = app.http.get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    // It comes back: the service recovers without a restart.
    relay.open().await;
    let recovered = eventually(Duration::from_secs(20), || async {
        app.get_by_email(&email).await.ok()
    })
    .await;
    assert!(recovered.is_some(), "the service did not recover");
    app.register(registration(&unique_email())).await.unwrap();
}

/// The real binary, started on a database and an SMTP server.
struct Process {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl Process {
    fn start(db_url: &str, smtp_url: &str, extra: &[(&str, &str)]) -> Process {
        let (grpc, http) = (reserve_addr(), reserve_addr());
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_account-service"));
        command
            .env_clear()
            .env("DATABASE_URL", db_url)
            .env("GRPC_ADDR", grpc.to_string())
            .env("HTTP_ADDR", http.to_string())
            .env("SECRET_KEY", TEST_SECRET_KEY)
            .env("EMAIL_BACKEND", "smtp")
            .env("SMTP_URL", smtp_url)
            .env("EMAIL_RETRY_DELAY", "0.2")
            .env("EMAIL_CLAIM_LEASE", "15")
            .env("SMTP_TIMEOUT", "5")
            .env("HASH_QUEUE", "256")
            .env("RUST_LOG", "info")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        for (k, v) in extra {
            command.env(k, v);
        }
        Process {
            child: command.spawn().unwrap(),
            grpc,
            http,
            log,
        }
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("http://{}/readyz", self.http);
        let ready = eventually(Duration::from_secs(20), || async {
            let r = client.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        assert!(ready.is_some(), "not ready: {}", self.log());
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn exists(channel: &Channel, email: &str) -> bool {
    AccountServiceClient::new(channel.clone())
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::Email(email.into())),
        })
        .await
        .is_ok()
}

crate::on_both_backends!(
    sigterm_drains_calls_in_flight_and_exits,
    sigkill_mid_burst_loses_nothing,
    sigterm_mid_delivery_sends_every_mail_exactly_once,
    sigterm_hands_back_mail_it_had_not_started,
    a_schema_from_a_newer_release_stops_start_up,
);

/// Waits up to `limit` for the process to exit.
async fn exit_within(process: &mut Process, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = process.child.try_wait().unwrap() {
            return exit;
        }
        assert!(
            started.elapsed() < limit,
            "the process did not exit in time: {}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sigterm_mid_delivery_sends_every_mail_exactly_once(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    // Every message takes 3 s at the mail server.
    let smtp = SmtpServer::start(Behaviour::Slow(Duration::from_secs(3)));
    let settings = [("SHUTDOWN_GRACE", "10")];
    let mut process = Process::start(&db.url, &smtp.url(), &settings);
    process.wait_ready().await;
    let channel = process.channel().await;
    let emails: Vec<String> = (0..10).map(|_| unique_email()).collect();
    let started = std::time::Instant::now();
    for email in &emails {
        AccountServiceClient::new(channel.clone())
            .register(registration(email))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
    process.signal("TERM");
    let exit = exit_within(&mut process, Duration::from_secs(12)).await;
    assert!(exit.success(), "{}", process.log());

    // The next start sends whatever is left, without waiting for a lease.
    let process = Process::start(&db.url, &smtp.url(), &settings);
    process.wait_ready().await;
    smtp.wait_for(10, Duration::from_secs(30)).await;
    // Anything sent twice would arrive within another send's time.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = smtp.received();
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in &received {
        *per_recipient.entry(mail.to.clone()).or_default() += 1;
    }
    for email in &emails {
        assert_eq!(
            per_recipient.get(email),
            Some(&1),
            "{email}: {per_recipient:?}"
        );
    }
    assert_eq!(received.len(), 10);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'sent'")
            .await,
        10
    );
}

async fn sigterm_hands_back_mail_it_had_not_started(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::Slow(Duration::from_secs(3)));
    // A lease far longer than the test: a message still claimed after the
    // stop could only be sent again once it ran out.
    let settings = [("SHUTDOWN_GRACE", "10"), ("EMAIL_CLAIM_LEASE", "300")];
    let mut process = Process::start(&db.url, &smtp.url(), &settings);
    process.wait_ready().await;
    let channel = process.channel().await;
    let emails: Vec<String> = (0..50).map(|_| unique_email()).collect();
    let calls: Vec<_> = emails
        .iter()
        .map(|email| {
            let mut client = AccountServiceClient::new(channel.clone());
            let request = registration(email);
            tokio::spawn(async move { client.register(request).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // The first batch (the first mail or two) is out; the rest was claimed
    // next, 32 sends at a time, the others waiting for a send slot.
    smtp.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    process.signal("TERM");
    let exit = exit_within(&mut process, Duration::from_secs(12)).await;
    assert!(exit.success(), "{}", process.log());
    let pending = db
        .scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")
        .await;
    assert!(
        pending > 0,
        "every mail went out before the stop: nothing was handed back"
    );
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM email_outbox WHERE status = 'pending' \
             AND (claim_token IS NOT NULL OR locked_until IS NOT NULL)"
        )
        .await,
        0,
        "unsent mail still held by the stopped worker's claim"
    );

    let _next = Process::start(&db.url, &smtp.url(), &settings);
    smtp.wait_for(50, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in smtp.received() {
        *per_recipient.entry(mail.to.clone()).or_default() += 1;
    }
    for email in &emails {
        assert_eq!(per_recipient.get(email), Some(&1), "{email}");
    }
}

async fn a_schema_from_a_newer_release_stops_start_up(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let storage = db.connect().await;
    storage.close().await;
    db.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         SELECT 29990101000000, 'from a newer release', success, checksum, execution_time \
         FROM _sqlx_migrations ORDER BY version LIMIT 1",
    )
    .await;
    let smtp = SmtpServer::start(Behaviour::Accept);
    let mut process = Process::start(&db.url, &smtp.url(), &[]);
    let exit = exit_within(&mut process, Duration::from_secs(15)).await;
    assert!(!exit.success());
    let log = process.log();
    assert!(log.contains("29990101000000"), "{log}");
    assert!(!log.contains("database not reachable"), "{log}");
    // The outbox commands refuse it as well, and never migrate.
    for args in [&["outbox", "status"][..], &["outbox", "failed"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_account-service"))
            .env_clear()
            .env("DATABASE_URL", &db.url)
            .current_dir(std::env::temp_dir())
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("29990101000000"), "{stderr}");
    }
}

async fn sigterm_drains_calls_in_flight_and_exits(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::Accept);
    let mut process = Process::start(
        &db.url,
        &smtp.url(),
        &[("HASH_CONCURRENCY", "1"), ("SHUTDOWN_GRACE", "10")],
    );
    process.wait_ready().await;
    let channel = process.channel().await;
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    // Twenty registrations in flight (one hashing thread: ~0.5 s of work).
    let emails: Vec<String> = (0..20).map(|_| unique_email()).collect();
    let calls: Vec<_> = emails
        .iter()
        .map(|email| {
            let mut client = AccountServiceClient::new(channel.clone());
            let request = registration(email);
            tokio::spawn(async move { client.register(request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let signalled = std::time::Instant::now();
    process.signal("TERM");

    // Health turns NOT_SERVING for watchers.
    let update = watch.message().await.unwrap().unwrap();
    assert_eq!(update.status, ServingStatus::NotServing as i32);
    drop(watch);
    // Every call accepted before the signal completes.
    for call in calls {
        let answer = call.await.unwrap();
        assert!(answer.is_ok(), "a call in flight failed: {answer:?}");
    }
    // New connections are refused, and the process exits in time, cleanly.
    let mut exit = None;
    for _ in 0..240 {
        exit = process.child.try_wait().unwrap();
        if exit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = exit.expect("the process did not exit within the grace period");
    assert!(exit.success(), "{}", process.log());
    assert!(signalled.elapsed() < Duration::from_secs(11));
    assert!(TcpStream::connect(process.grpc).await.is_err());
    assert_eq!(db.count("accounts").await, 20);
    // Each queued mail was delivered before exit or waits in the outbox.
    let sent = smtp.received().len() as i64;
    let pending = db
        .scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")
        .await;
    assert_eq!(sent + pending, 20);
}

async fn sigkill_mid_burst_loses_nothing(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::Accept);
    let process = Process::start(&db.url, &smtp.url(), &[("HASH_CONCURRENCY", "2")]);
    process.wait_ready().await;
    let channel = process.channel().await;

    // A burst of registrations; the process is killed while it runs.
    let answered_ok = Arc::new(Mutex::new(Vec::new()));
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let (channel, answered_ok) = (channel.clone(), Arc::clone(&answered_ok));
            tokio::spawn(async move {
                let mut client = AccountServiceClient::new(channel);
                loop {
                    let email = unique_email();
                    match client.register(registration(&email)).await {
                        Ok(_) => answered_ok.lock().unwrap().push(email),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    let enough = eventually(Duration::from_secs(30), || async {
        (answered_ok.lock().unwrap().len() >= 25).then_some(())
    })
    .await;
    assert!(enough.is_some(), "the burst did not get going");
    let mut process = process;
    process.signal("KILL");
    let _ = process.child.wait();
    for task in burst {
        task.await.unwrap();
    }
    let answered_ok = answered_ok.lock().unwrap().clone();
    drop(process);

    // Restart on the same database: the outbox is drained.
    let restarted = Process::start(&db.url, &smtp.url(), &[]);
    restarted.wait_ready().await;
    let channel = restarted.channel().await;
    let accounts = db.count("accounts").await;
    let drained = eventually(Duration::from_secs(30), || async {
        let pending = db
            .scalar("SELECT COUNT(*) FROM email_outbox WHERE status <> 'sent'")
            .await;
        (pending == 0 && smtp.received().len() as i64 >= accounts).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "the outbox was not drained: {}",
        restarted.log()
    );

    // Every account Register answered OK for exists...
    for email in &answered_ok {
        assert!(
            exists(&channel, email).await,
            "{email} was answered OK but is gone"
        );
    }
    // ...every account has exactly one welcome message (a resend after a
    // crash mid-send would carry the same Message-ID)...
    let mails = smtp.received();
    let mut by_recipient: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for mail in &mails {
        by_recipient
            .entry(mail.to.clone())
            .or_default()
            .insert(mail.message_id.clone());
    }
    assert_eq!(by_recipient.len() as i64, accounts);
    for email in &answered_ok {
        assert_eq!(
            by_recipient.get(email).map(|ids| ids.len()),
            Some(1),
            "{email}"
        );
    }
    // ...and no mail went to an address without an account.
    for recipient in by_recipient.keys() {
        assert!(
            exists(&channel, recipient).await,
            "mail to {recipient}, which has no account"
        );
    }
}
