//! The account event stream: cursors, and feeding each watcher from the
//! event log in order, woken by commits on any instance.

mod per_caller;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::domain::EventType;
use crate::storage::{EventPosition, Storage, StorageError, StoredEvent};
use per_caller::CallerStreams;
pub use per_caller::{StreamHolder, StreamSlot, DEFAULT_STREAMS_PER_CALLER};

/// Events read from the log per statement: few at first, so that the first
/// event goes out soon, and more while each read comes back full, so that a
/// watcher catching up pays the cost of a read (two round trips, a horizon
/// check) over more events.
const BATCH_FIRST: u32 = 500;
const BATCH_MAX: u32 = 2000;
/// Events buffered per watcher ahead of its consumer.
const BUFFER: usize = 1024;
/// Watchers one process feeds at once; each costs a task and a read per
/// wake-up, so a flood of streams cannot turn every change into thousands
/// of queries.
pub const MAX_WATCHERS: usize = 256;
/// How long a watcher waits before looking again when committed events wait
/// behind a running transaction: first, and at most.
const HELD_BACK_FIRST: Duration = Duration::from_millis(2);
const HELD_BACK_MAX: Duration = Duration::from_millis(250);
/// Events that old are pruned only after this much more, so that no event
/// after a cursor that is still valid is ever pruned: an event can occur a
/// little before one that precedes it in the log (transactions overlap).
pub const PRUNE_MARGIN: Duration = Duration::from_secs(300);

/// Where a watcher is in the log, and when the event there occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub position: EventPosition,
    /// Microseconds since the epoch.
    pub at_micros: i64,
}

/// A cursor a client sent that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one this service issued")]
    Malformed,
    #[error("the cursor is older than the event retention; start again from an empty cursor")]
    Expired,
}

impl Cursor {
    /// Opaque text: base64url of `v1:<xid>:<seq>:<micros>`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}:{}",
            self.position.xid, self.position.seq, self.at_micros
        ))
    }

    /// `None` for an empty cursor (from the oldest retained event).
    pub fn parse(raw: &str) -> Result<Option<Cursor>, CursorError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > 128 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| CursorError::Malformed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError::Malformed)?;
        let mut parts = text.split(':');
        let (Some("v1"), Some(xid), Some(seq), Some(at), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CursorError::Malformed);
        };
        let position = EventPosition {
            xid: xid.parse().map_err(|_| CursorError::Malformed)?,
            seq: seq.parse().map_err(|_| CursorError::Malformed)?,
        };
        let at_micros: i64 = at.parse().map_err(|_| CursorError::Malformed)?;
        if position.seq < 0 || at_micros < 0 {
            return Err(CursorError::Malformed);
        }
        Ok(Some(Cursor {
            position,
            at_micros,
        }))
    }

    fn of(event: &StoredEvent) -> Cursor {
        Cursor {
            position: event.position,
            at_micros: event.occurred_at.timestamp_micros(),
        }
    }
}

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    Event {
        cursor: Cursor,
        kind: EventType,
        account_id: uuid::Uuid,
        occurred_at: DateTime<Utc>,
        session_id: Option<uuid::Uuid>,
        /// The call that wrote it, for the sending's span to link to.
        traceparent: String,
    },
    /// Nothing happened for a while; the cursor is where the watcher is.
    KeepAlive { cursor: Cursor },
}

/// Why a stream ended before its consumer left. The consumer resumes from
/// the last cursor it got (or from scratch, once it expired).
#[derive(Debug)]
pub enum WatchError {
    /// The database failed.
    Storage(StorageError),
    /// The watcher fell so far behind that events after its cursor may be
    /// pruned.
    Expired,
    /// The instance is shutting down.
    Closing,
}

/// Why a watch was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// [`MAX_WATCHERS`] are being fed already.
    Full,
    /// The instance is shutting down.
    Closing,
}

/// What a watcher's receiver yields.
pub type WatchItem = Result<Watched, WatchError>;

/// Reads of the log in flight at once for all watchers: they share the
/// connection pool with every RPC, which must not wait behind them.
const CONCURRENT_READS: usize = 4;

/// Feeds watchers from the event log.
pub struct EventFeed {
    storage: Arc<dyn Storage>,
    /// Bumped whenever events may have been committed (in this process, or
    /// on another instance through LISTEN).
    committed: watch::Sender<u64>,
    retention: Duration,
    keepalive: Duration,
    /// Safety net when no wake-up reaches this process (SQLite written by
    /// another process, a lost LISTEN connection).
    poll_interval: Duration,
    closed: CancellationToken,
    watchers: Arc<Semaphore>,
    /// Each caller's share of `watchers`.
    per_caller: CallerStreams,
    reads: Arc<Semaphore>,
}

