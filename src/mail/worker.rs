//! The outbox worker: claims due messages, sends them, records the outcome.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::due::NextDue;
use super::{DispatchError, MailComposer, MailDispatcher};
use crate::metrics::Metrics;
use crate::storage::{ClaimedMessage, MailFailure, Storage, StorageError};
use crate::telemetry::error_chain;

/// When to try a failed message again, and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry; doubled at each further retry.
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// Delay after the `attempt`-th attempt failed (1-based), with ±20% jitter
    /// so that messages that failed together do not retry together.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let nominal = self.base_delay.saturating_mul(1 << exp);
        let factor = rand::thread_rng().gen_range(0.8..=1.2);
        nominal.mul_f64(factor)
    }
}

/// How long the worker waits between being woken and claiming.
const WAKE_DELAY: Duration = Duration::from_millis(3);

/// Sends in progress at once; the SMTP pool keeps as many connections.
pub const SEND_SLOTS: usize = 32;
/// Messages claimed at once: a batch is sent in at most two rounds of
/// [`SEND_SLOTS`], which is what EMAIL_CLAIM_LEASE is checked against.
pub const BATCH: u32 = 2 * SEND_SLOTS as u32;

/// What one step of the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// Nothing was due.
    EmptyQueue,
    /// This many messages were claimed and handled (sent, rescheduled or failed).
    Handled(usize),
}

pub struct DeliveryWorker {
    storage: Arc<dyn Storage>,
    dispatcher: Arc<dyn MailDispatcher>,
    composer: Arc<MailComposer>,
    policy: RetryPolicy,
    /// How long a claim protects a message from other workers; longer than
    /// any send may take, so only a dead worker's claim ever lapses.
    lease: Duration,
    batch: u32,
    /// Bounds the sends in progress; a delivery waiting for a slot has not
    /// started, and is handed back if the worker stops meanwhile.
    send_slots: Arc<tokio::sync::Semaphore>,
    /// How often the outbox is polled when nothing wakes the worker: a
    /// safety net for mail queued where no notification reaches this
    /// process, or claims left by a worker that died.
    poll_interval: Duration,
    /// The earliest moment a pending message can be claimed, as far as this
    /// worker knows (its own retries, lapsing claims): it wakes up for it.
    next_due: NextDue,
    metrics: Arc<Metrics>,
}

impl DeliveryWorker {
    pub fn new(
        storage: Arc<dyn Storage>,
        dispatcher: Arc<dyn MailDispatcher>,
        composer: Arc<MailComposer>,
        policy: RetryPolicy,
        lease: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        DeliveryWorker {
            storage,
            dispatcher,
            composer,
            policy,
            lease,
            batch: BATCH,
            send_slots: Arc::new(tokio::sync::Semaphore::new(SEND_SLOTS)),
            poll_interval: Duration::from_secs(30),
            next_due: NextDue::default(),
            metrics,
        }
    }

    /// EMAIL_POLL_INTERVAL.
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How long to sleep before claiming: until the earliest due time this
    /// worker knows of, at most the poll interval.
    fn pause(&self) -> Duration {
        self.next_due.pause(self.poll_interval, Utc::now())
    }

    /// Asks the outbox when its next message is due: the one time kept here
    /// cannot hold every message's (those of a batch, a previous run's,
    /// another process's), the outbox can.
    async fn learn_next_due(&self) -> Result<(), StorageError> {
        if let Some(due) = self.storage.next_mail_due().await? {
            self.next_due.at(due);
        }
        Ok(())
    }

