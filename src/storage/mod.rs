//! Persistence: the storage traits, their types and errors, and `open`.

mod backend;
mod batch;
mod dialect;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod sqlite_commits;
mod sqlite_reads;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::{PasswordHash, StoredCode};
use crate::config::{DatabaseKind, DatabaseUrl};
use crate::domain::{Account, ProfileChanges};
use crate::mail::MailKind;

use backend::SqlStorage;
pub use batch::Batcher;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique key (the e-mail address) is already taken.
    #[error("a row with the same unique key already exists")]
    Conflict,
    #[error("no matching row")]
    NotFound,
    /// The database cannot be reached; worth retrying later.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database has not been reached (and migrated) since start-up.
    #[error("the database has not been reached yet")]
    NotReady,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("a stored value is malformed: {0}")]
    Corrupt(String),
    /// The database's schema does not match this binary's migrations: not
    /// worth retrying, an operator must act.
    #[error("{0}")]
    Schema(String),
}

/// Whether a database error code means the server is going away, starting
/// or out of connections (worth retrying elsewhere or later), rather than a
/// problem with the statement. PostgreSQL: SQLSTATE class 08 (connection
/// exception), 57P (operator intervention: shutdown, crash, starting up) and
/// 53300 (too many connections). SQLite: the database stayed locked by
/// another writer past the busy timeout (primary codes 5 and 6).
pub fn is_unavailable_code(postgres: bool, code: &str) -> bool {
    if postgres {
        code.starts_with("08") || code.starts_with("57P") || code == "53300"
    } else {
        code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StorageError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StorageError::Conflict,
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|code| {
                    let postgres = db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some();
                    is_unavailable_code(postgres, &code)
                }) =>
            {
                StorageError::Unavailable(e)
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e),
            other => StorageError::Database(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            // The database going away mid-migration is worth waiting for;
            // a migration its SQL cannot apply is not.
            sqlx::migrate::MigrateError::ExecuteMigration(inner, v) => match inner.into() {
                e @ StorageError::Unavailable(_) => e,
                e => StorageError::Schema(format!(
                    "migration {v} cannot be applied: {}",
                    crate::telemetry::error_chain(&e)
                )),
            },
            sqlx::migrate::MigrateError::VersionMissing(v) => StorageError::Schema(format!(
                "the database has migration {v}, which this binary does not know \
                 (was it migrated by a newer release?)"
            )),
            sqlx::migrate::MigrateError::VersionMismatch(v) => StorageError::Schema(format!(
                "migration {v} as applied to the database differs from this binary's"
            )),
            sqlx::migrate::MigrateError::Dirty(v) => StorageError::Schema(format!(
                "migration {v} failed part-way; repair the database before starting"
            )),
            other => StorageError::Database(sqlx::Error::Migrate(Box::new(other))),
        }
    }
}

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
}

/// The storage's lifecycle: schema, reachability, shutdown.
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// Applies this backend's migrations (idempotent). Also the first contact
    /// with the database when the storage was opened lazily.
    async fn migrate(&self) -> Result<(), StorageError>;

    /// Checks, without changing anything, that the database holds exactly
    /// this binary's migrations: `Schema` naming what to do otherwise.
    async fn check_schema(&self) -> Result<(), StorageError>;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StorageError>;

    /// Closes every connection; later calls fail with `Unavailable`.
    async fn close(&self);
}

