//! The storage contract, run against each backend directly.

use std::sync::Arc;

use account_service::auth::{PasswordHash, PasswordHasher};
use account_service::domain::{Account, Password};
use account_service::mail::MailKind;
use account_service::storage::{MailFailure, OutboxMessage, Storage, StorageError};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    account_and_mail_are_stored_together,
    duplicate_email_is_a_conflict_and_stores_nothing,
    a_failed_mail_insert_rolls_the_account_back,
    verification_is_idempotent,
    claims_are_exclusive_until_the_lease_ends,
    sent_and_rescheduled_mail,
    dead_letters_keep_the_message,
    dead_letters_are_listed_and_requeued,
    resend_cooldown_is_claimed_atomically,
    resend_queues_its_mail_in_the_cooldowns_transaction,
    expired_cooldowns_are_pruned,
    pruning_keeps_pending_failed_and_recent_mail,
    outbox_status_counts_by_state,
    a_lapsed_claim_cannot_record_an_outcome,
    released_claims_are_due_at_once,
    schema_check_reads_without_changing,
    unknown_applied_migration_is_fatal,
    stored_mail_kinds_read_back_and_unknown_ones_are_corrupt,
);

/// The claim token of every claim in these tests unless one says otherwise.
const CLAIM: Uuid = Uuid::from_u128(0xc1a1);

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn account(email: &str, at: DateTime<Utc>) -> Account {
    Account {
        id: Uuid::now_v7(),
        email: email.into(),
        username: "u".into(),
        first_name: "f".into(),
        last_name: "l".into(),
        phone_number: "1".into(),
        address: "a".into(),
        verified: false,
        term_and_condition: true,
        created_from: "web".into(),
        locale: "de".into(),
        created_at: at,
        updated_at: at,
        totp_enabled: false,
        image: None,
    }
}

pub(crate) fn mail(account: &Account, at: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id: Uuid::now_v7(),
        account_id: account.id,
        kind: MailKind::Welcome,
        recipient: account.email.clone(),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: "h".into(),
        created_at: at,
        locale: "de".into(),
    }
}

/// A confirmation code row for `account`'s mail.
pub(crate) fn code_of(account: &Account) -> account_service::auth::StoredCode {
    account_service::auth::ConfirmationCodes::new(
        &account_service::auth::Keyring::new(b"storage-test-key", None),
        3600,
    )
    .issue(account.id, account.created_at)
    .1
}

pub(crate) async fn hash() -> PasswordHash {
    PasswordHasher::new(1, 4)
        .hash(Password::parse("secret123").unwrap())
        .await
        .unwrap()
}

async fn store(backend: &Backend) -> (TestDatabase, Arc<dyn Storage>) {
    let db = TestDatabase::create(backend).await;
    let storage = db.connect().await;
    (db, storage)
}

async fn account_and_mail_are_stored_together(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    let m = mail(&a, t);

    s.create_account(&a, &hash().await, &m, &code_of(&a))
        .await
        .unwrap();

    assert_eq!(s.account_by_id(a.id).await.unwrap(), a);
    assert_eq!(s.account_by_email("a@example.com").await.unwrap(), a);
    let claimed = s
        .claim_mail(t, t + Duration::minutes(5), 10, CLAIM)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message, m);
    assert_eq!(claimed[0].attempts, 1);
}

async fn duplicate_email_is_a_conflict_and_stores_nothing(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let first = account("a@example.com", t);
    s.create_account(&first, &hash().await, &mail(&first, t), &code_of(&first))
        .await
        .unwrap();
    let second = account("a@example.com", t);

    let err = s
        .create_account(&second, &hash().await, &mail(&second, t), &code_of(&second))
        .await
        .unwrap_err();

    assert!(matches!(err, StorageError::Conflict), "{err:?}");
    assert!(matches!(
        s.account_by_id(second.id).await,
        Err(StorageError::NotFound)
    ));
    assert_eq!(db.count("email_outbox").await, 1);
}

