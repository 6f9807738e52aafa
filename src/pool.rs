//! A fixed set of threads for CPU-heavy work (password hashing, image
//! decoding), off the async executor, behind a bounded queue that refuses at
//! once when it is full.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// Why a job did not run to an answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// Every place in the queue is taken: the caller is told at once rather
    /// than left waiting behind a burst.
    #[error("the work queue is full")]
    Busy,
    /// No worker thread is running to take the job.
    #[error("no worker thread is running")]
    Unavailable,
    /// The job was taken but gave no answer: it panicked.
    #[error("the worker thread stopped")]
    Lost,
}

/// A job, given its thread's state.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// `concurrency` threads, each with its own state `S` (a work area a job may
/// reuse, such as argon2's 19 MiB), taking jobs from a queue of `queue`
/// places.
///
/// Running more CPU-bound jobs than cores only adds memory and latency, so
/// the threads are few and fixed; the queue bounds what waits, and so the
/// memory held by waiting inputs.
pub struct WorkPool<S> {
    jobs: SyncSender<Job<S>>,
    queued: Arc<AtomicUsize>,
    started: Arc<AtomicU64>,
}

// Derived `Clone` would ask `S: Clone`, which the handle never needs.
impl<S> Clone for WorkPool<S> {
    fn clone(&self) -> Self {
        WorkPool {
            jobs: self.jobs.clone(),
            queued: Arc::clone(&self.queued),
            started: Arc::clone(&self.started),
        }
    }
}

impl<S: Default + 'static> WorkPool<S> {
    /// Starts the threads, named `{name}-{i}`. A thread that has had no job
    /// for `idle_release` drops its state, so an idle service stays small.
    pub fn new(name: &str, concurrency: usize, queue: usize, idle_release: Duration) -> Self {
        let (jobs, receiver) = sync_channel::<Job<S>>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicU64::new(0));
        for i in 0..concurrency.max(1) {
            let receiver = Arc::clone(&receiver);
            let queued = Arc::clone(&queued);
            let started = Arc::clone(&started);
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&receiver, &queued, &started, idle_release));
            if let Err(e) = spawned {
                tracing::error!(error = %e, pool = name, "cannot start a worker thread");
            }
        }
        WorkPool {
            jobs,
            queued,
            started,
        }
    }

    /// Runs `job` on a pool thread and waits for its answer; fails at once
    /// with [`PoolError::Busy`] when the queue is full.
    pub async fn run<R, F>(&self, job: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(move |state: &mut S| {
            // The caller may have gone away (request cancelled): nothing to do.
            let _ = reply.send(job(state));
        }))?;
        answer.await.map_err(|_| PoolError::Lost)
    }

    fn submit(&self, job: Job<S>) -> Result<(), PoolError> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(PoolError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(PoolError::Unavailable)
            }
        }
    }
}

impl<S> WorkPool<S> {
    /// Jobs waiting for a thread.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Jobs a thread has taken since start-up.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

fn work<S: Default>(
    receiver: &Mutex<Receiver<Job<S>>>,
    queued: &AtomicUsize,
    started: &AtomicU64,
    idle_release: Duration,
) {
    let mut state = S::default();
    loop {
        let next = match receiver.lock() {
            Ok(r) => r.recv_timeout(idle_release),
            Err(_) => return,
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                state = S::default();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        queued.fetch_sub(1, Ordering::Relaxed);
        started.fetch_add(1, Ordering::Relaxed);
        // A decoder bug met by a crafted input must cost that one answer
        // (its caller sees `Lost`), not a thread of the pool; the state it
        // may have left half-written is dropped.
        if catch_unwind(AssertUnwindSafe(|| job(&mut state))).is_err() {
            state = S::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_with_the_thread_state() {
        let pool: WorkPool<u32> = WorkPool::new("test", 1, 4, Duration::from_secs(30));
        for expected in 1..=3 {
            let seen = pool
                .run(|calls: &mut u32| {
                    *calls += 1;
                    *calls
                })
                .await;
            assert_eq!(seen, Ok(expected));
        }
        assert_eq!(pool.started(), 3);
        assert_eq!(pool.queued(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let pool: WorkPool<()> = WorkPool::new("test", 1, 1, Duration::from_secs(30));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (taken, on_taken) = oneshot::channel();
        let running = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |_| {
                    let _ = taken.send(());
                    let _ = hold.recv();
                })
                .await
            }
        });
        on_taken.await.unwrap();
        // The thread is held: one job fits in the queue, the next does not.
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|_| 7).await }
        });
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|_| 8).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(()));
        assert_eq!(waiting.await.unwrap(), Ok(7));
    }

    #[tokio::test]
    async fn a_panicking_job_loses_its_answer_not_the_thread() {
        let pool: WorkPool<()> = WorkPool::new("test", 1, 4, Duration::from_secs(30));
        let lost = pool.run(|_| -> u8 { panic!("a decoder bug") }).await;
        assert_eq!(lost, Err(PoolError::Lost));
        assert_eq!(pool.run(|_| 5).await, Ok(5));
    }
}