/// Accounts, and the confirmation-mail requests made for them.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Inserts the account, queues its mail and stores the mail's
    /// confirmation code in one transaction: all or nothing. `Conflict`
    /// when the e-mail address is taken.
    async fn create_account(
        &self,
        account: &Account,
        password_hash: &PasswordHash,
        mail: &OutboxMessage,
        code: &StoredCode,
    ) -> Result<(), StorageError>;

    /// The accounts of `ids` that exist, in no particular order.
    async fn accounts_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Account>, StorageError>;

    async fn account_by_id(&self, id: Uuid) -> Result<Account, StorageError> {
        only(id, self.accounts_by_ids(&[id]).await?)
    }

    /// `email` must already be normalised (trimmed, lower-cased).
    async fn account_by_email(&self, email: &str) -> Result<Account, StorageError>;

    /// Sets `verified` (and `updated_at` at `now`, only where it changes) on
    /// every account of `ids` in one statement, and returns those that exist.
    async fn mark_all_verified(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Account>, StorageError>;

    /// Sets `verified` (and `updated_at`, only if it changes) and returns the account.
    async fn mark_verified(&self, id: Uuid, now: DateTime<Utc>) -> Result<Account, StorageError> {
        only(id, self.mark_all_verified(&[id], now).await?)
    }

    /// In one transaction: records a confirmation-mail request for `email`
    /// at `now`, unless the last one was after `cooldown_start`, and when it
    /// was recorded and `deliver` is set, queues `mail` and stores `code`
    /// (the mail's, replacing the account's previous one). The same
    /// statements run whether or not `deliver` is set. `Ok(None)` when
    /// recorded, `Ok(Some(last))` with the last request's time when still
    /// cooling down.
    async fn request_resend(
        &self,
        email: &str,
        now: DateTime<Utc>,
        cooldown_start: DateTime<Utc>,
        mail: &OutboxMessage,
        deliver: bool,
        code: Option<&StoredCode>,
    ) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// Counts a try at the confirmation code of the live account with
    /// `email` (normalised). The same statements run for every address.
    async fn try_code(&self, email: &str) -> Result<CodeTry, StorageError>;

    /// Takes back the try counted on a code that turned out right.
    async fn refund_code_try(&self, account_id: Uuid) -> Result<(), StorageError>;

    /// Deletes cooldowns recorded before `before` (they no longer hold
    /// anything back). Returns how many were deleted.
    async fn prune_resend_cooldowns(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;

    /// Changes the fields `changes` names on a live account, with a
    /// `PROFILE_UPDATED` event, in one transaction. `Ok(None)` when no value
    /// differs (nothing is written); `NotFound` when there is no live account.
    async fn update_profile(
        &self,
        id: Uuid,
        changes: &ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StorageError>;

    /// Moves a live account from `old_email` to `new_email`, marks it
    /// verified and writes an `EMAIL_CHANGED` event, in one transaction.
    /// `Ok(None)` when the account no longer has `old_email` or its password
    /// hash is no longer `old_hash` (or it is gone); `Conflict` when another
    /// account has `new_email`.
    async fn change_email(
        &self,
        id: Uuid,
        old_email: &str,
        old_hash: &str,
        new_email: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StorageError>;

    /// In one transaction, if the account is live and its hash still
    /// `hash` (whatever it is, for `None`): cancels (deletes) its mail, queues `goodbye`, erases its
    /// personal data and the state kept under its address, keeps the row as
    /// a tombstone and writes an `ACCOUNT_DELETED` event. `false` when the
    /// account changed meanwhile or is gone.
    async fn delete_account(
        &self,
        id: Uuid,
        email: &str,
        hash: Option<&str>,
        goodbye: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Whether `id` is a deleted account's tombstone.
    async fn is_tombstone(&self, id: Uuid) -> Result<bool, StorageError>;

    /// Up to `limit` live accounts after `after`, in id order, matching `filter`.
    async fn list_accounts(
        &self,
        after: Option<Uuid>,
        limit: u32,
        filter: &AccountFilter,
    ) -> Result<Vec<Account>, StorageError>;
}

/// What counting a try at a confirmation code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTry {
    /// The try was counted; compare the code with this.
    Counted(StoredCode),
    /// The code took its last wrong try already.
    Burned,
    /// No live account with that address has a code.
    NoCode,
}

/// Which accounts a listing holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// Addresses that start with this (normalised: lower case); empty for all.
    pub email_prefix: String,
    /// Only accounts whose `verified` is this.
    pub verified: Option<bool>,
}

/// Where an event is in the log, in the order consumers read it: the
/// writing transaction's id (PostgreSQL; 0 on SQLite, whose sequence alone
/// is in commit order), then the event's sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    pub xid: u64,
    pub seq: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: EventPosition,
    /// `account.v1.EventType` number.
    pub kind: i64,
    pub account_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

/// A read from the event log.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub events: Vec<StoredEvent>,
    /// Committed events wait behind a transaction still running: read again
    /// soon rather than at the next wake-up.
    pub held_back: bool,
}

/// The log of changes to accounts that other services follow.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Up to `limit` events after `after`, in log order, none of which can
    /// ever be preceded by an event committed later.
    async fn read_events(
        &self,
        after: EventPosition,
        limit: u32,
    ) -> Result<EventBatch, StorageError>;

    /// Deletes events that occurred before `before`. Returns how many.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;

    /// Wakes `wake` whenever another process commits events, until `stop`.
    /// Backends without cross-process notification return at once.
    async fn listen_for_events(&self, _wake: Arc<Notify>, _stop: CancellationToken) {}
}