async fn a_failed_mail_insert_rolls_the_account_back(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let first = account("a@example.com", t);
    let first_mail = mail(&first, t);
    s.create_account(&first, &hash().await, &first_mail, &code_of(&first))
        .await
        .unwrap();
    let second = account("b@example.com", t);
    // Re-using the outbox id makes the second insert of the transaction fail.
    let clashing = OutboxMessage {
        account_id: second.id,
        ..first_mail
    };

    assert!(s
        .create_account(&second, &hash().await, &clashing, &code_of(&second))
        .await
        .is_err());

    assert!(matches!(
        s.account_by_email("b@example.com").await,
        Err(StorageError::NotFound)
    ));
    assert_eq!(db.count("accounts").await, 1);
}

async fn verification_is_idempotent(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    let later = t + Duration::seconds(5);

    let verified = s.mark_verified(a.id, later).await.unwrap();
    assert!(verified.verified);
    assert_eq!(verified.updated_at, later);
    let again = s
        .mark_verified(a.id, later + Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(again, verified);
    assert!(matches!(
        s.mark_verified(Uuid::now_v7(), later).await,
        Err(StorageError::NotFound)
    ));
}

async fn claims_are_exclusive_until_the_lease_ends(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    let lease_end = t + Duration::seconds(30);

    assert_eq!(
        s.claim_mail(t, lease_end, 10, CLAIM).await.unwrap().len(),
        1
    );
    // Held by the first claim.
    assert!(s
        .claim_mail(t + Duration::seconds(29), lease_end, 10, CLAIM)
        .await
        .unwrap()
        .is_empty());
    // The claimant died: after the lease another worker takes it over.
    let retaken = s
        .claim_mail(lease_end, lease_end + Duration::seconds(30), 10, CLAIM)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].attempts, 2);
}

async fn sent_and_rescheduled_mail(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    let b = account("b@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    s.create_account(&b, &hash().await, &mail(&b, t), &code_of(&b))
        .await
        .unwrap();
    let lease = t + Duration::minutes(5);
    let claimed = s.claim_mail(t, lease, 10, CLAIM).await.unwrap();
    assert_eq!(claimed.len(), 2);

    s.mark_mail_sent(&[claimed[0].message.id], CLAIM, t)
        .await
        .unwrap();
    let retry_at = t + Duration::seconds(60);
    s.reschedule_mail(claimed[1].message.id, CLAIM, retry_at, "busy")
        .await
        .unwrap();

    // Not due yet: nothing to claim, even though the lease was released.
    assert!(s
        .claim_mail(t + Duration::seconds(59), lease, 10, CLAIM)
        .await
        .unwrap()
        .is_empty());
    let due = s.claim_mail(retry_at, lease, 10, CLAIM).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, claimed[1].message.id);
    assert_eq!(due[0].attempts, 2);
}

async fn dead_letters_keep_the_message(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    let claimed = s
        .claim_mail(t, t + Duration::minutes(5), 10, CLAIM)
        .await
        .unwrap();

    s.fail_mail(
        claimed[0].message.id,
        CLAIM,
        t,
        &MailFailure {
            kind: "permanent",
            error: "550 no such user",
        },
    )
    .await
    .unwrap();

    assert_eq!(db.count("failed_email_tasks").await, 1);
    assert_eq!(db.count("email_outbox").await, 1);
    assert!(s
        .claim_mail(t + Duration::hours(1), t + Duration::hours(2), 10, CLAIM)
        .await
        .unwrap()
        .is_empty());
}