    /// Claims the due messages (one batch) and delivers them concurrently.
    ///
    /// Once `stop` is cancelled, sends that have not started are not
    /// started: their claims are released so that another instance (or the
    /// next start) takes them at once instead of after the lease.
    pub async fn try_execute_task(
        &self,
        stop: &CancellationToken,
    ) -> Result<ExecutionOutcome, StorageError> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::minutes(5));
        let claim = Uuid::new_v4();
        let claimed = self
            .storage
            .claim_mail(now, now + lease, self.batch, claim)
            .await?;
        self.next_due.claimed(now);
        if claimed.is_empty() {
            return Ok(ExecutionOutcome::EmptyQueue);
        }
        let lease_end = tokio::time::Instant::now() + self.lease;
        let count = claimed.len();
        let mut tasks = tokio::task::JoinSet::new();
        for item in claimed {
            let worker = self.clone_parts();
            let stop = stop.clone();
            tasks.spawn(async move { worker.deliver(item, claim, &stop).await });
        }
        let mut first_error = None;
        let mut sent = Vec::with_capacity(count);
        let mut unstarted = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(Delivered::Sent(id))) => sent.push(id),
                Ok(Ok(Delivered::NotStarted(id))) => unstarted.push(id),
                Ok(Ok(Delivered::Retry(at))) => self.next_due.at(at),
                Ok(Ok(Delivered::Recorded)) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => tracing::error!(error = %e, "mail delivery task panicked"),
            }
        }
        // One write for the whole batch: a crash before it only repeats
        // sends (at least once), and the shared Message-ID marks them.
        if let Err(e) = self.mark_sent(&sent, claim, lease_end).await {
            first_error.get_or_insert(e);
        }
        if !unstarted.is_empty() {
            match self.storage.release_mail(&unstarted, claim).await {
                Ok(released) => {
                    tracing::info!(released, "released mail not yet sent for another worker")
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(ExecutionOutcome::Handled(count)),
        }
    }

    /// Records the batch's delivered messages, retrying with backoff while
    /// the claim's lease lasts: a mark that is given up on means the
    /// messages are sent again once the lease runs out.
    async fn mark_sent(
        &self,
        ids: &[Uuid],
        claim: Uuid,
        lease_end: tokio::time::Instant,
    ) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.storage.mark_mail_sent(ids, claim, Utc::now()).await {
                Ok(marked) => {
                    if marked < ids.len() as u64 {
                        tracing::warn!(
                            sent = ids.len(),
                            marked,
                            "some delivered mail was no longer held by this worker's claim"
                        );
                    }
                    return Ok(());
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    if tokio::time::Instant::now() + delay >= lease_end {
                        return Err(e);
                    }
                    tracing::warn!(error = %error_chain(&e), retry_in_secs = delay.as_secs_f64(), "cannot record delivered mail; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn clone_parts(&self) -> Delivery {
        Delivery {
            send_slots: Arc::clone(&self.send_slots),
            storage: Arc::clone(&self.storage),
            dispatcher: Arc::clone(&self.dispatcher),
            composer: Arc::clone(&self.composer),
            policy: self.policy,
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// Runs until `stop` is cancelled: works while messages are due, then
    /// sleeps until the next due time it knows of (at most the poll
    /// interval), woken early by `wake` (mail queued here, or notified by
    /// another process) and, where the storage can tell, by another
    /// connection's commit.
    pub async fn run(self, wake: Arc<Notify>, stop: CancellationToken) {
        let committed = Arc::new(Notify::new());
        let watcher = {
            let (storage, committed, stop) = (
                Arc::clone(&self.storage),
                Arc::clone(&committed),
                stop.clone(),
            );
            tokio::spawn(async move { storage.watch_commits(committed, stop).await })
        };
        // Whether to ask the outbox when the next message is due once the
        // queue comes up empty: at start (a previous run's claims and
        // retries), after a step that found work (every retry it scheduled,
        // of every message, not only the earliest) and once the database is
        // back after an error. An idle poll finds nothing and asks nothing.
        let mut ask = true;
        // Whether to ask before claiming, and claim only what is due:
        // another connection committed (SQLite, where nothing else tells of
        // another process's mail).
        let mut look = false;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let mut pause = Duration::ZERO;
            if std::mem::take(&mut look) {
                pause = match self.learn_next_due().await {
                    Ok(()) => self.pause(),
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "mail outbox unavailable");
                        ask = true;
                        Duration::from_secs(1)
                    }
                };
            }
            if pause.is_zero() {
                pause = match self.try_execute_task(&stop).await {
                    Ok(ExecutionOutcome::Handled(_)) => {
                        self.metrics.outbox_changed();
                        ask = true;
                        continue;
                    }
                    Ok(ExecutionOutcome::EmptyQueue) => {
                        if std::mem::take(&mut ask) {
                            if let Err(e) = self.learn_next_due().await {
                                tracing::warn!(error = %error_chain(&e), "mail outbox unavailable");
                                ask = true;
                            }
                        }
                        self.pause()
                    }
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "mail outbox unavailable");
                        ask = true;
                        Duration::from_secs(1)
                    }
                };
            }
            tokio::select! {
                () = wake.notified() => {
                    self.metrics.outbox_changed();
                    // A short pause before claiming: the call that queued the
                    // mail answers first (so its latency does not carry the
                    // delivery's work and reveals nothing), and mail queued
                    // meanwhile is claimed in the same batch.
                    tokio::time::sleep(WAKE_DELAY).await;
                }
                () = committed.notified() => look = true,
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => break,
            }
        }
        let _ = watcher.await;
    }
}

