//! [`EventStore`] over a dialect: the event log read in commit order.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{first, SqlStorage};
use crate::storage::dialect::{Engine, Param};
use crate::storage::sql::{self, Sql};
use crate::storage::{rows, EventBatch, EventPosition, EventStore, StorageError};

#[async_trait]
impl<D: Engine> EventStore for SqlStorage<D> {
    async fn read_events(
        &self,
        after: EventPosition,
        limit: u32,
    ) -> Result<EventBatch, StorageError> {
        if let Some(direct) = &self.direct {
            // On a blocking thread: a batch is up to `limit` rows, longer
            // than an async thread may be held. The direct read has no
            // horizon to wait for (SQLite's sequence is its commit order).
            let direct = Arc::clone(direct);
            let read = tokio::task::spawn_blocking(move || direct.events_after(after.seq, limit));
            if let Ok(Some(events)) = read.await {
                return Ok(EventBatch {
                    events,
                    held_back: false,
                });
            }
        }
        let mut conn = self.pool.acquire().await?;
        let (horizon, held_back) = match D::pick(&sql::EVENT_HORIZON) {
            Some(text) => {
                let row = first(D::fetch(&mut conn, &Sql::both(text), &[]).await?)?;
                (D::text(&row, "horizon")?, D::flag(&row, "held")?)
            }
            None => ("0".to_owned(), false),
        };
        let xid = after.xid.to_string();
        let params = [
            Param::Text(&xid),
            Param::Int(after.seq),
            Param::Int(i64::from(limit)),
            Param::Text(&horizon),
        ];
        let rows = D::fetch(&mut conn, &sql::READ_EVENTS, &params).await?;
        let events = rows
            .iter()
            .map(|row| rows::event(&D::row(row)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventBatch { events, held_back })
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_EVENTS, &[Param::Time(before)])
            .await
    }

    async fn listen_for_events(&self, wake: Arc<Notify>, stop: CancellationToken) {
        D::listen(&self.pool, sql::EVENTS_CHANNEL, wake, stop).await;
    }
}
