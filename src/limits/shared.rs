//! Buckets in the database, one row per key, shared by every instance.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::gcra::Rate;
use super::store::{Bucket, BucketStore, LimitError};
use crate::readiness::Readiness;
use crate::storage::{Storage, StorageError};
use crate::telemetry::error_chain;

pub(super) struct SharedBuckets {
    per_client: Option<Rate>,
    per_email: Option<Rate>,
    storage: Arc<dyn Storage>,
    /// Until the database was reached and migrated the table may not
    /// exist yet: calls are UNAVAILABLE then, as every other use case.
    readiness: Arc<Readiness>,
    /// Set when a bucket was written since the last prune, so that an
    /// idle instance prunes nothing (and costs the database nothing).
    written: AtomicBool,
}

impl SharedBuckets {
    /// Buckets at these rates (none for an unlimited one); a caller's at
    /// its own quota.
    pub(super) fn new(
        per_client: Option<Rate>,
        per_email: Option<Rate>,
        storage: Arc<dyn Storage>,
        readiness: Arc<Readiness>,
    ) -> Self {
        SharedBuckets {
            per_client,
            per_email,
            storage,
            readiness,
            written: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl BucketStore for SharedBuckets {
    async fn take(&self, bucket: Bucket<'_>) -> Result<(), LimitError> {
        let (key, rate) = match bucket {
            Bucket::Client(client) => (format!("client:{}", client.ip()), self.per_client),
            Bucket::Address(email) => (format!("email:{}", email.hex()), self.per_email),
            Bucket::Caller(caller) => (
                format!("caller:{}", caller.name),
                caller.requests_per_minute.and_then(Rate::per_minute),
            ),
        };
        let Some(rate) = rate else {
            return Ok(());
        };
        if !self.readiness.is_ready() {
            return Err(LimitError::Store(StorageError::NotReady));
        }
        self.written.store(true, Ordering::Relaxed);
        let (interval, capacity) = rate.micros();
        match self
            .storage
            .take_from_bucket(&key, now_micros(), interval, capacity)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(LimitError::Exceeded(wait)),
            Err(e) => Err(LimitError::Store(e)),
        }
    }

    async fn forget_idle(&self) {
        if self.written.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.storage.prune_buckets(now_micros()).await {
                self.written.store(true, Ordering::Relaxed);
                tracing::warn!(error = %error_chain(&e), "pruning rate-limit buckets failed");
            }
        }
    }
}

fn now_micros() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}
