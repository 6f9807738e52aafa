//! Mail delivery through a real SMTP server: retries, dead letters, replay,
//! crashed workers and several instances.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{reserve_addr, Behaviour, SmtpServer};

on_both_backends!(
    registration_mail_reaches_the_smtp_server_and_confirms,
    mail_waits_for_an_smtp_server_that_is_down,
    temporary_failures_are_retried_then_delivered_once,
    permanent_failure_goes_straight_to_the_dead_letters,
    exhausted_retries_become_a_dead_letter_that_can_be_replayed,
    a_crashed_workers_claim_is_taken_over_after_the_lease,
);

const WAIT: Duration = Duration::from_secs(20);

/// Waits a little longer and checks nothing else arrived.
async fn assert_settled(smtp: &SmtpServer, expected: usize) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.received().len(),
        expected,
        "unexpected extra deliveries"
    );
}

async fn registration_mail_reaches_the_smtp_server_and_confirms(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let email = unique_email();

    let account = app.register(registration(&email)).await.unwrap();

    let mails = smtp.wait_for(1, WAIT).await;
    assert_settled(&smtp, 1).await;
    let mail = &mails[0];
    assert_eq!(mail.to, email);
    assert_eq!(mail.subject, "Ecoms Welcome Mail");
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(mail.text.contains("Hello shopper,"));
    assert!(mail.html.contains(&mail.link()));
    let response = app.http.get(mail.link()).send().await.unwrap();
    assert_eq!(response.headers()["location"], HOMEPAGE);
    assert!(app.get_by_id(&account.id).await.unwrap().verified);
    assert_eq!(
        app.db
            .scalar(
                "SELECT COUNT(*) FROM email_outbox WHERE status = 'sent' AND sent_at IS NOT NULL"
            )
            .await,
        1
    );
}

async fn mail_waits_for_an_smtp_server_that_is_down(backend: Backend) {
    let addr = reserve_addr();
    let app = spawn_app(backend)
        .set_all(smtp_settings(SmtpServer::url_at(addr)))
        .set("EMAIL_MAX_RETRIES", "8")
        .await;
    let email = unique_email();

    // Register answers OK although no mail server listens.
    app.register(registration(&email)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        app.db
            .scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")
            .await
            == 1
    );

    let smtp = SmtpServer::start_at(addr, Behaviour::Accept);
    let mails = smtp.wait_for(1, WAIT).await;
    assert_settled(&smtp, 1).await;
    assert_eq!(mails[0].to, email);
    assert!(
        app.db
            .scalar("SELECT CAST(attempts AS BIGINT) FROM email_outbox")
            .await
            >= 2
    );
}

async fn temporary_failures_are_retried_then_delivered_once(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::FailTransiently(2));
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;

    app.register(registration(&unique_email())).await.unwrap();

    smtp.wait_for(1, WAIT).await;
    assert_settled(&smtp, 1).await;
    assert_eq!(smtp.refused(), 2);
    let attempts_when_sent = eventually(WAIT, || async {
        let sent = app
            .db
            .scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'sent'")
            .await;
        (sent == 1).then_some(())
    })
    .await;
    assert!(attempts_when_sent.is_some());
    assert_eq!(
        app.db
            .scalar("SELECT CAST(attempts AS BIGINT) FROM email_outbox")
            .await,
        3
    );
    assert_eq!(app.db.count("failed_email_tasks").await, 0);
}

async fn permanent_failure_goes_straight_to_the_dead_letters(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::RejectPermanently);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let email = unique_email();

    app.register(registration(&email)).await.unwrap();

    let (attempts, error_kind) = dead_letter(&app).await;
    assert_eq!(smtp.refused(), 1);
    assert_eq!(attempts, 1);
    assert_eq!(error_kind, "permanent");
    assert_eq!(
        app.db
            .text("SELECT recipient FROM failed_email_tasks")
            .await,
        email
    );
    assert_eq!(
        app.db.text("SELECT status FROM email_outbox").await,
        "failed"
    );
    assert!(smtp.received().is_empty());
}

/// Waits for the test's one dead letter; returns its attempts and error kind.
async fn dead_letter(app: &TestApp) -> (i64, String) {
    let dead = eventually(WAIT, || async {
        (app.db.count("failed_email_tasks").await == 1).then_some(())
    })
    .await;
    assert!(dead.is_some(), "no dead letter");
    let attempts = app
        .db
        .scalar("SELECT CAST(attempts AS BIGINT) FROM failed_email_tasks")
        .await;
    let error_kind = app
        .db
        .text("SELECT error_kind FROM failed_email_tasks")
        .await;
    (attempts, error_kind)
}

fn outbox_command(db_url: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_account-service"))
        .arg("outbox")
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .current_dir(dir.path())
        .output()
        .unwrap()
}

