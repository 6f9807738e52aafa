//! The mail outbox: queued messages, the delivery workers' claims on them,
//! and what operators see and do with dead letters.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::StorageError;
use crate::domain::MailKind;

/// A mail to be delivered, as queued in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: MailKind,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: DateTime<Utc>,
    /// The language tag the mail is written in; empty when unknown.
    pub locale: String,
}

/// An outbox row claimed by a worker, with the number of attempts started on it
/// (this one included).
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub message: OutboxMessage,
    pub attempts: u32,
    /// The trace context of the call that queued it; empty when none was exported.
    pub traceparent: String,
}

/// The mail outbox as the delivery workers drive it.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Queues a mail for an existing account.
    async fn queue_mail(&self, mail: &OutboxMessage) -> Result<(), StorageError>;

    /// Queues several mails in one transaction: all or none.
    async fn queue_mails(&self, mails: &[&OutboxMessage]) -> Result<(), StorageError>;

    /// Claims up to `limit` due pending messages until `lease_until` under
    /// the token `claim`, counting an attempt on each.
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        claim: Uuid,
    ) -> Result<Vec<ClaimedMessage>, StorageError>;

    /// When the next pending message can be claimed (its retry due, any
    /// claim on it lapsed); `None` when nothing is pending.
    async fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// Records delivered messages, all in one statement, if `claim` still
    /// holds them. Returns how many were marked.
    async fn mark_mail_sent(
        &self,
        ids: &[Uuid],
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError>;

    /// Releases a claimed message for another attempt at `next_attempt_at`,
    /// if `claim` still holds it.
    async fn reschedule_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError>;

    /// Moves a claimed message to the dead letters (`failed_email_tasks`),
    /// if `claim` still holds it.
    async fn fail_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
        failure: &MailFailure<'_>,
    ) -> Result<(), StorageError>;

    /// Gives claimed messages whose sending never started back to the queue
    /// at once (the attempt is not counted), if `claim` still holds them.
    async fn release_mail(&self, ids: &[Uuid], claim: Uuid) -> Result<u64, StorageError>;

    /// Deletes delivered messages sent before `sent_before`; dead letters and
    /// the messages they refer to are kept. Returns how many were deleted.
    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StorageError>;

    /// Deletes the mail of deleted accounts (the goodbye notice once it is
    /// no longer pending; anything else at once) and its dead letters.
    /// Returns how many messages were deleted.
    async fn prune_erased_mail(&self) -> Result<u64, StorageError>;

    /// Wakes `wake` whenever another process queues mail, until `stop`.
    /// Backends without cross-process notification return at once; their
    /// workers rely on in-process wake-ups and polling.
    async fn listen_for_mail(&self, _wake: Arc<Notify>, _stop: CancellationToken) {}

    /// Wakes `changed` whenever another connection (of this process or
    /// another) has committed, until `stop`, where the backend can tell
    /// without a notification (an SQLite file). Backends that notify
    /// (`listen_for_mail`) return at once.
    async fn watch_commits(&self, _changed: Arc<Notify>, _stop: CancellationToken) {}
}

/// What operators see of the outbox and do with its dead letters.
#[async_trait]
pub trait Operations: Send + Sync + 'static {
    /// Counts of the outbox by state, for operators.
    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<OutboxStatus, StorageError>;

    /// Dead letters not yet sent back to the queue, newest first.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StorageError>;

    /// Sends one dead letter (`Some(id)`) or all of them back to the queue
    /// with attempts reset. Returns how many messages were requeued.
    async fn retry_dead_letters(
        &self,
        id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError>;
}

/// The outbox at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Waiting for delivery (including those being sent right now).
    pub pending: i64,
    /// Pending and currently claimed by a worker.
    pub in_flight: i64,
    pub sent: i64,
    /// Dead letters waiting for an operator.
    pub failed: i64,
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// A message that was given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: Uuid,
    pub outbox_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub error_kind: String,
    pub error: String,
    pub attempts: i64,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub failed_at: DateTime<Utc>,
}

/// Why a message was given up on.
#[derive(Debug, Clone, Copy)]
pub struct MailFailure<'a> {
    /// `transient` (attempts exhausted) or `permanent` (refused for good).
    pub kind: &'a str,
    /// The whole error chain of the last attempt.
    pub error: &'a str,
}
