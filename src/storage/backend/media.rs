//! [`MediaRecordStore`] over a dialect: switching an account's image under
//! its row lock, and the deletion queue worked under the same lock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::writes::{insert_event, WriteTx};
use super::SqlStorage;
use crate::domain::{EventType, ProfileImage};
use crate::storage::dialect::{Engine, Param};
use crate::storage::sql::{self, Sql};
use crate::storage::{
    rows, Blobs, DeletionOutcome, ImageSwitch, MediaDeletion, MediaRecordStore, StorageError,
};

/// The image keys of the row `statement` locks; `None` without a row.
async fn locked_image<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    statement: &Sql,
    id: Uuid,
) -> Result<Option<[String; 2]>, StorageError> {
    let rows = D::fetch(tx, statement, &[Param::Uuid(id)]).await?;
    rows.first()
        .map(|row| Ok([D::text(row, "image")?, D::text(row, "image_thumbnail")?]))
        .transpose()
}

async fn queue_deletions<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    account_id: Uuid,
    keys: &[&str],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for key in keys.iter().filter(|k| !k.is_empty()) {
        let params = [Param::Text(key), Param::Uuid(account_id), Param::Time(now)];
        D::execute(tx, &sql::QUEUE_MEDIA_DELETION, &params).await?;
    }
    Ok(())
}

/// Queues the objects of account `id`'s image, read under its row lock, in
/// the transaction that erases the account.
pub(super) async fn queue_image_deletion<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if let Some([large, thumbnail]) = locked_image::<D>(tx, &sql::LOCK_ANY_IMAGE, id).await? {
        queue_deletions::<D>(tx, id, &[&large, &thumbnail], now).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: Engine> MediaRecordStore for SqlStorage<D> {
    async fn switch_profile_image(
        &self,
        id: Uuid,
        image: Option<&ProfileImage>,
        blobs: &dyn Blobs,
        now: DateTime<Utc>,
    ) -> Result<ImageSwitch, StorageError> {
        let mut tx = self.begin().await?;
        let Some(old) = locked_image::<D>(&mut tx, &sql::LOCK_IMAGE, id).await? else {
            tx.rollback().await?;
            return Ok(ImageSwitch::NotFound);
        };
        let new = image.map_or([""; 2], ProfileImage::keys);
        if old == new {
            tx.rollback().await?;
            return match self
                .fetch(&sql::ACCOUNT_BY_ID, &[Param::Uuid(id)])
                .await?
                .first()
            {
                Some(row) => Ok(ImageSwitch::Unchanged(rows::account(&D::row(row))?)),
                None => Ok(ImageSwitch::NotFound),
            };
        }
        // Asked under the row lock, which a deletion of these objects also
        // takes: once they are here, none is deleted before this commit,
        // and after it the row points at them.
        if image.is_some() {
            let present = blobs.present(&new).await.unwrap_or_else(|e| {
                tracing::warn!(error = %crate::telemetry::error_chain(e.as_ref()), "media store: cannot check new objects");
                false
            });
            if !present {
                tx.rollback().await?;
                return Ok(ImageSwitch::ObjectsMissing);
            }
        }
        let params = [
            Param::Uuid(id),
            Param::Text(new[0]),
            Param::Text(new[1]),
            Param::Time(now),
        ];
        let rows = D::fetch(&mut tx, &sql::SET_IMAGE, &params).await?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(ImageSwitch::NotFound);
        };
        let account = rows::account(&D::row(row))?;
        let replaced: Vec<&str> = old
            .iter()
            .map(String::as_str)
            .filter(|key| !new.contains(key))
            .collect();
        queue_deletions::<D>(&mut tx, id, &replaced, now).await?;
        insert_event::<D>(&mut tx, EventType::ProfileUpdated, id, now).await?;
        tx.commit().await?;
        Ok(ImageSwitch::Switched(account))
    }

    async fn queue_media_deletions(
        &self,
        account_id: Uuid,
        keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        queue_deletions::<D>(&mut tx, account_id, keys, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_media_deletions(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<MediaDeletion>, StorageError> {
        let mut tx = self.begin().await?;
        let params = [
            Param::Time(now),
            Param::Time(lease_until),
            Param::Int(i64::from(limit)),
        ];
        let rows = D::fetch(&mut tx, &sql::CLAIM_MEDIA_DELETIONS, &params).await?;
        let claimed = rows
            .iter()
            .map(|row| {
                Ok(MediaDeletion {
                    key: D::text(row, "object_key")?,
                    account_id: D::uuid(row, "account_id")?,
                    attempts: u32::try_from(D::bigint(row, "attempts")?).unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn delete_media(
        &self,
        deletion: &MediaDeletion,
        blobs: &dyn Blobs,
    ) -> Result<DeletionOutcome, StorageError> {
        let mut tx = self.begin().await?;
        let used = locked_image::<D>(&mut tx, &sql::LOCK_ANY_IMAGE, deletion.account_id)
            .await?
            .is_some_and(|keys| keys.contains(&deletion.key));
        if !used {
            // Under the row lock: an upload of the same object waits here,
            // then finds it gone and writes it again.
            if let Err(e) = blobs.remove(&deletion.key).await {
                tx.rollback().await?;
                return Ok(DeletionOutcome::Failed(e));
            }
        }
        let key = [Param::Text(&deletion.key)];
        D::execute(&mut tx, &sql::DELETE_MEDIA_ENTRY, &key).await?;
        tx.commit().await?;
        Ok(if used {
            DeletionOutcome::StillUsed
        } else {
            DeletionOutcome::Deleted
        })
    }

    async fn retry_media_deletion(
        &self,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let params = [Param::Text(key), Param::Time(not_before)];
        self.execute(&sql::RETRY_MEDIA_DELETION, &params).await?;
        Ok(())
    }

    async fn next_media_deletion_due(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let rows = self.fetch(&sql::NEXT_MEDIA_DELETION, &[]).await?;
        Ok(match rows.first() {
            Some(row) => D::optional_time(row, "due")?,
            None => None,
        })
    }

    async fn media_in_use(&self, keys: &[(Uuid, &str)]) -> Result<Vec<String>, StorageError> {
        let mut ids: Vec<Uuid> = keys.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut used = Vec::new();
        for chunk in ids.chunks(500) {
            for row in self.fetch(&sql::IMAGES_OF, &[Param::Uuids(chunk)]).await? {
                for column in ["image", "image_thumbnail"] {
                    let key = D::text(&row, column)?;
                    if !key.is_empty() {
                        used.push(key);
                    }
                }
            }
        }
        Ok(used)
    }
}
