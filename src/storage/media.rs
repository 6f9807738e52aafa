//! Which media objects accounts point at, and the durable queue of objects to
//! delete from the media store once nothing points at them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StorageError;
use crate::domain::{Account, ProfileImage};

/// The media store as the database's transactions need it: asked about and
/// told to delete objects while an account's row is locked, so that a row
/// never points at an object deleted under it.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Whether every one of `keys` is stored.
    async fn present(&self, keys: &[&str]) -> anyhow::Result<bool>;
    /// Deletes `key`; a missing object is no error.
    async fn remove(&self, key: &str) -> anyhow::Result<()>;
}

/// What pointing an account at an image did.
#[derive(Debug)]
pub enum ImageSwitch {
    /// The account points at the new image (or none); the objects it pointed
    /// at before are queued for deletion.
    Switched(Account),
    /// The account already pointed there: nothing was written.
    Unchanged(Account),
    /// No live account has this id.
    NotFound,
    /// The new image's objects were not all in the store (deleted after
    /// they were written, as a leftover of an earlier upload): nothing was
    /// written; write them again and retry.
    ObjectsMissing,
}

/// An object queued for deletion, claimed for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDeletion {
    pub key: String,
    /// The account whose row lock guards the object.
    pub account_id: Uuid,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What became of a claimed deletion.
#[derive(Debug)]
pub enum DeletionOutcome {
    /// The object is gone and so is its queue entry.
    Deleted,
    /// An account points at the object again: it stays, its entry is gone.
    StillUsed,
    /// The store refused: the entry stays, for a later attempt.
    Failed(anyhow::Error),
}

#[async_trait]
pub trait MediaRecordStore: Send + Sync + 'static {
    /// Points live account `id` at `image` (`None` removes it), under the
    /// account's row lock: with `blobs` asked there that the new objects
    /// exist, the objects it pointed at before queued for deletion and an
    /// `PROFILE_UPDATED` event, in one transaction.
    async fn switch_profile_image(
        &self,
        id: Uuid,
        image: Option<&ProfileImage>,
        blobs: &dyn Blobs,
        now: DateTime<Utc>,
    ) -> Result<ImageSwitch, StorageError>;

    /// Queues `keys`, objects of account `account_id`, for deletion; keys
    /// already queued stay as they are.
    async fn queue_media_deletions(
        &self,
        account_id: Uuid,
        keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Claims up to `limit` due deletions until `lease_until`.
    async fn claim_media_deletions(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MediaDeletion>, StorageError>;

    /// Deletes a claimed object through `blobs` unless an account points at
    /// it, under its account's row lock.
    async fn delete_media(
        &self,
        deletion: &MediaDeletion,
        blobs: &dyn Blobs,
    ) -> Result<DeletionOutcome, StorageError>;

    /// Puts a failed deletion back in the queue until `not_before`.
    async fn retry_media_deletion(
        &self,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// When the next queued deletion is due (a claim's lease or a retry's
    /// wait may put it in the future); `None` when none is queued.
    async fn next_media_deletion_due(&self) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// Of `keys`, the ones some account row points at.
    async fn media_in_use(&self, keys: &[(Uuid, &str)]) -> Result<Vec<String>, StorageError>;
}

/// The media store answers for its objects.
#[async_trait]
impl Blobs for crate::media::MediaStore {
    async fn present(&self, keys: &[&str]) -> anyhow::Result<bool> {
        for key in keys {
            if !self.exists(key).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn remove(&self, key: &str) -> anyhow::Result<()> {
        Ok(self.delete(key).await?)
    }
}
