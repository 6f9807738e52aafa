//! The delivery worker's own step, driven directly over real storage with a
//! database that refuses the first "sent" records.

use std::sync::Arc;

use account_service::mail::{
    DeliveryWorker, ExecutionOutcome, FileDispatcher, MailComposer, RetryPolicy,
};
use tokio_util::sync::CancellationToken;

use crate::delivery::store_account_with_mail;
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(a_failed_sent_record_is_retried_not_dropped);

/// How many "sent" updates of `email_outbox` the database refuses.
const REFUSALS: i64 = 2;

/// Makes the database refuse the first [`REFUSALS`] updates that record
/// mail as sent, as a database that went away for a moment would: the
/// fault sits where a real one happens, under the storage the worker uses.
/// Each backend needs a counter that outlives the refused statement.
async fn refuse_sent_records(db: &TestDatabase) {
    if db.is_sqlite() {
        // RAISE(FAIL) ends the statement without undoing what it already
        // did, so the trigger's own decrement stays (ABORT would undo it).
        db.execute(&format!(
            "CREATE TABLE sent_refusals (remaining INTEGER NOT NULL); \
             INSERT INTO sent_refusals VALUES ({REFUSALS}); \
             CREATE TRIGGER refuse_sent BEFORE UPDATE OF status ON email_outbox \
             WHEN NEW.status = 'sent' AND (SELECT remaining FROM sent_refusals) > 0 \
             BEGIN \
                 UPDATE sent_refusals SET remaining = remaining - 1; \
                 SELECT RAISE(FAIL, 'sent record refused'); \
             END;"
        ))
        .await;
    } else {
        // An exception undoes the whole statement, but not a sequence's
        // nextval.
        db.execute("CREATE SEQUENCE sent_refusals").await;
        db.execute(&format!(
            "CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
                 IF nextval('sent_refusals') <= {REFUSALS} THEN \
                     RAISE EXCEPTION 'sent record refused'; \
                 END IF; \
                 RETURN NEW; \
             END $$"
        ))
        .await;
        db.execute(
            "CREATE TRIGGER refuse_sent BEFORE UPDATE OF status ON email_outbox \
             FOR EACH ROW WHEN (NEW.status = 'sent') EXECUTE FUNCTION refuse_sent()",
        )
        .await;
    }
}

/// Refusals the database has still to make.
async fn refusals_left(db: &TestDatabase) -> i64 {
    if db.is_sqlite() {
        db.scalar("SELECT remaining FROM sent_refusals").await
    } else {
        // A refused statement draws one value; one that goes through draws
        // one for each of its rows.
        let drawn = db
            .scalar("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sent_refusals")
            .await;
        (REFUSALS - drawn).max(0)
    }
}

async fn a_failed_sent_record_is_retried_not_dropped(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let storage = db.connect().await;
    for i in 0..3 {
        store_account_with_mail(storage.as_ref(), &format!("w{i}@example.com")).await;
    }
    refuse_sent_records(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let composer = MailComposer::new(
        "Ecoms <noreply@ecoms.example>".parse().unwrap(),
        "Ecoms".into(),
        "http://localhost:8080",
        3600,
        account_service::mail::Catalogues::built_in().unwrap(),
    );
    let worker = DeliveryWorker::new(
        storage,
        Arc::new(FileDispatcher::new(dir.path().to_owned()).unwrap()),
        Arc::new(composer),
        RetryPolicy {
            max_retries: 2,
            base_delay: std::time::Duration::from_secs(60),
        },
        std::time::Duration::from_secs(60),
        Arc::new(account_service::metrics::Metrics::new()),
    );

    let outcome = worker
        .try_execute_task(&CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(outcome, ExecutionOutcome::Handled(3));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    // The database did refuse: the step above went through its failures.
    assert_eq!(refusals_left(&db).await, 0);
    // Recorded after two refusals, not left to be sent again after the lease.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'sent'")
            .await,
        3
    );
    assert_eq!(
        worker
            .try_execute_task(&CancellationToken::new())
            .await
            .unwrap(),
        ExecutionOutcome::EmptyQueue
    );
}