async fn exhausted_retries_become_a_dead_letter_that_can_be_replayed(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::AlwaysFailTransiently);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();

    let (attempts, error_kind) = dead_letter(&app).await;
    // EMAIL_MAX_RETRIES=2: the first attempt and two retries.
    assert_eq!(smtp.refused(), 3);
    assert_eq!(attempts, 3);
    assert_eq!(error_kind, "transient");
    let error = app.db.text("SELECT error FROM failed_email_tasks").await;
    assert!(
        error.contains("451"),
        "error chain lacks the SMTP reply: {error}"
    );

    // The operator sees it...
    let failed = outbox_command(&app.db.url, &["failed"]);
    assert!(failed.status.success(), "{failed:?}");
    let listing = String::from_utf8(failed.stdout).unwrap();
    let line = listing
        .lines()
        .find(|l| l.contains(&email))
        .expect(&listing);
    assert!(
        line.contains("attempts=3") && line.contains("451"),
        "{line}"
    );
    let id = line.split('\t').next().unwrap().to_owned();
    let status = String::from_utf8(outbox_command(&app.db.url, &["status"]).stdout).unwrap();
    assert!(status.contains("failed   1"), "{status}");

    // ...and replays it once the server accepts mail again.
    smtp.set_behaviour(Behaviour::Accept);
    let retried = outbox_command(&app.db.url, &["retry", &id]);
    assert!(retried.status.success(), "{retried:?}");
    assert!(String::from_utf8(retried.stdout)
        .unwrap()
        .contains("requeued 1"));

    let mails = smtp.wait_for(1, WAIT).await;
    assert_settled(&smtp, 1).await;
    assert_eq!(mails[0].to, email);
    let again = outbox_command(&app.db.url, &["retry", &id]);
    assert!(
        !again.status.success(),
        "a replayed dead letter cannot be replayed twice"
    );
    let listing = String::from_utf8(outbox_command(&app.db.url, &["failed"]).stdout).unwrap();
    assert!(listing.contains("no dead letters"), "{listing}");
}

async fn a_crashed_workers_claim_is_taken_over_after_the_lease(backend: Backend) {
    // A worker claimed a welcome mail, then died before sending it.
    let db = TestDatabase::create(&backend).await;
    let storage = db.connect().await;
    let email = unique_email();
    let account_id = store_account_with_mail(storage.as_ref(), &email).await;
    let claimed_at = Utc::now();
    let lease_end = claimed_at + chrono::Duration::milliseconds(1500);
    let claimed = storage
        .claim_mail(claimed_at, lease_end, 10, uuid::Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message.account_id, account_id);

    // A live instance takes the row over once the lease has run out, and
    // sends it once.
    let smtp = SmtpServer::start(Behaviour::Accept);
    let survivor = spawn_app(db.shared())
        .set_all(smtp_settings(smtp.url()))
        .await;
    let mails = smtp.wait_for(1, WAIT).await;
    assert!(
        Utc::now() >= lease_end,
        "sent while another worker held the claim"
    );
    assert_settled(&smtp, 1).await;
    assert_eq!(mails[0].to, email);
    assert_eq!(
        survivor
            .db
            .scalar("SELECT CAST(attempts AS BIGINT) FROM email_outbox WHERE status = 'sent'")
            .await,
        2
    );
}

/// Stores an account and its queued mail without any running worker.
pub(crate) async fn store_account_with_mail(
    storage: &dyn account_service::storage::Storage,
    email: &str,
) -> uuid::Uuid {
    use chrono::SubsecRound;

    let now = Utc::now().trunc_subsecs(6);
    let account = crate::storage::account(email, now);
    let mail = crate::storage::mail(&account, now);
    storage
        .create_account(
            &account,
            &crate::storage::hash().await,
            &mail,
            &crate::storage::code_of(&account),
        )
        .await
        .unwrap();
    account.id
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_a_burst_exactly_once() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let smtp = SmtpServer::start(Behaviour::Accept);
    let db = TestDatabase::create(&backend).await;
    let a = spawn_app(db.shared())
        .set_all(smtp_settings(smtp.url()))
        .await;
    let b = spawn_app(db.shared())
        .set_all(smtp_settings(smtp.url()))
        .await;

    let emails: Vec<String> = (0..200).map(|_| unique_email()).collect();
    let mut results = Vec::new();
    for chunk in emails.chunks(20) {
        let calls = chunk.iter().enumerate().map(|(i, email)| {
            let app = if i % 2 == 0 { &a } else { &b };
            app.register(registration(email))
        });
        results.extend(futures::future::join_all(calls).await);
    }
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let mails = smtp.wait_for(200, Duration::from_secs(60)).await;
    assert_settled(&smtp, 200).await;
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    let recipients: HashSet<&str> = mails.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(ids.len(), 200);
    assert_eq!(recipients, emails.iter().map(String::as_str).collect());
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'sent'")
            .await,
        200
    );
}