/// The account of `id` among `accounts`, or `NotFound`.
pub fn only(id: Uuid, accounts: Vec<Account>) -> Result<Account, StorageError> {
    accounts
        .into_iter()
        .find(|a| a.id == id)
        .ok_or(StorageError::NotFound)
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

/// The answer to a reservation of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginReservation {
    Reserved,
    /// No check may run: a lockout until `locked_until` (when it is later
    /// than now), or one about to start, after `lockouts` earlier ones.
    Refused {
        locked_until: Option<DateTime<Utc>>,
        lockouts: i64,
    },
}

/// What a password check needs: the stored hash, its upgrade, and the
/// failed-attempt counts behind the sign-in lockout.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// The account with `email` and its stored password hash.
    async fn credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(Account, String)>, StorageError>;

    /// The account with `id` and its stored password hash.
    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<(Account, String)>, StorageError>;

    /// Sets a new password for `account` if its hash is still `old` and its
    /// address still the one it had (a reset link is for that address), in one
    /// transaction with everything a changed password means: its failed
    /// sign-ins are forgotten, `notice` is queued, and with `verify` the
    /// account becomes verified. `None` when the hash had changed (or the
    /// account is gone).
    async fn replace_password(
        &self,
        account: &Account,
        old: &str,
        new: &PasswordHash,
        now: DateTime<Utc>,
        verify: bool,
        notice: &OutboxMessage,
    ) -> Result<Option<Account>, StorageError>;

    /// Stores an account brought from another system with its hash as that
    /// system wrote it, and queues no mail. `false` when an account with the
    /// same id or address is already there (nothing is changed then).
    async fn import_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, StorageError>;

    /// Replaces the hash of `id` if it is still `old`. Returns whether it did.
    async fn replace_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &PasswordHash,
    ) -> Result<bool, StorageError>;

    /// Reserves one password check of `email` before it is computed, in one
    /// statement the database serialises: refused while a lockout runs, or
    /// while failures on record and checks under way already reach
    /// `max_failures`. A reservation older than `stale_before` is taken for
    /// abandoned (its instance died mid-check).
    async fn reserve_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        stale_before: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError>;

    /// Turns a reservation into a failure; returns (failures since the last
    /// success or lockout, lockouts since the last success).
    async fn record_login_failure(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), StorageError>;

    /// Locks `email` until `until` if it has at least `max_failures` failures
    /// counted (once, whichever instance gets there first).
    async fn lock_login(
        &self,
        email: &str,
        max_failures: u32,
        until: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Gives a successful check's reservation back; with no other check of
    /// `email` under way and no lockout running, its failures are forgotten.
    async fn release_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Forgets failures last seen before `before` whose lockout is over, and
    /// the code tries counted per address before it.
    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}

