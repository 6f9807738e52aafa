//! The delivery worker's own step, driven directly over real storage with a
//! database that refuses the first "sent" record.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use account_service::auth::{PasswordHash, StoredCode};
use account_service::domain::{Account, ProfileChanges};
use account_service::mail::{
    DeliveryWorker, ExecutionOutcome, FileDispatcher, MailComposer, RetryPolicy,
};
use account_service::storage::{
    AccountFilter, AccountStore, ClaimedMessage, CodeTry, CommitHooks, CredentialStore, DeadLetter,
    EventBatch, EventPosition, EventStore, Lifecycle, LimitStore, LoginReservation, MailFailure,
    Operations, OutboxMessage, OutboxStatus, OutboxStore, Storage, StorageError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(a_failed_sent_record_is_retried_not_dropped);

/// Real storage whose first `failures` sent-marks fail as if the database
/// had gone away for a moment.
struct FlakySentMarks {
    inner: Arc<dyn Storage>,
    failures: AtomicU32,
}

#[async_trait]
impl Lifecycle for FlakySentMarks {
    fn set_commit_hooks(&self, hooks: CommitHooks) {
        self.inner.set_commit_hooks(hooks)
    }
    async fn migrate(&self) -> Result<(), StorageError> {
        self.inner.migrate().await
    }
    async fn check_schema(&self) -> Result<(), StorageError> {
        self.inner.check_schema().await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

#[async_trait]
impl AccountStore for FlakySentMarks {
    async fn create_account(
        &self,
        a: &Account,
        h: &PasswordHash,
        m: &OutboxMessage,
        c: &StoredCode,
    ) -> Result<(), StorageError> {
        self.inner.create_account(a, h, m, c).await
    }
    async fn accounts_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Account>, StorageError> {
        self.inner.accounts_by_ids(ids).await
    }
    async fn account_by_email(&self, email: &str) -> Result<Account, StorageError> {
        self.inner.account_by_email(email).await
    }
    async fn mark_all_verified(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Account>, StorageError> {
        self.inner.mark_all_verified(ids, now).await
    }
    async fn request_resend(
        &self,
        email: &str,
        now: DateTime<Utc>,
        cooldown_start: DateTime<Utc>,
        mail: &OutboxMessage,
        deliver: bool,
        code: Option<&StoredCode>,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.inner
            .request_resend(email, now, cooldown_start, mail, deliver, code)
            .await
    }
    async fn try_code(&self, email: &str) -> Result<CodeTry, StorageError> {
        self.inner.try_code(email).await
    }
    async fn refund_code_try(&self, account_id: Uuid) -> Result<(), StorageError> {
        self.inner.refund_code_try(account_id).await
    }
    async fn prune_resend_cooldowns(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.inner.prune_resend_cooldowns(before).await
    }
    async fn update_profile(
        &self,
        id: Uuid,
        changes: &ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StorageError> {
        self.inner.update_profile(id, changes, now).await
    }
    async fn change_email(
        &self,
        id: Uuid,
        old_email: &str,
        old_hash: &str,
        new_email: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StorageError> {
        self.inner
            .change_email(id, old_email, old_hash, new_email, now)
            .await
    }
    async fn delete_account(
        &self,
        id: Uuid,
        email: &str,
        hash: Option<&str>,
        goodbye: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.inner
            .delete_account(id, email, hash, goodbye, now)
            .await
    }
    async fn is_tombstone(&self, id: Uuid) -> Result<bool, StorageError> {
        self.inner.is_tombstone(id).await
    }
    async fn list_accounts(
        &self,
        after: Option<Uuid>,
        limit: u32,
        filter: &AccountFilter,
    ) -> Result<Vec<Account>, StorageError> {
        self.inner.list_accounts(after, limit, filter).await
    }
}

#[async_trait]
impl EventStore for FlakySentMarks {
    async fn read_events(
        &self,
        after: EventPosition,
        limit: u32,
    ) -> Result<EventBatch, StorageError> {
        self.inner.read_events(after, limit).await
    }
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.inner.prune_events(before).await
    }
}

#[async_trait]
impl OutboxStore for FlakySentMarks {
    async fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.inner.next_mail_due().await
    }
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        claim: Uuid,
    ) -> Result<Vec<ClaimedMessage>, StorageError> {
        self.inner.claim_mail(now, lease_until, limit, claim).await
    }
    async fn mark_mail_sent(
        &self,
        ids: &[Uuid],
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(StorageError::NotReady);
        }
        self.inner.mark_mail_sent(ids, claim, now).await
    }
    async fn reschedule_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        next: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        self.inner.reschedule_mail(id, claim, next, error).await
    }
    async fn fail_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
        failure: &MailFailure<'_>,
    ) -> Result<(), StorageError> {
        self.inner.fail_mail(id, claim, now, failure).await
    }
    async fn release_mail(&self, ids: &[Uuid], claim: Uuid) -> Result<u64, StorageError> {
        self.inner.release_mail(ids, claim).await
    }
    async fn queue_mail(&self, mail: &OutboxMessage) -> Result<(), StorageError> {
        self.inner.queue_mail(mail).await
    }
    async fn queue_mails(&self, mails: &[&OutboxMessage]) -> Result<(), StorageError> {
        self.inner.queue_mails(mails).await
    }
    async fn prune_sent(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.inner.prune_sent(before).await
    }
    async fn prune_erased_mail(&self) -> Result<u64, StorageError> {
        self.inner.prune_erased_mail().await
    }
}

