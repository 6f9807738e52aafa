//! The log of changes to accounts that other services follow: positions,
//! stored events and the store that reads and prunes them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::StorageError;

/// Where an event is in the log, in the order consumers read it: the
/// writing transaction's id (PostgreSQL; 0 on SQLite, whose sequence alone
/// is in commit order), then the event's sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    pub xid: u64,
    pub seq: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: EventPosition,
    /// `account.v1.EventType` number.
    pub kind: i64,
    pub account_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The session a session event is about.
    pub session_id: Option<Uuid>,
    /// The trace context of the call that wrote it; empty when none was exported.
    pub traceparent: String,
}

/// A read from the event log.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub events: Vec<StoredEvent>,
    /// Committed events wait behind a transaction still running: read again
    /// soon rather than at the next wake-up.
    pub held_back: bool,
}

/// The log of changes to accounts that other services follow.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Up to `limit` events after `after`, in log order, none of which can
    /// ever be preceded by an event committed later.
    async fn read_events(
        &self,
        after: EventPosition,
        limit: u32,
    ) -> Result<EventBatch, StorageError>;

    /// Deletes events that occurred before `before`. Returns how many.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;

    /// Wakes `wake` whenever another process commits events, until `stop`.
    /// Backends without cross-process notification return at once.
    async fn listen_for_events(&self, _wake: Arc<Notify>, _stop: CancellationToken) {}
}