/// Rate-limit buckets that every instance on the database shares.
#[async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// Takes one call from the GCRA bucket `key` at `now_us` (microseconds
    /// since the epoch), calls being `interval_us` apart at the sustained
    /// rate with room for `capacity_us` of them at once. `None` when the
    /// call is allowed, else how long until one would be.
    async fn take_from_bucket(
        &self,
        key: &str,
        now_us: i64,
        interval_us: i64,
        capacity_us: i64,
    ) -> Result<Option<std::time::Duration>, StorageError>;

    /// Deletes the buckets that are full again at `now_us`. Returns how many.
    async fn prune_buckets(&self, now_us: i64) -> Result<u64, StorageError>;
}

/// Everything the service stores. Implementations translate driver errors
/// into [`StorageError`] by error kind, never by message text.
pub trait Storage:
    Lifecycle + AccountStore + CredentialStore + OutboxStore + Operations + LimitStore + EventStore
{
}

impl<T> Storage for T where
    T: Lifecycle
        + AccountStore
        + CredentialStore
        + OutboxStore
        + Operations
        + LimitStore
        + EventStore
        + ?Sized
{
}

/// Compares the migrations applied to a database (version, success,
/// checksum, in version order; `None` when it has no migrations table) with
/// a binary's.
fn compare_schema(
    migrator: &sqlx::migrate::Migrator,
    applied: Option<Vec<(i64, bool, Vec<u8>)>>,
) -> Result<(), StorageError> {
    let run_migrate = "run `account-service migrate` first";
    let newer =
        "was it migrated by a newer release? Run this binary's own release, or the newer one";
    let Some(applied) = applied else {
        return Err(StorageError::Schema(format!(
            "the database has no schema yet; {run_migrate}"
        )));
    };
    let known: std::collections::HashMap<i64, &[u8]> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    for (version, success, checksum) in &applied {
        if !success {
            return Err(sqlx::migrate::MigrateError::Dirty(*version).into());
        }
        match known.get(version) {
            None => {
                return Err(StorageError::Schema(format!(
                "the database has migration {version}, which this binary does not know ({newer})"
            )))
            }
            Some(k) if *k != checksum.as_slice() => {
                return Err(StorageError::Schema(format!(
                    "migration {version} as applied to the database differs from this binary's"
                )))
            }
            Some(_) => {}
        }
    }
    let pending = known.len().saturating_sub(applied.len());
    if pending > 0 {
        return Err(StorageError::Schema(format!(
            "the database schema is older than this binary ({pending} migration(s) pending); {run_migrate}"
        )));
    }
    Ok(())
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

/// How many connections a backend keeps, and how long a request waits for one.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Opens the backend that `database_url` names without contacting it yet:
/// connections are made on first use, so the service can start while the
/// database is down. Call [`Lifecycle::migrate`] before serving.
pub fn open(
    database_url: &DatabaseUrl,
    pool: PoolSettings,
) -> Result<Arc<dyn Storage>, StorageError> {
    let url = database_url.expose();
    Ok(match database_url.kind {
        DatabaseKind::Sqlite => Arc::new(SqlStorage::<sqlite::Sqlite>::open(url, pool)?),
        DatabaseKind::Postgres => Arc::new(SqlStorage::<postgres::Postgres>::open(url, pool)?),
    })
}

#[cfg(test)]
mod tests {
    use super::is_unavailable_code;

    #[test]
    fn codes_that_mean_try_again() {
        for code in [
            "08000", "08003", "08006", "08P01", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(is_unavailable_code(true, code), "{code}");
        }
        for code in ["23505", "22021", "53100", "57014", "42P01", "40001"] {
            assert!(!is_unavailable_code(true, code), "{code}");
        }
        // SQLite: BUSY, LOCKED and their extended codes (BUSY_SNAPSHOT = 517).
        for code in ["5", "6", "261", "517", "262"] {
            assert!(is_unavailable_code(false, code), "{code}");
        }
        for code in ["1", "19", "2067", "08006"] {
            assert!(!is_unavailable_code(false, code), "{code}");
        }
    }
}
