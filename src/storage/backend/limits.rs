//! [`LimitStore`] over a dialect: shared GCRA buckets.

use async_trait::async_trait;

use super::{first, SqlStorage};
use crate::storage::dialect::{Engine, Param};
use crate::storage::sql;
use crate::storage::{LimitStore, StorageError};

#[async_trait]
impl<D: Engine> LimitStore for SqlStorage<D> {
    async fn take_from_bucket(
        &self,
        key: &str,
        now_us: i64,
        interval_us: i64,
        capacity_us: i64,
    ) -> Result<Option<std::time::Duration>, StorageError> {
        let params = [
            Param::Text(key),
            Param::Int(now_us),
            Param::Int(interval_us),
            Param::Int(capacity_us),
        ];
        let row = first(self.fetch(&sql::TAKE_FROM_BUCKET, &params).await?)?;
        if D::flag(&row, "allowed")? {
            return Ok(None);
        }
        let tat = D::bigint(&row, "tat")?;
        let wait = tat
            .saturating_add(interval_us)
            .saturating_sub(capacity_us)
            .saturating_sub(now_us);
        Ok(Some(std::time::Duration::from_micros(
            u64::try_from(wait).unwrap_or(0).max(1),
        )))
    }

    async fn prune_buckets(&self, now_us: i64) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_BUCKETS, &[Param::Int(now_us)])
            .await
    }
}
