//! An idle instance leaves the database alone: it polls only as a safety
//! net, while queued mail and due retries still wake it at once.

use std::time::{Duration, Instant};

use sqlx::Connection;

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
    let app = spawn_app(db)
        .set("EMAIL_POLL_INTERVAL", "30")
        .set("METRICS_REFRESH", "10")
        .await;
    // Start-up (migrations, the first look at the outbox, housekeeping,
    // LISTEN) is over, and its counts reached the statistics: backends
    // report them within ten seconds of going idle, later on a machine
    // busy with other tests.
    tokio::time::sleep(Duration::from_secs(20)).await;

    // Steady idleness is one poll and at most one gauge refresh in 20 s (a
    // worker polling every second makes over twenty). A backend that was
    // busy reports its counts to the statistics late (PostgreSQL retries a
    // contended flush for up to a minute), so start-up work can land in a
    // later window: a late report only ever adds to one window, while a
    // polling loop fills every one, so the quietest of three windows is what
    // is judged.
    let mut quietest = i64::MAX;
    for _ in 0..3 {
        let before = transactions(admin_url, &database).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        let after = transactions(admin_url, &database).await;
        eprintln!("idle: {} transactions in 20 s", after - before);
        quietest = quietest.min(after - before);
        if quietest <= 4 {
            break;
        }
    }
    assert!(
        quietest <= 4,
        "{quietest} transactions in the quietest 20 s of idleness"
    );
    // Still awake: mail queued now leaves at once, not at the next poll.
    let started = Instant::now();
    app.register(registration(&unique_email())).await.unwrap();
    app.wait_for_mails(1).await;
    assert!(started.elapsed() < Duration::from_secs(5));
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