async fn dead_letters_are_listed_and_requeued(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let mut ids = Vec::new();
    for (i, email) in ["a@example.com", "b@example.com"].into_iter().enumerate() {
        let a = account(email, t);
        let m = mail(&a, t);
        s.create_account(&a, &hash().await, &m, &code_of(&a))
            .await
            .unwrap();
        s.claim_mail(t, t + Duration::minutes(5), 1, CLAIM)
            .await
            .unwrap();
        let failed_at = t + Duration::seconds(i as i64);
        let failure = MailFailure {
            kind: "transient",
            error: "451 try later",
        };
        s.fail_mail(m.id, CLAIM, failed_at, &failure).await.unwrap();
        ids.push(m.id);
    }

    let letters = s.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].recipient, "b@example.com", "newest first");
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].error, "451 try later");
    assert!(letters[0].first_attempt_at.is_some());
    assert_eq!(s.dead_letters(1).await.unwrap().len(), 1);

    assert_eq!(
        s.retry_dead_letters(Some(Uuid::now_v7()), t).await.unwrap(),
        0
    );
    assert_eq!(
        s.retry_dead_letters(Some(letters[0].id), t).await.unwrap(),
        1
    );
    assert_eq!(s.dead_letters(10).await.unwrap().len(), 1);
    let requeued = s
        .claim_mail(t, t + Duration::minutes(5), 10, CLAIM)
        .await
        .unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].message.id, ids[1]);
    assert_eq!(requeued[0].attempts, 1, "attempts start again");
    assert_eq!(s.retry_dead_letters(None, t).await.unwrap(), 1);
    assert!(s.dead_letters(10).await.unwrap().is_empty());
}

/// A resend request for `email` that queues nothing.
async fn resend(
    s: &dyn Storage,
    email: &str,
    at: DateTime<Utc>,
    cooldown: Duration,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let nobody = account(email, at);
    s.request_resend(email, at, at - cooldown, &mail(&nobody, at), false, None)
        .await
}

async fn resend_cooldown_is_claimed_atomically(backend: Backend) {
    let (db, s) = store(&backend).await;
    let s = s.as_ref();
    let t = now();
    let cooldown = Duration::seconds(60);

    assert_eq!(resend(s, "a@example.com", t, cooldown).await.unwrap(), None);
    let later = t + Duration::seconds(10);
    assert_eq!(
        resend(s, "a@example.com", later, cooldown).await.unwrap(),
        Some(t)
    );
    assert_eq!(
        resend(s, "b@example.com", later, cooldown).await.unwrap(),
        None
    );
    let after = t + Duration::seconds(60);
    assert_eq!(
        resend(s, "a@example.com", after, cooldown).await.unwrap(),
        None
    );

    // Concurrent requests: exactly one wins.
    let at = t + Duration::seconds(300);
    let attempts = (0..10).map(|_| resend(s, "c@example.com", at, cooldown));
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|r| matches!(r, Ok(None))).count();
    assert_eq!(winners, 1, "{results:?}");
    // Nothing was to be delivered, so nothing was queued.
    assert_eq!(db.count("email_outbox").await, 0);
}