/// An error text as the database can store it: a mail server's reply may
/// hold NUL (PostgreSQL refuses it in text) or be arbitrarily long.
fn storable(text: String) -> String {
    const MAX_CHARS: usize = 4000;
    text.chars()
        .filter(|c| *c != '\0')
        .take(MAX_CHARS)
        .collect()
}

/// What became of one claimed message.
enum Delivered {
    /// Handed to the mail server; to be marked sent with the batch.
    Sent(Uuid),
    /// Not attempted: the worker is stopping.
    NotStarted(Uuid),
    /// Rescheduled for another attempt at this time.
    Retry(DateTime<Utc>),
    /// Moved to the dead letters.
    Recorded,
}

/// One message's delivery, run as its own task.
struct Delivery {
    send_slots: Arc<tokio::sync::Semaphore>,
    storage: Arc<dyn Storage>,
    dispatcher: Arc<dyn MailDispatcher>,
    composer: Arc<MailComposer>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl Delivery {
    /// Sends one message; returns its id when it was delivered (to be marked
    /// sent with the rest of the batch), or records the failure.
    async fn deliver(
        self,
        item: ClaimedMessage,
        claim: Uuid,
        stop: &CancellationToken,
    ) -> Result<Delivered, StorageError> {
        let span = tracing::info_span!("deliver_mail", outbox_id = %item.message.id);
        if !item.traceparent.is_empty() {
            crate::telemetry::link_to(&span, &item.traceparent);
        }
        self.deliver_in_span(item, claim, stop)
            .instrument(span)
            .await
    }

    async fn deliver_in_span(
        self,
        item: ClaimedMessage,
        claim: Uuid,
        stop: &CancellationToken,
    ) -> Result<Delivered, StorageError> {
        let row = &item.message;
        let slot = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            slot = Arc::clone(&self.send_slots).acquire_owned() => slot.ok(),
        };
        let Some(_slot) = slot else {
            return Ok(Delivered::NotStarted(row.id));
        };
        let outcome = match self.composer.message(row) {
            Ok(mail) => self.dispatcher.send(&mail).await,
            Err(e) => Err(DispatchError::Permanent(e)),
        };
        let now = Utc::now();
        match outcome {
            Ok(()) => {
                self.metrics.count_delivery("sent");
                tracing::info!(outbox_id = %row.id, kind = %row.kind, attempts = item.attempts, "mail delivered");
                return Ok(Delivered::Sent(row.id));
            }
            Err(DispatchError::Transient(e)) if item.attempts <= self.policy.max_retries => {
                let delay = self.policy.delay_after(item.attempts);
                let next =
                    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                let chain = storable(error_chain(e.as_ref()));
                self.storage
                    .reschedule_mail(row.id, claim, next, &chain)
                    .await?;
                self.metrics.count_delivery("retry");
                tracing::warn!(outbox_id = %row.id, attempts = item.attempts, retry_in_secs = delay.as_secs_f64(), error = %chain, "mail delivery failed; will retry");
                return Ok(Delivered::Retry(next));
            }
            Err(e) => {
                let (kind, chain) = match &e {
                    DispatchError::Transient(inner) => ("transient", error_chain(inner.as_ref())),
                    DispatchError::Permanent(inner) => ("permanent", error_chain(inner.as_ref())),
                };
                let chain = storable(chain);
                self.storage
                    .fail_mail(
                        row.id,
                        claim,
                        now,
                        &MailFailure {
                            kind,
                            error: &chain,
                        },
                    )
                    .await?;
                self.metrics.count_delivery("dead_letter");
                tracing::error!(outbox_id = %row.id, kind = %row.kind, attempts = item.attempts, error_kind = kind, error = %chain, "mail delivery failed for good; moved to the dead letters");
            }
        }
        Ok(Delivered::Recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_errors_hold_no_nul_and_are_bounded() {
        assert_eq!(storable("451 \0busy\0".into()), "451 busy");
        assert_eq!(storable("x".repeat(10_000)).len(), 4000);
    }

    #[test]
    fn delay_doubles_with_bounded_jitter() {
        let policy = RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_secs(60),
        };
        for _ in 0..100 {
            let first = policy.delay_after(1).as_secs_f64();
            let second = policy.delay_after(2).as_secs_f64();
            assert!((48.0..=72.0).contains(&first), "{first}");
            assert!((96.0..=144.0).contains(&second), "{second}");
        }
    }
}
