//! Housekeeping: the periodic pruning of rows nothing needs any more
//! (delivered mail, resend cooldowns, failed sign-in counts, account
//! events, the mail of deleted accounts, ended sessions), and the ending of
//! sessions that expired.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::SessionPolicy;
use crate::storage::{Liveness, Storage, StorageError};
use crate::telemetry::error_chain;

/// How long failed sign-in counts are kept after the last failure (once no
/// lockout is running): consecutive failures a day apart are not an attack.
const LOGIN_FAILURES_KEPT: Duration = Duration::from_secs(86_400);

/// How long ended sessions are kept, with every refresh token they were
/// given. A live session keeps all of its tokens, so that one rotated out
/// long ago, presented again, is still recognised as reuse and ends it.
const SESSIONS_KEPT: Duration = Duration::from_secs(86_400);

/// What is pruned, and how often.
pub struct Housekeeping {
    storage: Arc<dyn Storage>,
    /// Delivered messages older than this are pruned.
    sent_retention: Duration,
    /// Resend cooldowns older than this no longer hold anything back and are pruned.
    resend_cooldown: Duration,
    /// Account events older than this are pruned.
    event_retention: Duration,
    /// When sessions expire.
    sessions: SessionPolicy,
    /// Time between two passes: retentions are counted in minutes and
    /// days, so a row an hour past its own costs nothing.
    interval: Duration,
}

impl Housekeeping {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Housekeeping {
            storage,
            sent_retention: Duration::from_secs(7 * 86_400),
            resend_cooldown: Duration::from_secs(60),
            event_retention: Duration::from_secs(7 * 86_400),
            sessions: SessionPolicy::default(),
            interval: Duration::from_secs(3600),
        }
    }

    pub fn with_sessions(mut self, policy: SessionPolicy) -> Self {
        self.sessions = policy;
        self
    }

    /// EMAIL_SENT_RETENTION.
    pub fn with_sent_retention(mut self, retention: Duration) -> Self {
        self.sent_retention = retention;
        self
    }

    pub fn with_event_retention(mut self, retention: Duration) -> Self {
        self.event_retention = retention;
        self
    }

    pub fn with_resend_cooldown(mut self, cooldown: Duration) -> Self {
        self.resend_cooldown = cooldown;
        self
    }

    /// Deletes delivered messages older than the retention, resend
    /// cooldowns that have run out, failed sign-in counts a day old whose
    /// lockout is over, account events past their retention, and the mail
    /// of deleted accounts once it is no longer pending. Returns how many
    /// rows went.
    pub async fn prune(&self) -> Result<u64, StorageError> {
        let now = Utc::now();
        let before = |age: Duration| {
            chrono::Duration::from_std(age)
                .ok()
                .and_then(|age| now.checked_sub_signed(age))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        // Every one runs even when an earlier one fails.
        let pruned = self.storage.prune_sent(before(self.sent_retention)).await;
        let cooldowns = self
            .storage
            .prune_resend_cooldowns(before(self.resend_cooldown))
            .await;
        // Failed sign-ins are forgotten after a day without another.
        let failures = self
            .storage
            .prune_login_failures(before(LOGIN_FAILURES_KEPT))
            .await;
        let events = self
            .storage
            .prune_events(before(self.event_retention))
            .await;
        let erased = self.storage.prune_erased_mail().await;
        let sessions = self.prune_sessions(now, before(SESSIONS_KEPT)).await;
        let (pruned, cooldowns, failures, events, erased, sessions) =
            (pruned?, cooldowns?, failures?, events?, erased?, sessions?);
        if erased > 0 {
            tracing::info!(erased, "pruned the sent mail of deleted accounts");
        }
        if events > 0 {
            tracing::info!(events, "pruned account events past their retention");
        }
        if failures > 0 {
            tracing::debug!(failures, "pruned old failed sign-in counts");
        }
        if pruned > 0 {
            tracing::info!(pruned, "pruned delivered mail past its retention");
        }
        if cooldowns > 0 {
            tracing::debug!(cooldowns, "pruned expired resend cooldowns");
        }
        Ok(pruned + cooldowns + failures + events + erased + sessions)
    }

    /// Ends the sessions that expired (each with its SESSION_ENDED event),
    /// then deletes those ended before `before`, with their tokens.
    async fn prune_sessions(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let policy = &self.sessions;
        let live = Liveness::at(now, policy.idle_timeout, policy.max_lifetime);
        let expired = self.storage.end_expired_sessions(live).await?;
        if expired > 0 {
            tracing::info!(expired, "ended expired sessions");
        }
        let pruned =
            self.storage.prune_sessions(before).await? + self.storage.prune_challenges(now).await?;
        if pruned > 0 {
            tracing::debug!(pruned, "pruned ended sessions and their refresh tokens");
        }
        Ok(pruned)
    }

    /// Prunes at once, then once an interval after each pass, until
    /// `stop`; a pass under way when `stop` comes is finished.
    pub async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            if let Err(e) = self.prune().await {
                tracing::warn!(error = %error_chain(&e), "pruning delivered mail failed");
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}

/// Runs `housekeeping` on its own task until `stop`. Start it once the
/// database is reached and migrated: the tables it prunes must exist.
pub fn spawn(housekeeping: Housekeeping, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(housekeeping.run(stop))
}
