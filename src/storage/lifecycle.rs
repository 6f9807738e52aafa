//! The storage's lifecycle: schema, reachability, commit hooks, shutdown.

use async_trait::async_trait;

use super::{CommitHooks, StorageError};

/// The storage's lifecycle: schema, reachability, commit hooks, shutdown.
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// Applies this backend's migrations (idempotent). Also the first contact
    /// with the database when the storage was opened lazily.
    async fn migrate(&self) -> Result<(), StorageError>;

    /// Checks, without changing anything, that the database holds exactly
    /// this binary's migrations: `Schema` naming what to do otherwise.
    async fn check_schema(&self) -> Result<(), StorageError>;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StorageError>;

    /// Closes every connection; later calls fail with `Unavailable`.
    async fn close(&self);

    /// Sets what runs after each commit that queued mail or wrote events
    /// (replacing hooks set before). No default: storage that wraps another
    /// must pass them on, or the mail worker and the event feed sleep.
    fn set_commit_hooks(&self, hooks: CommitHooks);
}