impl EventFeed {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        EventFeed {
            storage,
            committed: watch::Sender::new(0),
            retention: Duration::from_secs(7 * 86_400),
            keepalive: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            closed: CancellationToken::new(),
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
            per_caller: CallerStreams::new(DEFAULT_STREAMS_PER_CALLER),
            reads: Arc::new(Semaphore::new(CONCURRENT_READS)),
        }
    }

    /// How often watchers look at the log when nothing woke them (a safety
    /// net: commits in this process, and on PostgreSQL in every instance,
    /// wake them at once).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// ACCOUNT_EVENT_RETENTION.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// ACCOUNT_EVENT_KEEPALIVE: the idle time after which a watcher gets a keep-alive.
    pub fn with_keepalive(mut self, keepalive: Duration) -> Self {
        self.keepalive = keepalive.max(Duration::from_millis(10));
        self
    }

    /// EVENT_STREAMS_PER_CALLER: streams one caller may hold, 1 to [`MAX_WATCHERS`].
    pub fn with_streams_per_caller(mut self, limit: usize) -> Self {
        self.per_caller = CallerStreams::new(limit.min(MAX_WATCHERS));
        self
    }

    pub fn streams_per_caller(&self) -> usize {
        self.per_caller.limit()
    }

    /// A place for one more stream of `holder`, to be held for as long as
    /// the stream is open; `None` when `holder` holds its share already.
    pub fn reserve(&self, holder: StreamHolder) -> Option<StreamSlot> {
        self.per_caller.take(holder)
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Wakes every watcher of this process: events may have been committed.
    pub fn committed(&self) {
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Relays wake-ups from other instances (LISTEN) to the watchers until `stop`.
    pub async fn relay(self: Arc<Self>, stop: CancellationToken) {
        let notify = Arc::new(Notify::new());
        let listener = {
            let (storage, notify, stop) =
                (Arc::clone(&self.storage), Arc::clone(&notify), stop.clone());
            tokio::spawn(async move { storage.listen_for_events(notify, stop).await })
        };
        while stop.run_until_cancelled(notify.notified()).await.is_some() {
            self.committed();
        }
        let _ = listener.await;
    }

    /// Ends every watcher, each with a last `Closing` item (shutdown), and
    /// refuses new ones.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Checks a cursor a client sent against the retention.
    pub fn check(&self, cursor: Option<Cursor>, now: DateTime<Utc>) -> Result<(), CursorError> {
        match cursor {
            Some(cursor) if expired(cursor, self.retention, now) => Err(CursorError::Expired),
            _ => Ok(()),
        }
    }

    /// Starts feeding a watcher from after `cursor`, with the events of
    /// `types` (all when empty). The receiver ends when the watcher's
    /// consumer goes away, or after a last error item.
    pub fn watch(
        &self,
        cursor: Option<Cursor>,
        types: HashSet<EventType>,
    ) -> Result<mpsc::Receiver<WatchItem>, Refused> {
        if self.closed.is_cancelled() {
            return Err(Refused::Closing);
        }
        let permit = Arc::clone(&self.watchers)
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        let (tx, rx) = mpsc::channel(BUFFER);
        let pump = Pump {
            _permit: permit,
            storage: Arc::clone(&self.storage),
            reads: Arc::clone(&self.reads),
            committed: self.committed.subscribe(),
            keepalive: self.keepalive,
            poll_interval: self.poll_interval,
            retention: self.retention,
            closed: self.closed.clone(),
            types,
            cursor: cursor.unwrap_or(Cursor {
                position: EventPosition::default(),
                at_micros: Utc::now().timestamp_micros(),
            }),
            tx,
        };
        tokio::spawn(pump.run());
        Ok(rx)
    }
}

/// Whether events after `cursor` may have been pruned by `now`.
fn expired(cursor: Cursor, retention: Duration, now: DateTime<Utc>) -> bool {
    let oldest = now
        .timestamp_micros()
        .saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
    cursor.at_micros < oldest
}

/// One watcher's reading loop.
struct Pump {
    _permit: OwnedSemaphorePermit,
    storage: Arc<dyn Storage>,
    reads: Arc<Semaphore>,
    committed: watch::Receiver<u64>,
    keepalive: Duration,
    poll_interval: Duration,
    retention: Duration,
    closed: CancellationToken,
    types: HashSet<EventType>,
    cursor: Cursor,
    tx: mpsc::Sender<WatchItem>,
}

/// Why the reading loop stops.
enum Stop {
    /// The consumer went away: nothing more to say.
    Gone,
    /// A last item for the consumer.
    With(WatchError),
}

impl Pump {
    async fn run(mut self) {
        if let Err(Stop::With(e)) = self.follow().await {
            // Best effort: a consumer whose buffer is full is not waited for.
            let _ = self.tx.try_send(Err(e));
        }
    }

    /// Hands an item to the consumer, waiting while its buffer is full, but
    /// not past shutdown (a stalled consumer does not hold it up).
    async fn send(&self, item: Watched) -> Result<(), Stop> {
        tokio::select! {
            sent = self.tx.send(Ok(item)) => sent.map_err(|_| Stop::Gone),
            () = self.closed.cancelled() => Err(Stop::With(WatchError::Closing)),
        }
    }

    async fn follow(&mut self) -> Result<(), Stop> {
        let mut last_sent = tokio::time::Instant::now();
        let mut held_back_wait = HELD_BACK_FIRST;
        let mut batch_size = BATCH_FIRST;
        loop {
            // Marked seen before reading, so a commit during the read wakes
            // the next wait at once.
            self.committed.borrow_and_update();
            let started = Utc::now();
            if expired(self.cursor, self.retention, started) {
                return Err(Stop::With(WatchError::Expired));
            }
            let batch = tokio::select! {
                () = self.closed.cancelled() => return Err(Stop::With(WatchError::Closing)),
                () = self.tx.closed() => return Err(Stop::Gone),
                batch = async {
                    let _turn = self.reads.acquire().await;
                    self.storage.read_events(self.cursor.position, batch_size).await
                } => batch.map_err(|e| Stop::With(WatchError::Storage(e)))?,
            };
            let full = batch.events.len() >= batch_size as usize;
            batch_size = if full {
                batch_size.saturating_mul(2).min(BATCH_MAX)
            } else {
                BATCH_FIRST
            };
            for event in batch.events {
                self.cursor = Cursor::of(&event);
                let Some(kind) = EventType::from_number(event.kind) else {
                    tracing::warn!(kind = event.kind, "skipping an event of an unknown type");
                    continue;
                };
                if !self.types.is_empty() && !self.types.contains(&kind) {
                    continue;
                }
                let item = Watched::Event {
                    cursor: self.cursor,
                    kind,
                    account_id: event.account_id,
                    occurred_at: event.occurred_at,
                    session_id: event.session_id,
                    traceparent: event.traceparent,
                };
                self.send(item).await?;
                last_sent = tokio::time::Instant::now();
            }
            if full {
                continue;
            }
            if !batch.held_back {
                // Caught up as of `started`: whatever comes next occurs after
                // it (less the length of a transaction, which PRUNE_MARGIN
                // covers), so the cursor is as fresh as that, and a quiet
                // stream's cursor does not age into expiry.
                self.cursor.at_micros = self.cursor.at_micros.max(started.timestamp_micros());
            }
            let wait = if batch.held_back {
                let wait = held_back_wait;
                held_back_wait = (held_back_wait * 2).min(HELD_BACK_MAX);
                wait
            } else {
                held_back_wait = HELD_BACK_FIRST;
                self.poll_interval
            };
            let keepalive_at = last_sent + self.keepalive;
            tokio::select! {
                () = self.closed.cancelled() => return Err(Stop::With(WatchError::Closing)),
                () = self.tx.closed() => return Err(Stop::Gone),
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return Err(Stop::Gone);
                    }
                }
                () = tokio::time::sleep(wait) => {}
                () = tokio::time::sleep_until(keepalive_at) => {
                    self.send(Watched::KeepAlive { cursor: self.cursor }).await?;
                    last_sent = tokio::time::Instant::now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_and_the_feed_agree_on_stream_bounds() {
        assert_eq!(
            u64::try_from(MAX_WATCHERS).unwrap(),
            crate::config::MAX_STREAMS_PER_CALLER
        );
        let settings = <crate::cli::Cli as clap::Parser>::try_parse_from(["account-service"])
            .unwrap()
            .settings;
        assert_eq!(
            settings.events.event_streams_per_caller,
            DEFAULT_STREAMS_PER_CALLER
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor {
            position: EventPosition {
                xid: 123_456,
                seq: 42,
            },
            at_micros: 1_700_000_000_000_000,
        };
        assert_eq!(Cursor::parse(&c.encode()), Ok(Some(c)));
        assert_eq!(Cursor::parse("  "), Ok(None));
        for junk in [
            "x",
            "djE6MToy",
            &URL_SAFE_NO_PAD.encode("v1:1:2:3:4"),
            &URL_SAFE_NO_PAD.encode("v2:1:2:3"),
            &URL_SAFE_NO_PAD.encode("v1:-1:2:3"),
            &URL_SAFE_NO_PAD.encode("v1:1:-2:3"),
            &URL_SAFE_NO_PAD.encode("v1:1:2:\0"),
            &"A".repeat(10_000),
        ] {
            assert_eq!(Cursor::parse(junk), Err(CursorError::Malformed), "{junk}");
        }
    }
}
