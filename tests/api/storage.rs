//! The storage contract, run against each backend directly.

use std::sync::Arc;

use account_service::auth::{PasswordHash, PasswordHasher};
use account_service::domain::{Account, Password};
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
);

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn account(email: &str, at: DateTime<Utc>) -> Account {
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
        created_at: at,
        updated_at: at,
    }
}

fn mail(account: &Account, at: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id: Uuid::now_v7(),
        account_id: account.id,
        kind: "welcome".into(),
        recipient: account.email.clone(),
        subject: "s".into(),
        text_body: "t".into(),
        html_body: "h".into(),
        created_at: at,
    }
}

async fn hash() -> PasswordHash {
    PasswordHasher::new(1, 0)
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

    s.create_account(&a, &hash().await, &m).await.unwrap();

    assert_eq!(s.account_by_id(a.id).await.unwrap(), a);
    assert_eq!(s.account_by_email("a@example.com").await.unwrap(), a);
    let claimed = s.claim_mail(t, t + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message, m);
    assert_eq!(claimed[0].attempts, 1);
}

async fn duplicate_email_is_a_conflict_and_stores_nothing(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let first = account("a@example.com", t);
    s.create_account(&first, &hash().await, &mail(&first, t))
        .await
        .unwrap();
    let second = account("a@example.com", t);

    let err = s
        .create_account(&second, &hash().await, &mail(&second, t))
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
    s.create_account(&first, &hash().await, &first_mail)
        .await
        .unwrap();
    let second = account("b@example.com", t);
    // Re-using the outbox id makes the second insert of the transaction fail.
    let clashing = OutboxMessage {
        account_id: second.id,
        ..first_mail
    };

    assert!(s
        .create_account(&second, &hash().await, &clashing)
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
    s.create_account(&a, &hash().await, &mail(&a, t))
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
    s.create_account(&a, &hash().await, &mail(&a, t))
        .await
        .unwrap();
    let lease_end = t + Duration::seconds(30);

    assert_eq!(s.claim_mail(t, lease_end, 10).await.unwrap().len(), 1);
    // Held by the first claim.
    assert!(s
        .claim_mail(t + Duration::seconds(29), lease_end, 10)
        .await
        .unwrap()
        .is_empty());
    // The claimant died: after the lease another worker takes it over.
    let retaken = s
        .claim_mail(lease_end, lease_end + Duration::seconds(30), 10)
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
    s.create_account(&a, &hash().await, &mail(&a, t))
        .await
        .unwrap();
    s.create_account(&b, &hash().await, &mail(&b, t))
        .await
        .unwrap();
    let lease = t + Duration::minutes(5);
    let claimed = s.claim_mail(t, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);

    s.mark_mail_sent(claimed[0].message.id, t).await.unwrap();
    let retry_at = t + Duration::seconds(60);
    s.reschedule_mail(claimed[1].message.id, retry_at, "busy")
        .await
        .unwrap();

    // Not due yet: nothing to claim, even though the lease was released.
    assert!(s
        .claim_mail(t + Duration::seconds(59), lease, 10)
        .await
        .unwrap()
        .is_empty());
    let due = s.claim_mail(retry_at, lease, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, claimed[1].message.id);
    assert_eq!(due[0].attempts, 2);
}

async fn dead_letters_keep_the_message(backend: Backend) {
    let (db, s) = store(&backend).await;
    let t = now();
    let a = account("a@example.com", t);
    s.create_account(&a, &hash().await, &mail(&a, t))
        .await
        .unwrap();
    let claimed = s.claim_mail(t, t + Duration::minutes(5), 10).await.unwrap();

    s.fail_mail(
        claimed[0].message.id,
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
        .claim_mail(t + Duration::hours(1), t + Duration::hours(2), 10)
        .await
        .unwrap()
        .is_empty());
}