#[async_trait]
impl Operations for FlakySentMarks {
    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<OutboxStatus, StorageError> {
        self.inner.outbox_status(now).await
    }
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StorageError> {
        self.inner.dead_letters(limit).await
    }
    async fn retry_dead_letters(
        &self,
        id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        self.inner.retry_dead_letters(id, now).await
    }
}

#[async_trait]
impl CredentialStore for FlakySentMarks {
    async fn credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(Account, String)>, StorageError> {
        self.inner.credentials_by_email(email).await
    }
    async fn replace_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &PasswordHash,
    ) -> Result<bool, StorageError> {
        self.inner.replace_password_hash(id, old, new).await
    }
    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<(Account, String)>, StorageError> {
        self.inner.credentials_by_id(id).await
    }
    async fn import_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        self.inner.import_account(account, password_hash).await
    }
    async fn replace_password(
        &self,
        account: &Account,
        old: &str,
        new: &PasswordHash,
        now: DateTime<Utc>,
        verify: bool,
        notice: &OutboxMessage,
    ) -> Result<Option<Account>, StorageError> {
        self.inner
            .replace_password(account, old, new, now, verify, notice)
            .await
    }
    async fn reserve_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        stale_before: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError> {
        self.inner
            .reserve_login_attempt(email, now, max_failures, stale_before)
            .await
    }
    async fn record_login_failure(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), StorageError> {
        self.inner.record_login_failure(email, now).await
    }
    async fn lock_login(
        &self,
        email: &str,
        max_failures: u32,
        until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.inner.lock_login(email, max_failures, until).await
    }
    async fn release_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.inner.release_login_attempt(email, now).await
    }
    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.inner.prune_login_failures(before).await
    }
}

#[async_trait]
impl LimitStore for FlakySentMarks {
    async fn take_from_bucket(
        &self,
        key: &str,
        now_us: i64,
        interval_us: i64,
        capacity_us: i64,
    ) -> Result<Option<std::time::Duration>, StorageError> {
        self.inner
            .take_from_bucket(key, now_us, interval_us, capacity_us)
            .await
    }
    async fn prune_buckets(&self, now_us: i64) -> Result<u64, StorageError> {
        self.inner.prune_buckets(now_us).await
    }
}

async fn a_failed_sent_record_is_retried_not_dropped(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let real = db.connect().await;
    for i in 0..3 {
        let now = Utc::now();
        let a = crate::storage::account(&format!("w{i}@example.com"), now);
        let m = crate::storage::mail(&a, now);
        real.create_account(
            &a,
            &crate::storage::hash().await,
            &m,
            &crate::storage::code_of(&a),
        )
        .await
        .unwrap();
    }
    let storage: Arc<dyn Storage> = Arc::new(FlakySentMarks {
        inner: Arc::clone(&real),
        failures: AtomicU32::new(2),
    });
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
