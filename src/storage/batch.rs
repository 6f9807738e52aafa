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
    /// One statement in flight at a time, which keeps batches large: a
    /// measured refresh load ran a quarter slower with four in flight.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Row(u32);

    impl Keyed for Row {
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
    }

    /// The keys of each statement run, in order.
    type Seen = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A batcher whose statements record their keys and wait for a permit.
    fn gated() -> (Arc<Batcher<Row>>, Seen, Arc<Semaphore>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let (s, g) = (Arc::clone(&seen), Arc::clone(&gate));
        let batcher = Batcher::new(move |keys: Vec<u32>| {
            let (s, g) = (Arc::clone(&s), Arc::clone(&g));
            async move {
                s.lock().unwrap().push(keys.clone());
                g.acquire().await.unwrap().forget();
                Ok(keys.into_iter().filter(|k| k % 10 != 0).map(Row).collect())
            }
        });
        (batcher, seen, gate)
    }

    async fn statements_after_a_moment(seen: &Mutex<Vec<Vec<u32>>>) -> Vec<Vec<u32>> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn callers_behind_a_statement_in_flight_are_sent_as_one_batch() {
        let (batcher, seen, gate) = gated();
        let call = |k: u32| {
            let b = Arc::clone(&batcher);
            tokio::spawn(async move { b.call(k).await })
        };
        let lone = call(1);
        assert_eq!(statements_after_a_moment(&seen).await, vec![vec![1]]);
        let queued: Vec<_> = [7, 10, 5, 7].into_iter().map(call).collect();
        assert_eq!(
            statements_after_a_moment(&seen).await,
            vec![vec![1]],
            "the rest wait for the statement in flight"
        );
        gate.add_permits(2);
        assert_eq!(lone.await.unwrap().unwrap(), Row(1));
        let answers: Vec<_> = futures::future::join_all(queued).await;
        let answers: Vec<_> = answers.into_iter().map(|a| a.unwrap()).collect();
        assert_eq!(answers[0].as_ref().unwrap(), &Row(7));
        assert!(matches!(answers[1], Err(StorageError::NotFound)));
        assert_eq!(answers[2].as_ref().unwrap(), &Row(5));
        assert_eq!(answers[3].as_ref().unwrap(), &Row(7));
        let all = seen.lock().unwrap().clone();
        assert_eq!(
            all,
            vec![vec![1], vec![5, 7, 10]],
            "one batch, keys once each"
        );
    }
}
