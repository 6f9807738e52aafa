//! When the delivery worker next has something to claim, as far as it knows:
//! the retries it scheduled, and what the outbox said when it last asked.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The earliest moment a pending message can be claimed.
#[derive(Debug, Default)]
pub(super) struct NextDue(Mutex<Option<DateTime<Utc>>>);

impl NextDue {
    /// Something becomes claimable at `at`.
    pub(super) fn at(&self, at: DateTime<Utc>) {
        let mut next = self.lock();
        match *next {
            Some(n) if n <= at => {}
            _ => *next = Some(at),
        }
    }

    /// A claim at `now` took everything due by then: forgets it, so that a
    /// time already past cannot hide a later one (each retry of a message is
    /// scheduled later than the one before, while the claim that took it).
    pub(super) fn claimed(&self, now: DateTime<Utc>) {
        let mut next = self.lock();
        if next.is_some_and(|at| at <= now) {
            *next = None;
        }
    }

    /// How long to sleep before claiming: until the earliest known due time,
    /// at most `poll`; zero when it is due already.
    pub(super) fn pause(&self, poll: Duration, now: DateTime<Utc>) -> Duration {
        match *self.lock() {
            Some(at) => (at - now)
                .to_std()
                .map_or(Duration::ZERO, |wait| wait.min(poll)),
            None => poll,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<DateTime<Utc>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(30);

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    #[test]
    fn each_retry_is_waited_for_not_only_the_first() {
        let due = NextDue::default();
        let t0 = Utc::now();
        // The first attempt fails: a retry one second on.
        due.claimed(t0);
        due.at(t0 + secs(1));
        assert_eq!(due.pause(POLL, t0), Duration::from_secs(1));
        // The retry is claimed and fails: the next one two seconds on.
        let t1 = t0 + secs(1);
        assert_eq!(due.pause(POLL, t1), Duration::ZERO);
        due.claimed(t1);
        due.at(t1 + secs(2));
        assert_eq!(due.pause(POLL, t1), Duration::from_secs(2));
    }

    #[test]
    fn the_earliest_time_wins_and_the_poll_bounds_it() {
        let due = NextDue::default();
        let now = Utc::now();
        assert_eq!(due.pause(POLL, now), POLL);
        due.at(now + secs(90));
        assert_eq!(due.pause(POLL, now), POLL);
        due.at(now + secs(5));
        due.at(now + secs(9));
        assert_eq!(due.pause(POLL, now), Duration::from_secs(5));
        // A claim before it is due leaves it.
        due.claimed(now + secs(4));
        assert_eq!(due.pause(POLL, now), Duration::from_secs(5));
    }
}
