//! Rate-limit buckets kept in the database, shared by every instance.

use async_trait::async_trait;

use super::StorageError;

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
