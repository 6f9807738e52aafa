//! [`OutboxStore`] over a dialect: mail queued, claimed by the workers,
//! recorded as sent, rescheduled or given up on, and pruned.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::writes::{insert_mail, insert_mail_row, notify_workers};
use super::{first, SqlStorage};
use crate::storage::dialect::{Engine, Param};
use crate::storage::sql;
use crate::storage::{rows, ClaimedMessage, MailFailure, OutboxMessage, OutboxStore, StorageError};

#[async_trait]
impl<D: Engine> OutboxStore for SqlStorage<D> {
    async fn queue_mail(&self, mail: &OutboxMessage) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        insert_mail::<D>(&mut tx, mail).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_mails(&self, mails: &[&OutboxMessage]) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        for mail in mails {
            insert_mail_row::<D>(&mut tx, mail).await?;
        }
        notify_workers::<D>(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        claim: Uuid,
    ) -> Result<Vec<ClaimedMessage>, StorageError> {
        let params = [
            Param::Time(now),
            Param::Time(lease_until),
            Param::Int(i64::from(limit)),
            Param::Uuid(claim),
        ];
        let claimed = self.fetch(&sql::CLAIM_MAIL, &params).await?;
        claimed
            .iter()
            .map(|row| rows::claimed(&D::row(row)))
            .collect()
    }

    async fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let row = first(self.fetch(&sql::NEXT_MAIL_DUE, &[]).await?)?;
        D::optional_time(&row, "due")
    }

    async fn mark_mail_sent(
        &self,
        ids: &[Uuid],
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let params = [Param::Uuids(ids), Param::Time(now), Param::Uuid(claim)];
        self.execute(&sql::MARK_MAIL_SENT, &params).await
    }

    async fn reschedule_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let params = [
            Param::Uuid(id),
            Param::Time(next_attempt_at),
            Param::Text(error),
            Param::Uuid(claim),
        ];
        self.execute(&sql::RESCHEDULE_MAIL, &params).await?;
        Ok(())
    }

    async fn fail_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
        failure: &MailFailure<'_>,
    ) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        let moved = D::execute(
            &mut tx,
            &sql::MARK_MAIL_FAILED,
            &[
                Param::Uuid(id),
                Param::Text(failure.error),
                Param::Uuid(claim),
            ],
        )
        .await?;
        if moved == 1 {
            D::execute(
                &mut tx,
                &sql::INSERT_DEAD_LETTER,
                &[
                    Param::Uuid(Uuid::now_v7()),
                    Param::Uuid(id),
                    Param::Text(failure.kind),
                    Param::Text(failure.error),
                    Param::Time(now),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_mail(&self, ids: &[Uuid], claim: Uuid) -> Result<u64, StorageError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let params = [Param::Uuids(ids), Param::Uuid(claim)];
        self.execute(&sql::RELEASE_MAIL, &params).await
    }

    async fn prune_erased_mail(&self) -> Result<u64, StorageError> {
        let mut tx = self.begin().await?;
        D::execute(&mut tx, &sql::PRUNE_ERASED_DEAD_LETTERS, &[]).await?;
        let pruned = D::execute(&mut tx, &sql::PRUNE_ERASED_MAIL, &[]).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_SENT, &[Param::Time(sent_before)])
            .await
    }

    async fn listen_for_mail(&self, wake: Arc<Notify>, stop: CancellationToken) {
        D::listen(&self.pool, sql::MAIL_CHANNEL, wake, stop).await;
    }

    async fn watch_commits(&self, changed: Arc<Notify>, stop: CancellationToken) {
        if let Some(direct) = &self.direct {
            direct.watch_commits(changed, stop).await;
        }
    }
}
