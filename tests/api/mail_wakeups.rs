//! What wakes the binary's delivery worker before its safety-net poll:
//! every retry it scheduled, and mail another process queued.

use std::time::{Duration, Instant};

use account_service::proto::account::v1::account_service_client::AccountServiceClient;

use crate::access_binary::{binary, Service};
use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{Behaviour, SmtpServer};

on_both_backends!(
    every_retry_wakes_the_worker_not_only_the_first,
    each_messages_retry_wakes_the_worker_not_only_the_earliest,
    mail_another_process_requeues_leaves_before_the_poll,
);

/// Far beyond every wait below: only a wake-up, never the poll, delivers in time.
const POLL: &str = "30";

async fn start(db: &TestDatabase, smtp: &SmtpServer, retries: &str) -> Service {
    Service::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("EMAIL_BACKEND", "smtp".into()),
        ("SMTP_URL", smtp.url()),
        ("SMTP_TIMEOUT", "5".into()),
        ("EMAIL_RETRY_DELAY", "1".into()),
        ("EMAIL_MAX_RETRIES", retries.into()),
        ("EMAIL_POLL_INTERVAL", POLL.into()),
    ])
    .await
}

async fn register(service: &Service) -> String {
    let email = unique_email();
    AccountServiceClient::new(service.plaintext().await)
        .register(registration(&email))
        .await
        .unwrap();
    email
}

async fn every_retry_wakes_the_worker_not_only_the_first(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::FailTransiently(2));
    let service = start(&db, &smtp, "5").await;

    let started = Instant::now();
    let email = register(&service).await;

    // Retries after 1 s and 2 s (±20%): about 3 s, where waiting for the
    // poll after any of them would take 30.
    let mails = smtp.wait_for(1, Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert_eq!(mails[0].to, email);
    assert_eq!(smtp.refused(), 2);
    assert!(
        took < Duration::from_secs(8),
        "delivered after {took:?}: {}",
        service.log_text()
    );
    eprintln!("delivered after two temporary failures in {took:?}");
}

async fn each_messages_retry_wakes_the_worker_not_only_the_earliest(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::FailTransiently(2));
    let service = start(&db, &smtp, "5").await;

    // Each mail fails once: the first is retried after 0.8-1.2 s, the
    // second, queued 0.6 s later, after 1.4-1.8 s, so the claim that takes
    // the first retry leaves the second one waiting.
    let started = Instant::now();
    let first = register(&service).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = register(&service).await;

    let mails = smtp.wait_for(2, Duration::from_secs(8)).await;
    let took = started.elapsed();
    let mut to: Vec<_> = mails.iter().map(|m| m.to.clone()).collect();
    to.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(to, expected);
    assert_eq!(smtp.refused(), 2);
    assert!(
        took < Duration::from_secs(8),
        "delivered after {took:?}: {}",
        service.log_text()
    );
    eprintln!("two mails retried at different times delivered in {took:?}");
}

async fn mail_another_process_requeues_leaves_before_the_poll(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::RejectPermanently);
    let service = start(&db, &smtp, "0").await;
    let email = register(&service).await;
    let dead = eventually(Duration::from_secs(10), || async {
        (db.count("failed_email_tasks").await == 1).then_some(())
    })
    .await;
    assert!(dead.is_some(), "no dead letter: {}", service.log_text());
    // The worker has gone back to sleep for the poll interval.
    tokio::time::sleep(Duration::from_secs(1)).await;
    smtp.set_behaviour(Behaviour::Accept);

    let retried = binary()
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .args(["outbox", "retry", "--all"])
        .output()
        .unwrap();
    assert!(retried.status.success(), "{retried:?}");
    let started = Instant::now();

    // Another process's commit: seen through PRAGMA data_version on SQLite
    // (within half a second), through NOTIFY on PostgreSQL.
    let mails = smtp.wait_for(1, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert_eq!(mails[0].to, email);
    assert!(
        took < Duration::from_secs(3),
        "delivered {took:?} after the requeue: {}",
        service.log_text()
    );
    eprintln!("requeued by another process, delivered in {took:?}");
}
