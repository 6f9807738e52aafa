//! Group commit for single-row requests: those that arrive while a statement
//! of their kind is in flight are gathered and sent as one statement.
//!
//! A lone request runs its own statement at once, in its own task, so
//! latency at low load does not grow. Under load the database sees one
//! round trip per batch instead of one per caller, and each caller gets its
//! own row (or `NotFound`) from the batch's result.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Rotated, Rotation, SessionState, StorageError};
use crate::domain::Account;

/// A row a batch answers, found among the batch's rows by the request that
/// asked for it (an id, or a whole request when the statement needs more).
pub trait Keyed: Clone + Send + 'static {
    type Key: Ord + Clone + Send + 'static;
    fn key(&self) -> Self::Key;
}

impl Keyed for Account {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.id
    }
}

impl Keyed for SessionState {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.session.id
    }
}

impl Keyed for Rotated {
    type Key = Rotation;
    fn key(&self) -> Rotation {
        self.rotation.clone()
    }
}

/// The row of `key` among `rows`, or `NotFound`.
fn only<T: Keyed>(key: &T::Key, rows: Vec<T>) -> Result<T, StorageError> {
    rows.into_iter()
        .find(|row| row.key() == *key)
        .ok_or(StorageError::NotFound)
}

/// Most ids sent in one statement; callers beyond it wait for the next one.
const MAX_BATCH: usize = 512;

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// Runs one statement for a list of ids, returning the rows that exist.
type Statement<T> =
    Arc<dyn Fn(Vec<<T as Keyed>::Key>) -> Pending<Result<Vec<T>, StorageError>> + Send + Sync>;
/// A waiting caller's answer; `None` when its batch failed, so that it runs
/// its own statement and gets its own error.
type Answer<T> = Option<Result<T, StorageError>>;

pub struct Batcher<T: Keyed> {
    statement: Statement<T>,
    state: Mutex<State<T>>,
}

struct State<T: Keyed> {
    /// A statement of this kind is in flight (a lone caller's or a batch's).
    busy: bool,
    waiting: Vec<(T::Key, oneshot::Sender<Answer<T>>)>,
}

impl<T: Keyed> Default for State<T> {
    fn default() -> Self {
        State {
            busy: false,
            waiting: Vec::new(),
        }
    }
}

impl<T: Keyed> Batcher<T> {
    pub fn new<F, Fut>(statement: F) -> Arc<Batcher<T>>
    where
        F: Fn(Vec<T::Key>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<T>, StorageError>> + Send + 'static,
    {
        Arc::new(Batcher {
            statement: Arc::new(move |ids| Box::pin(statement(ids))),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // The state stays consistent at every await-free step, so a panic
        // elsewhere while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The row of `id`, from a statement of its own or from a batch.
    pub async fn call(self: &Arc<Self>, id: T::Key) -> Result<T, StorageError> {
        let waiting = {
            let mut state = self.state();
            if state.busy {
                let (tx, rx) = oneshot::channel();
                state.waiting.push((id.clone(), tx));
                Some(rx)
            } else {
                state.busy = true;
                None
            }
        };
        if let Some(rx) = waiting {
            if let Ok(Some(answer)) = rx.await {
                return answer;
            }
            return only(&id, (self.statement)(vec![id.clone()]).await?);
        }
        // Whether this call finishes or is cancelled, the callers that queued
        // meanwhile are served next.
        let _next = HandOff(Arc::clone(self));
        only(&id, (self.statement)(vec![id.clone()]).await?)
    }

    /// Serves the queued callers batch by batch until none is left.
    async fn drain(self: Arc<Self>) {
        let _next = HandOff(Arc::clone(&self));
        loop {
            let batch: Vec<_> = {
                let mut state = self.state();
                let n = state.waiting.len().min(MAX_BATCH);
                state.waiting.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            let mut ids: Vec<T::Key> = batch.iter().map(|(id, _)| id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            match (self.statement)(ids).await {
                Ok(rows) => {
                    for (id, tx) in batch {
                        let row = rows.iter().find(|r| r.key() == id).cloned();
                        let _ = tx.send(Some(row.ok_or(StorageError::NotFound)));
                    }
                }
                // Dropping the senders sends each caller to run alone.
                Err(_) => drop(batch),
            }
        }
    }
}

/// On drop, hands the queue to a new drain task, or marks the batcher idle
/// when nobody waits.
struct HandOff<T: Keyed>(Arc<Batcher<T>>);

impl<T: Keyed> Drop for HandOff<T> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        if state.waiting.is_empty() {
            state.busy = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(state);
                runtime.spawn(Arc::clone(&self.0).drain());
            }
            // No runtime (shutting down): the waiters run alone.
            Err(_) => {
                state.waiting.clear();
                state.busy = false;
            }
        }
    }
}
