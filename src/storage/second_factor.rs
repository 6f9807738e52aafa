//! Two-step sign-in: sealed TOTP secrets, recovery codes and the challenges
//! between a sign-in's password and its code.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{OutboxMessage, StorageError};
use crate::domain::Account;

/// An account's TOTP secret as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecondFactor {
    /// Sealed by `auth::SecretBox`; opened only to check a code.
    pub sealed_secret: String,
    /// False while the enrolment waits for its first code.
    pub enabled: bool,
    /// The newest time step whose code was accepted.
    pub last_step: i64,
}

impl std::fmt::Debug for StoredSecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecondFactor")
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// A sign-in challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChallenge {
    pub account_id: Uuid,
    /// The keyed hash of the password hash it was issued under.
    pub binding: String,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

/// Turning two-step sign-in on or off, with what goes with it.
#[derive(Debug, Clone, Copy)]
pub struct SecondFactorChange<'a> {
    pub account_id: Uuid,
    /// The notice to the account's address.
    pub notice: &'a OutboxMessage,
    pub now: DateTime<Utc>,
}

/// Sealed secrets, recovery codes and sign-in challenges.
#[async_trait]
pub trait SecondFactorStore: Send + Sync + 'static {
    /// The pending or enabled secret of an account.
    async fn second_factor(
        &self,
        account_id: Uuid,
    ) -> Result<Option<StoredSecondFactor>, StorageError>;

    /// Stores a pending secret for a live account, replacing a pending one.
    /// `false` when one is enabled already (nothing is changed then).
    async fn start_second_factor(
        &self,
        account_id: Uuid,
        sealed_secret: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Turns the pending secret on, its code of `step` accepted, with its
    /// recovery codes, the notice and a SECOND_FACTOR_CHANGED event, in one
    /// transaction. `None` when no secret was pending.
    async fn enable_second_factor(
        &self,
        change: &SecondFactorChange<'_>,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<Option<Account>, StorageError>;

    /// Turns two-step sign-in off: the secret and recovery codes go, with
    /// the notice and a SECOND_FACTOR_CHANGED event, in one transaction.
    /// `None` when it was not on.
    async fn disable_second_factor(
        &self,
        change: &SecondFactorChange<'_>,
    ) -> Result<Option<Account>, StorageError>;

    /// Records that the code of `step` was used: `true` only for a step
    /// newer than any used before, so each code works once, however many
    /// calls race with it.
    async fn use_totp_step(&self, account_id: Uuid, step: i64) -> Result<bool, StorageError>;

    /// Seals the secret again (under the current key), if it is unchanged.
    async fn reseal_second_factor(
        &self,
        account_id: Uuid,
        old: &str,
        new: &str,
    ) -> Result<(), StorageError>;

    /// Uses up an unused recovery code of the account (any of `hashes`),
    /// queueing `notice` with it. `false` when none matched.
    async fn use_recovery_code(
        &self,
        account_id: Uuid,
        hashes: &[String],
        notice: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// How many unused recovery codes the account has.
    async fn unused_recovery_codes(&self, account_id: Uuid) -> Result<u64, StorageError>;

    /// Replaces every recovery code of the account.
    async fn replace_recovery_codes(
        &self,
        account_id: Uuid,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    async fn create_challenge(
        &self,
        hash: &str,
        challenge: &StoredChallenge,
    ) -> Result<(), StorageError>;

    /// The challenge of any of `hashes`.
    async fn challenge(&self, hashes: &[String]) -> Result<Option<StoredChallenge>, StorageError>;

    /// Marks the challenge used; `false` when it already was (a race lost).
    async fn use_challenge(
        &self,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Gives back the claim `use_challenge` made at `used_at`, after the
    /// code that came with it was refused.
    async fn release_challenge(
        &self,
        hashes: &[String],
        used_at: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Deletes challenges that expired before `before`.
    async fn prune_challenges(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}
