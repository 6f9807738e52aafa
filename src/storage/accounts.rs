//! Accounts and what their confirmation needs: the store and its answers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{OutboxMessage, StorageError};
use crate::auth::{PasswordHash, StoredCode};
use crate::domain::{Account, AccountFilter, ProfileChanges};

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

/// The account of `id` among `accounts`, or `NotFound`.
pub fn only(id: Uuid, accounts: Vec<Account>) -> Result<Account, StorageError> {
    accounts
        .into_iter()
        .find(|a| a.id == id)
        .ok_or(StorageError::NotFound)
}
