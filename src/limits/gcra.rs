//! The rate arithmetic: the generic cell rate algorithm, one timestamp per
//! key, in a bounded map; and the rates the shared store is given.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A keyed rate limiter (the generic cell rate algorithm: one timestamp per
/// key) holding at most `max_keys` keys.
///
/// A key whose bucket is full again carries no information and may be
/// dropped at any time; when the map is full, those go first, then the keys
/// closest to full. A std mutex is enough: the critical section is a hash
/// lookup, never held across an await.
pub struct KeyedLimiter<K> {
    /// Time between two allowed calls at the sustained rate.
    interval: Duration,
    /// Calls allowed at once from a full bucket.
    burst: u32,
    max_keys: usize,
    origin: Instant,
    /// Per key, the theoretical arrival time of the next call, in
    /// nanoseconds since `origin`.
    tats: Mutex<HashMap<K, u64>>,
}

impl<K: Eq + Hash + Copy> KeyedLimiter<K> {
    /// `burst` calls per `period`, refilled evenly. `None` when `burst` is 0 (no limit).
    pub fn new(burst: u32, period: Duration, max_keys: usize) -> Option<Self> {
        if burst == 0 {
            return None;
        }
        Some(KeyedLimiter {
            interval: period / burst,
            burst,
            max_keys: max_keys.max(1),
            origin: Instant::now(),
            tats: Mutex::new(HashMap::new()),
        })
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes one call from `key`'s bucket; on refusal, how long until one is allowed.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: K, at: Instant) -> Result<(), Duration> {
        let now = self.nanos(at);
        let interval = u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX);
        let capacity = interval.saturating_mul(u64::from(self.burst));
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        let tat = tats.get(&key).copied().unwrap_or(now).max(now);
        let next = tat.saturating_add(interval);
        if next - now > capacity {
            return Err(Duration::from_nanos(next - now - capacity));
        }
        if !tats.contains_key(&key) && tats.len() >= self.max_keys {
            evict(&mut tats, now, self.max_keys);
        }
        tats.insert(key, next);
        Ok(())
    }

    /// Drops the keys whose buckets are full again.
    pub fn forget_idle(&self) {
        let now = self.nanos(Instant::now());
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        tats.retain(|_, tat| *tat > now);
        let keep = tats.len().max(64);
        tats.shrink_to(keep);
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.tats.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room for at least one key: first drops every idle key, and if the
/// map is still full, the sixteenth of the keys nearest to a full bucket, so
/// that a flood of new keys costs amortised O(1) per call, not a scan each.
fn evict<K: Eq + Hash + Copy>(tats: &mut HashMap<K, u64>, now: u64, max_keys: usize) {
    tats.retain(|_, tat| *tat > now);
    if tats.len() < max_keys {
        return;
    }
    let mut by_age: Vec<(u64, K)> = tats.iter().map(|(k, t)| (*t, *k)).collect();
    let drop = (by_age.len() / 16).max(1);
    by_age.select_nth_unstable_by_key(drop - 1, |(t, _)| *t);
    for (_, key) in &by_age[..drop] {
        tats.remove(key);
    }
}

/// A sustained rate with a burst: `burst` calls per `period`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate {
    burst: u32,
    period: Duration,
}

impl Rate {
    pub(super) fn new(burst: u32, period: Duration) -> Option<Rate> {
        (burst > 0).then_some(Rate { burst, period })
    }

    /// `calls` a minute; `None` for 0 (no limit).
    pub(super) fn per_minute(calls: u32) -> Option<Rate> {
        Rate::new(calls, Duration::from_secs(60))
    }

    /// A limiter for this rate in memory, holding at most `max_keys` keys.
    pub(super) fn limiter<K: Eq + Hash + Copy>(self, max_keys: usize) -> Option<KeyedLimiter<K>> {
        KeyedLimiter::new(self.burst, self.period, max_keys)
    }

    /// (interval, capacity) in microseconds, as the shared store takes them.
    pub(super) fn micros(self) -> (i64, i64) {
        let interval = (self.period / self.burst).as_micros().max(1);
        let interval = i64::try_from(interval).unwrap_or(i64::MAX);
        (interval, interval.saturating_mul(i64::from(self.burst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_the_burst_then_refills_evenly() {
        let limiter = KeyedLimiter::new(3, Duration::from_secs(3), 10).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(1u8, t0).is_ok());
        }
        let wait = limiter.check_at(1u8, t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        assert!(limiter
            .check_at(1u8, t0 + Duration::from_millis(1001))
            .is_ok());
        assert!(limiter
            .check_at(1u8, t0 + Duration::from_millis(1002))
            .is_err());
    }

    #[test]
    fn the_map_never_holds_more_than_max_keys() {
        let limiter = KeyedLimiter::new(5, Duration::from_secs(3600), 1000).unwrap();
        for key in 0..50_000u32 {
            assert!(limiter.check(key).is_ok());
            assert!(limiter.len() <= 1000);
        }
        // A key that is busy right now survives a flood of new keys less
        // often than not; what matters is that the bound holds and calls
        // are still answered.
        assert!(limiter.len() <= 1000);
    }

    #[test]
    fn idle_keys_go_first() {
        let limiter = KeyedLimiter::new(1, Duration::from_millis(1), 3).unwrap();
        let t0 = Instant::now();
        limiter.check_at(1u8, t0).unwrap();
        limiter.check_at(2u8, t0).unwrap();
        limiter.check_at(3u8, t0).unwrap();
        // All three are full again at t0 + 1 ms; a fourth key drops them.
        limiter
            .check_at(4u8, t0 + Duration::from_millis(5))
            .unwrap();
        assert_eq!(limiter.len(), 1);
    }
}
