//! The media cleanup worker: deletes the objects queued for deletion, with
//! retries that back off, and sweeps objects that no account points at.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::media::{MediaStore, ProfileKey};
use crate::metrics::Metrics;
use crate::storage::{DeletionOutcome, Storage, StorageError};
use crate::telemetry::error_chain;

/// Deletions claimed at a time.
const BATCH: u32 = 32;

/// How long a claimed deletion is held before another worker may take it.
const LEASE: Duration = Duration::from_secs(60);

/// The longest wait before a failed deletion is tried again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// Deletes queued media objects, and finds objects left behind.
#[derive(Clone)]
pub struct MediaCleanup {
    storage: Arc<dyn Storage>,
    store: MediaStore,
    metrics: Arc<Metrics>,
    /// Notified after a commit queued deletions on this instance.
    wake: Arc<Notify>,
    /// The longest the worker sleeps without being woken, for deletions
    /// another instance queued and left (it crashed before its worker ran):
    /// an idle instance asks the database about twice in this time.
    poll: Duration,
    /// Time between two sweeps.
    sweep_interval: Duration,
    /// An object no row points at is swept once it is this old: younger,
    /// it may belong to an upload about to commit.
    orphan_age: Duration,
}

/// How long a deletion waits after `attempts` failed ones: doubling from a
/// second, up to an hour.
pub fn retry_delay(attempts: u32) -> Duration {
    let doubled = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(12));
    doubled.min(MAX_RETRY_DELAY)
}

impl MediaCleanup {
    pub fn new(
        storage: Arc<dyn Storage>,
        store: MediaStore,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Self {
        MediaCleanup {
            storage,
            store,
            metrics,
            wake,
            poll: Duration::from_secs(600),
            sweep_interval: Duration::from_secs(3600),
            orphan_age: Duration::from_secs(3600),
        }
    }

    /// Objects younger than `age` are never swept.
    pub fn with_orphan_age(mut self, age: Duration) -> Self {
        self.orphan_age = age;
        self
    }

    /// Works one batch of due deletions; how many it took.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<usize, StorageError> {
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claimed = self
            .storage
            .claim_media_deletions(now, lease_until, BATCH)
            .await?;
        for deletion in &claimed {
            match self.storage.delete_media(deletion, &self.store).await? {
                DeletionOutcome::Deleted => self.metrics.count_media_deletion("deleted"),
                DeletionOutcome::StillUsed => self.metrics.count_media_deletion("still_used"),
                DeletionOutcome::Failed(e) => {
                    self.metrics.count_media_deletion("failed");
                    let delay = retry_delay(deletion.attempts);
                    tracing::warn!(
                        key = %deletion.key,
                        attempts = deletion.attempts,
                        retry_in_s = delay.as_secs(),
                        error = %error_chain(e.as_ref()),
                        "media store: deleting an object failed"
                    );
                    let not_before =
                        Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    self.storage
                        .retry_media_deletion(&deletion.key, not_before)
                        .await?;
                }
            }
        }
        Ok(claimed.len())
    }

    /// Queues the objects under the profile prefix that are older than the
    /// orphan age and that no account points at; how many it queued.
    pub async fn sweep(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let cutoff = now - chrono::Duration::from_std(self.orphan_age).unwrap_or_default();
        let objects = self.store.list_profile_objects().await?;
        let old: Vec<ProfileKey> = objects
            .into_iter()
            .filter(|(_, modified)| *modified < cutoff)
            .filter_map(|(key, _)| ProfileKey::parse(&key))
            .collect();
        let mut queued = 0;
        for chunk in old.chunks(500) {
            let keys: Vec<_> = chunk.iter().map(|k| (k.account_id(), k.as_str())).collect();
            let used = self.storage.media_in_use(&keys).await?;
            for (account_id, key) in keys {
                if !used.iter().any(|u| u == key) {
                    self.storage
                        .queue_media_deletions(account_id, &[key], now)
                        .await?;
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }

    /// How long to sleep with nothing claimable: until the next deletion
    /// is due (a retry's wait, a lapsed claim), at most `poll`.
    async fn until_due(&self) -> Duration {
        match self.storage.next_media_deletion_due().await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                // Never a busy loop, whatever the clocks say.
                .clamp(Duration::from_millis(100), self.poll),
            Ok(None) => self.poll,
            Err(_) => Duration::from_secs(5),
        }
    }

    /// Runs until `shutdown`: deletions as they come, a sweep every
    /// interval (the first at start-up, for what a crash left).
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut next_sweep = tokio::time::Instant::now();
            loop {
                if tokio::time::Instant::now() >= next_sweep {
                    next_sweep += self.sweep_interval;
                    match self.sweep(Utc::now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(objects = n, "media sweep queued orphaned objects"),
                        Err(e) => tracing::warn!(
                            error = %error_chain(e.as_ref()),
                            "media sweep failed; next one in an hour"
                        ),
                    }
                }
                let wait = match self.run_once(Utc::now()).await {
                    Ok(n) if n >= BATCH as usize => None,
                    Ok(_) => Some(self.until_due().await),
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "media deletions: database error");
                        Some(Duration::from_secs(5))
                    }
                };
                match wait {
                    Some(wait) => tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                    },
                    None if shutdown.is_cancelled() => return,
                    None => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_second_to_an_hour() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(5), Duration::from_secs(16));
        assert_eq!(retry_delay(40), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(0), Duration::from_secs(1));
    }
}
