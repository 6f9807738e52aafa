use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::SqlStorage;
use crate::auth::{PasswordHash, StoredCode};
use crate::domain::{Account, MailKind};
use crate::storage::sqlite::Sqlite;
use crate::storage::{
    AccountStore, CommitHooks, Lifecycle, OutboxMessage, OutboxStore, PoolSettings, StorageError,
};

fn counter(count: &Arc<AtomicU32>) -> impl Fn() + Send + Sync + 'static {
    let count = Arc::clone(count);
    move || {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

fn mail_to(account: &Account) -> OutboxMessage {
    OutboxMessage {
        id: Uuid::now_v7(),
        account_id: account.id,
        kind: MailKind::Welcome,
        recipient: account.email.clone(),
        subject: "Welcome".into(),
        text_body: "Hello".into(),
        html_body: "<p>Hello</p>".into(),
        created_at: Utc::now(),
        locale: String::new(),
    }
}

#[tokio::test]
async fn commits_that_queue_mail_or_write_events_run_the_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hooks.db").display());
    let storage = SqlStorage::<Sqlite>::open(&url, PoolSettings::default()).unwrap();
    storage.migrate().await.unwrap();
    let (mail, events) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    storage.set_commit_hooks(
        CommitHooks::new()
            .on_mail_queued(counter(&mail))
            .on_events_written(counter(&events)),
    );
    let woken = || (mail.load(Ordering::Relaxed), events.load(Ordering::Relaxed));
    let now = Utc::now();
    let account = Account::example("ann@example.com", "ann");
    let hash = PasswordHash::from_stored("hash".into());
    let code = StoredCode {
        account_id: account.id,
        hmac: "hmac".into(),
        expires_at: now,
    };

    storage
        .create_account(&account, &hash, &mail_to(&account), &code)
        .await
        .unwrap();
    assert_eq!(woken(), (1, 1));

    // Rolled back: nothing to announce.
    let again = storage
        .create_account(&account, &hash, &mail_to(&account), &code)
        .await;
    assert!(matches!(again, Err(StorageError::Conflict)), "{again:?}");
    storage.account_by_id(account.id).await.unwrap();
    storage.ping().await.unwrap();
    assert_eq!(woken(), (1, 1));

    storage.mark_verified(account.id, now).await.unwrap();
    assert_eq!(woken(), (1, 2));

    storage.queue_mail(&mail_to(&account)).await.unwrap();
    assert_eq!(woken(), (2, 2));
}
