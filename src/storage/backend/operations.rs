//! [`Operations`] over a dialect: the outbox at a glance and its dead
//! letters sent back to the queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::writes::notify_workers;
use super::{first, SqlStorage};
use crate::storage::dialect::{Engine, Param};
use crate::storage::sql;
use crate::storage::{rows, DeadLetter, Operations, OutboxStatus, StorageError};

#[async_trait]
impl<D: Engine> Operations for SqlStorage<D> {
    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<OutboxStatus, StorageError> {
        let row = first(self.fetch(&sql::OUTBOX_STATUS, &[Param::Time(now)]).await?)?;
        rows::outbox_status(&D::row(&row))
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StorageError> {
        let letters = self
            .fetch(&sql::DEAD_LETTERS, &[Param::Int(i64::from(limit))])
            .await?;
        letters
            .iter()
            .map(|row| rows::dead_letter(&D::row(row)))
            .collect()
    }

    async fn retry_dead_letters(
        &self,
        id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let mut tx = self.begin().await?;
        let requeued = D::fetch(
            &mut tx,
            &sql::REQUEUE_DEAD_LETTERS,
            &[Param::Time(now), Param::OptionalUuid(id)],
        )
        .await?
        .iter()
        .map(|row| D::uuid(row, "id"))
        .collect::<Result<Vec<_>, _>>()?;
        // Only the dead letters whose message went back to the queue.
        D::execute(
            &mut tx,
            &sql::MARK_DEAD_LETTERS_RETRIED,
            &[
                Param::Time(now),
                Param::Uuids(&requeued),
                Param::OptionalUuid(id),
            ],
        )
        .await?;
        notify_workers::<D>(&mut tx).await?;
        tx.commit().await?;
        Ok(requeued.len() as u64)
    }
}