async fn resend_queues_its_mail_in_the_cooldowns_transaction(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let cooldown = Duration::seconds(60);
    let a = account("a@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    let resent = mail(&a, t);

    assert_eq!(
        s.request_resend("a@example.com", t, t - cooldown, &resent, true, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.count("email_outbox").await, 2);
    // Cooling down: the mail is not queued again.
    let again = mail(&a, t);
    let later = t + Duration::seconds(1);
    assert_eq!(
        s.request_resend("a@example.com", later, later - cooldown, &again, true, None)
            .await
            .unwrap(),
        Some(t)
    );
    assert_eq!(db.count("email_outbox").await, 2);
}

async fn expired_cooldowns_are_pruned(backend: Backend) {
    let (db, s) = store(&backend).await;
    let s = s.as_ref();
    let t = now();
    let cooldown = Duration::seconds(60);
    resend(s, "old@example.com", t - Duration::seconds(61), cooldown)
        .await
        .unwrap();
    resend(s, "new@example.com", t - Duration::seconds(1), cooldown)
        .await
        .unwrap();

    assert_eq!(s.prune_resend_cooldowns(t - cooldown).await.unwrap(), 1);
    assert_eq!(db.count("resend_cooldowns").await, 1);
    // The live cooldown still holds.
    assert!(resend(s, "new@example.com", t, cooldown)
        .await
        .unwrap()
        .is_some());
}

async fn pruning_keeps_pending_failed_and_recent_mail(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let mut mails = Vec::new();
    for email in [
        "old@example.com",
        "new@example.com",
        "pending@example.com",
        "dead@example.com",
    ] {
        let a = account(email, t);
        let m = mail(&a, t);
        s.create_account(&a, &hash().await, &m, &code_of(&a))
            .await
            .unwrap();
        mails.push(m.id);
    }
    s.claim_mail(t, t + Duration::minutes(5), 10, CLAIM)
        .await
        .unwrap();
    s.mark_mail_sent(&[mails[0]], CLAIM, t - Duration::days(8))
        .await
        .unwrap();
    s.mark_mail_sent(&[mails[1]], CLAIM, t - Duration::days(1))
        .await
        .unwrap();
    s.reschedule_mail(mails[2], CLAIM, t, "busy").await.unwrap();
    let failure = MailFailure {
        kind: "permanent",
        error: "550",
    };
    s.fail_mail(mails[3], CLAIM, t, &failure).await.unwrap();

    assert_eq!(s.prune_sent(t - Duration::days(7)).await.unwrap(), 1);
    assert_eq!(db.count("email_outbox").await, 3);
    assert_eq!(db.count("failed_email_tasks").await, 1);
}

async fn outbox_status_counts_by_state(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let empty = s.outbox_status(t).await.unwrap();
    assert_eq!((empty.pending, empty.sent, empty.failed), (0, 0, 0));
    assert_eq!(empty.oldest_pending, None);
    let mut mails = Vec::new();
    for (i, email) in ["a@example.com", "b@example.com", "c@example.com"]
        .into_iter()
        .enumerate()
    {
        let at = t + Duration::seconds(i as i64);
        let a = account(email, at);
        let m = mail(&a, at);
        s.create_account(&a, &hash().await, &m, &code_of(&a))
            .await
            .unwrap();
        mails.push(m.id);
    }
    let claimed = s
        .claim_mail(t + Duration::seconds(1), t + Duration::minutes(5), 2, CLAIM)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    s.mark_mail_sent(&[mails[0]], CLAIM, t).await.unwrap();

    let status = s.outbox_status(t + Duration::seconds(2)).await.unwrap();
    assert_eq!(status.pending, 2);
    assert_eq!(status.in_flight, 1);
    assert_eq!(status.sent, 1);
    assert_eq!(status.failed, 0);
    assert_eq!(status.oldest_pending, Some(t + Duration::seconds(1)));
}

async fn a_lapsed_claim_cannot_record_an_outcome(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    let m = mail(&a, t);
    s.create_account(&a, &hash().await, &m, &code_of(&a))
        .await
        .unwrap();
    let late = Uuid::new_v4();
    let current = Uuid::new_v4();
    s.claim_mail(t, t + Duration::seconds(30), 10, late)
        .await
        .unwrap();
    // The late worker's lease ran out; another worker took the row over and
    // gave up on it for good.
    let retaken = s
        .claim_mail(
            t + Duration::seconds(31),
            t + Duration::minutes(5),
            10,
            current,
        )
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    let failure = MailFailure {
        kind: "permanent",
        error: "550",
    };
    s.fail_mail(m.id, current, t, &failure).await.unwrap();

    // The late worker's outcomes change nothing.
    assert_eq!(s.mark_mail_sent(&[m.id], late, t).await.unwrap(), 0);
    s.reschedule_mail(m.id, late, t, "busy").await.unwrap();
    s.fail_mail(m.id, late, t, &failure).await.unwrap();
    assert_eq!(db.text("SELECT status FROM email_outbox").await, "failed");
    assert_eq!(db.count("failed_email_tasks").await, 1);

    // Nor can it overwrite a row held by a live claim.
    let b = account("b@example.com", t);
    let n = mail(&b, t);
    s.create_account(&b, &hash().await, &n, &code_of(&b))
        .await
        .unwrap();
    s.claim_mail(t, t + Duration::minutes(5), 10, current)
        .await
        .unwrap();
    assert_eq!(s.mark_mail_sent(&[n.id], late, t).await.unwrap(), 0);
    assert_eq!(s.mark_mail_sent(&[n.id], current, t).await.unwrap(), 1);
}

async fn released_claims_are_due_at_once(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    let m = mail(&a, t);
    s.create_account(&a, &hash().await, &m, &code_of(&a))
        .await
        .unwrap();
    s.claim_mail(t, t + Duration::minutes(5), 10, CLAIM)
        .await
        .unwrap();

    assert_eq!(s.release_mail(&[m.id], Uuid::new_v4()).await.unwrap(), 0);
    assert_eq!(s.release_mail(&[m.id], CLAIM).await.unwrap(), 1);
    let again = s
        .claim_mail(
            t + Duration::seconds(1),
            t + Duration::minutes(5),
            10,
            CLAIM,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "released before its lease ran out");
    assert_eq!(
        again[0].attempts, 1,
        "a send never started is not an attempt"
    );
}

async fn schema_check_reads_without_changing(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let s = db.open();
    let err = s.check_schema().await.unwrap_err();
    assert!(matches!(err, StorageError::Schema(_)), "{err:?}");
    assert!(err.to_string().contains("account-service migrate"), "{err}");
    // Still no schema: the check created nothing.
    assert!(s.check_schema().await.is_err());
    s.migrate().await.unwrap();
    s.check_schema().await.unwrap();
    // One migration missing: older schema.
    db.execute(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    let err = s.check_schema().await.unwrap_err();
    assert!(err.to_string().contains("older"), "{err}");
    s.close().await;
}

async fn unknown_applied_migration_is_fatal(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let s = db.open();
    s.migrate().await.unwrap();
    db.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         SELECT 29990101000000, 'from a newer release', success, checksum, execution_time \
         FROM _sqlx_migrations ORDER BY version LIMIT 1",
    )
    .await;
    for err in [
        s.migrate().await.unwrap_err(),
        s.check_schema().await.unwrap_err(),
    ] {
        assert!(matches!(err, StorageError::Schema(_)), "{err:?}");
        assert!(err.to_string().contains("29990101000000"), "{err}");
    }
    // A changed checksum is fatal too.
    db.execute("DELETE FROM _sqlx_migrations WHERE version = 29990101000000")
        .await;
    let other = if db.is_sqlite() {
        "X'00'"
    } else {
        "'\\x00'::bytea"
    };
    db.execute(&format!(
        "UPDATE _sqlx_migrations SET checksum = {other} \
         WHERE version = (SELECT MIN(version) FROM _sqlx_migrations)"
    ))
    .await;
    let err = s.migrate().await.unwrap_err();
    assert!(matches!(err, StorageError::Schema(_)), "{err:?}");
    s.close().await;
}

async fn stored_mail_kinds_read_back_and_unknown_ones_are_corrupt(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    for (i, kind) in MailKind::ALL.into_iter().enumerate() {
        let a = account(&format!("{i}@example.com"), t);
        let m = OutboxMessage {
            kind,
            ..mail(&a, t)
        };
        s.create_account(&a, &hash().await, &m, &code_of(&a))
            .await
            .unwrap();
    }
    let stored = db
        .scalar("SELECT COUNT(*) FROM email_outbox WHERE kind IN ('welcome', 'confirmation', 'account_exists')")
        .await;
    assert_eq!(stored, 3);
    let claimed = s
        .claim_mail(t, t + Duration::minutes(5), 20, CLAIM)
        .await
        .unwrap();
    assert!(claimed.iter().all(|c| c.message.locale == "de"));
    let mut kinds: Vec<MailKind> = claimed.iter().map(|c| c.message.kind).collect();
    kinds.sort_by_key(|k| k.as_str());
    let mut all = MailKind::ALL.to_vec();
    all.sort_by_key(|k| k.as_str());
    assert_eq!(kinds, all);

    let a = account("unknown@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    db.execute("UPDATE email_outbox SET kind = 'carrier_pigeon' WHERE status = 'pending' AND claim_token IS NULL")
        .await;

    let err = s
        .claim_mail(t, t + Duration::minutes(5), 10, Uuid::now_v7())
        .await
        .unwrap_err();

    assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
}
