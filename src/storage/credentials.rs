//! Password checks: stored hashes, their replacement, and the failed-attempt
//! counts behind the sign-in lockout.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{OutboxMessage, StorageError};
use crate::auth::PasswordHash;
use crate::domain::Account;

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

/// A new password, and what must still hold for it to be stored.
#[derive(Debug, Clone, Copy)]
pub struct PasswordReplacement<'a> {
    pub account: &'a Account,
    /// The hash the account must still have.
    pub old: &'a str,
    pub new: &'a PasswordHash,
    pub now: DateTime<Utc>,
    /// The account becomes verified: a reset proved the mailbox.
    pub verify: bool,
    pub notice: &'a OutboxMessage,
    /// The session that goes on; every other one ends.
    pub keep_session: Option<Uuid>,
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

    /// Sets a new password for the account if its hash is still the old one
    /// and its address still the one it had (a reset link is for that
    /// address), in one transaction with everything a changed password
    /// means: its failed sign-ins are forgotten, the notice is queued, every
    /// session but the one kept ends, and with `verify` the account becomes
    /// verified. `None` when the hash had changed (or the account is gone).
    async fn replace_password(
        &self,
        change: &PasswordReplacement<'_>,
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

    /// [`CredentialStore::reserve_login_attempt`], then, once reserved, the
    /// address's live account and stored hash (`None` when it has none):
    /// in one round trip where the dialect can. On an error nothing stays
    /// reserved.
    async fn reserve_and_read(
        &self,
        email: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        stale_before: DateTime<Utc>,
    ) -> Result<(LoginReservation, Option<(Account, String)>), StorageError>;

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

    /// Gives a check's reservation back. With `forget_failures` (a check
    /// that succeeded), no other check of `email` under way and no lockout
    /// running, its failures are forgotten too.
    async fn release_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
        forget_failures: bool,
    ) -> Result<(), StorageError>;

    /// Forgets failures last seen before `before` whose lockout is over, and
    /// the code tries counted per address before it.
    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}
