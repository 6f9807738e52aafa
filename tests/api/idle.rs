//! An idle instance leaves the database alone: it polls only as a safety
//! net, while queued mail and due retries still wake it at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{Behaviour, SmtpServer};

on_both_backends!(a_due_retry_wakes_the_worker_without_polling);

/// Transactions committed or rolled back in `database`, as PostgreSQL counts them.
async fn transactions(admin_url: &str, database: &str) -> i64 {
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query_scalar(
        "SELECT CAST(xact_commit + xact_rollback AS BIGINT) FROM pg_stat_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

/// A TCP relay in front of PostgreSQL that counts the statements its clients
/// send (simple queries and executions of prepared ones), so that a test
/// sees what one instance asks of the database, apart from what the server
/// does on its own (autovacuum) or reports late to its statistics.
struct CountingRelay {
    addr: SocketAddr,
    statements: Arc<AtomicU64>,
}

impl CountingRelay {
    async fn start(upstream: SocketAddr) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let statements = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&statements);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = inbound.into_split();
                    let (mut from_server, mut to_server) = outbound.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    });
                    let mut parser = Frontend::default();
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match from_client.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        counter.fetch_add(parser.feed(&buf[..n]), Ordering::Relaxed);
                    }
                });
            }
        });
        CountingRelay { addr, statements }
    }

    fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// `db_url` reached through this relay.
    fn url(&self, db_url: &str) -> String {
        let mut url = url::Url::parse(db_url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }
}

/// The client side of the PostgreSQL wire protocol, framed: untyped start-up
/// messages (an SSL or GSS request may come first), then typed ones.
#[derive(Default)]
struct Frontend {
    pending: Vec<u8>,
    started: bool,
}

impl Frontend {
    /// Takes in bytes sent to the server; returns how many of the messages
    /// they completed are statements ('Q' simple query, 'E' execute).
    fn feed(&mut self, bytes: &[u8]) -> u64 {
        self.pending.extend_from_slice(bytes);
        let mut statements = 0;
        loop {
            let (head, kind) = if self.started {
                (1, self.pending.first().copied())
            } else {
                (0, None)
            };
            if self.pending.len() < head + 4 {
                return statements;
            }
            let len = u32::from_be_bytes(self.pending[head..head + 4].try_into().unwrap()) as usize;
            if self.pending.len() < head + len {
                return statements;
            }
            if self.started {
                if matches!(kind, Some(b'Q') | Some(b'E')) {
                    statements += 1;
                }
            } else {
                let code = u32::from_be_bytes(self.pending[4..8].try_into().unwrap());
                // SSLRequest and GSSENCRequest precede the start-up message.
                self.started = code != 80_877_103 && code != 80_877_104;
            }
            self.pending.drain(..head + len);
        }
    }
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_makes_almost_no_transactions() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres { admin_url } = &backend else {
        unreachable!()
    };
    let db = TestDatabase::create(&backend).await;
    let database = url::Url::parse(&db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let upstream = {
        let url = url::Url::parse(admin_url).unwrap();
        let (host, port) = (
            url.host_str().unwrap().to_owned(),
            url.port().unwrap_or(5432),
        );
        tokio::net::lookup_host((host, port))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let relay = CountingRelay::start(upstream).await;
    let app = spawn_app(TestDatabase::at(relay.url(&db.url)))
        .set("EMAIL_POLL_INTERVAL", "30")
        .set("METRICS_REFRESH", "10")
        .await;
    // Start-up (migrations, the first look at the outbox, housekeeping,
    // LISTEN) is over.
    tokio::time::sleep(Duration::from_secs(15)).await;

    let (statements, xacts) = (relay.statements(), transactions(admin_url, &database).await);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let statements = relay.statements() - statements;
    // For the record only: the server's count also holds its own work in
    // this database (autovacuum) and counts that busy backends report late.
    let xacts = transactions(admin_url, &database).await - xacts;
    eprintln!(
        "idle: {statements} statements sent in 30 s; the server counted {xacts} transactions"
    );
    // Steady idleness is one look at the outbox every 30 s and at most one
    // gauge refresh, each a single statement (a worker polling every second
    // sends over thirty).
    assert!(
        statements <= 3,
        "{statements} statements in 30 s of idleness"
    );
    // Still awake: mail queued now leaves at once, not at the next poll.
    let (started, sent) = (Instant::now(), relay.statements());
    app.register(registration(&unique_email())).await.unwrap();
    app.wait_for_mails(1).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The relay counts this instance's statements: Register's went through it.
    assert!(
        relay.statements() >= sent + 5,
        "{} then {}",
        sent,
        relay.statements()
    );
}

async fn a_due_retry_wakes_the_worker_without_polling(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::FailTransiently(1));
    let app = spawn_app(backend)
        .set("EMAIL_BACKEND", "smtp")
        .set("SMTP_URL", smtp.url())
        .set("SMTP_TIMEOUT", "5")
        .set("EMAIL_RETRY_DELAY", "0.3")
        .set("EMAIL_POLL_INTERVAL", "600")
        .await;

    app.register(registration(&unique_email())).await.unwrap();

    // Far sooner than the poll interval: the retry's own timer woke the worker.
    smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(smtp.refused(), 1);
}
