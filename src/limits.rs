//! Abuse limits: GCRA buckets per client address and per target e-mail
//! address, for the calls that create accounts or send mail, and per-caller
//! quotas; in bounded maps, or in the database shared by every instance.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::access::{Caller, Callers};
use crate::config::{LimitSettings, RateLimitStore};
use crate::domain::Email;
use crate::readiness::Readiness;
use crate::storage::{Storage, StorageError};

/// Keys a limiter keeps by default before it evicts the idlest ones.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A bucket key for one client: an IPv4 address, or the /64 network of an
/// IPv6 address (one subscriber usually holds a whole /64, so a per-address
/// key would let one client rotate through 2^64 buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(Ipv6Addr::from(bits)))
            }
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }
}

/// Which call a target address's bucket counts. Each call has its own, so
/// that using one up (wrong confirmation codes, say) never blocks another
/// (a password reset or a resent mail) for the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressBucket {
    Register,
    ConfirmCode,
    ResendConfirmation,
    PasswordReset,
    EmailChange,
}

impl AddressBucket {
    fn name(self) -> &'static str {
        match self {
            AddressBucket::Register => "register",
            AddressBucket::ConfirmCode => "confirm-code",
            AddressBucket::ResendConfirmation => "resend-confirmation",
            AddressBucket::PasswordReset => "password-reset",
            AddressBucket::EmailChange => "email-change",
        }
    }
}

/// A fixed-size digest of a call and a normalised address: the limiter never holds the
/// address itself, so a key costs the same whatever a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmailKey([u8; 16]);

impl EmailKey {
    pub fn of(bucket: AddressBucket, email: &Email) -> EmailKey {
        let mut hasher = Sha256::new();
        hasher.update(bucket.name().as_bytes());
        hasher.update([0]);
        hasher.update(email.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        EmailKey(key)
    }
}

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
struct Rate {
    burst: u32,
    period: Duration,
}

impl Rate {
    fn new(burst: u32, period: Duration) -> Option<Rate> {
        (burst > 0).then_some(Rate { burst, period })
    }

    /// (interval, capacity) in microseconds, as the shared store takes them.
    fn micros(self) -> (i64, i64) {
        let interval = (self.period / self.burst).as_micros().max(1);
        let interval = i64::try_from(interval).unwrap_or(i64::MAX);
        (interval, interval.saturating_mul(i64::from(self.burst)))
    }
}

/// Why a call was held back.
#[derive(Debug)]
pub enum LimitError {
    /// Over the limit: how long until a call would be allowed.
    Exceeded(Duration),
    /// The shared store could not be asked.
    Store(StorageError),
}

/// Where the buckets live. Built once per process, so the size difference
/// between the two is of no account.
#[allow(clippy::large_enum_variant)]
enum Buckets {
    /// In this process: each instance limits on its own.
    Memory {
        per_client: Option<KeyedLimiter<ClientKey>>,
        per_email: Option<KeyedLimiter<EmailKey>>,
        /// One per caller that has a quota.
        quotas: HashMap<&'static str, KeyedLimiter<()>>,
    },
    /// In the database, one row per key, shared by every instance.
    Shared {
        storage: Arc<dyn Storage>,
        /// Until the database was reached and migrated the table may not
        /// exist yet: calls are UNAVAILABLE then, as every other use case.
        readiness: Arc<Readiness>,
        /// Set when a bucket was written since the last prune, so that an
        /// idle instance prunes nothing (and costs the database nothing).
        written: AtomicBool,
    },
}

pub struct RateLimits {
    per_client: Option<Rate>,
    per_email: Option<Rate>,
    buckets: Buckets,
    /// Peers whose X-Forwarded-For header is believed (load balancers, the
    /// shop's own front end); everyone else is limited by peer address.
    trusted_proxies: Vec<IpAddr>,
}

impl RateLimits {
    /// No limits at all (RATE_LIMITS=off, for local use); caller quotas still hold.
    pub fn disabled() -> Self {
        RateLimits {
            per_client: None,
            per_email: None,
            buckets: Buckets::Memory {
                per_client: None,
                per_email: None,
                quotas: HashMap::new(),
            },
            trusted_proxies: Vec::new(),
        }
    }

    /// `per_client_per_minute` requests a minute from one client and
    /// `per_email_per_hour` an hour for one target address (0 turns that
    /// limit off), in memory; each limiter holds at most `max_keys` keys.
    pub fn new(
        per_client_per_minute: u32,
        per_email_per_hour: u32,
        trusted_proxies: Vec<IpAddr>,
        max_keys: usize,
    ) -> Self {
        RateLimits {
            per_client: Rate::new(per_client_per_minute, Duration::from_secs(60)),
            per_email: Rate::new(per_email_per_hour, Duration::from_secs(3600)),
            buckets: Buckets::Memory {
                per_client: KeyedLimiter::new(
                    per_client_per_minute,
                    Duration::from_secs(60),
                    max_keys,
                ),
                per_email: KeyedLimiter::new(
                    per_email_per_hour,
                    Duration::from_secs(3600),
                    max_keys,
                ),
                quotas: HashMap::new(),
            },
            trusted_proxies: trusted_proxies
                .into_iter()
                .map(|ip| ip.to_canonical())
                .collect(),
        }
    }

    /// The limits the settings describe (none when RATE_LIMITS=off), with
    /// the quota of each caller that has one, in the store `store` names.
    pub fn from_settings(
        settings: &LimitSettings,
        store: RateLimitStore,
        storage: &Arc<dyn Storage>,
        readiness: &Arc<Readiness>,
        callers: Option<&Callers>,
    ) -> Self {
        let mut limits = if settings.rate_limits {
            RateLimits::new(
                settings.rate_limit_per_client,
                settings.rate_limit_per_email,
                settings.trusted_proxies.0.clone(),
                settings.rate_limit_max_keys,
            )
        } else {
            RateLimits::disabled()
        };
        match store {
            RateLimitStore::Postgres => {
                limits.buckets = Buckets::Shared {
                    storage: Arc::clone(storage),
                    readiness: Arc::clone(readiness),
                    written: AtomicBool::new(false),
                };
            }
            RateLimitStore::Memory => {
                if let (Buckets::Memory { quotas, .. }, Some(callers)) =
                    (&mut limits.buckets, callers)
                {
                    for caller in callers.iter() {
                        let limiter = caller
                            .requests_per_minute
                            .and_then(|n| KeyedLimiter::new(n, Duration::from_secs(60), 1));
                        if let Some(limiter) = limiter {
                            quotas.insert(caller.label, limiter);
                        }
                    }
                }
            }
        }
        limits
    }

    /// Forgets idle keys once a minute until `stop`, so that memory (or the
    /// shared table) follows the clients of the last minutes rather than of
    /// all time.
    pub fn spawn_sweeper(self: &Arc<Self>, stop: CancellationToken) {
        let limits = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => limits.forget_idle().await,
                }
            }
        });
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.contains(&ip.to_canonical())
    }

    /// The client a request is accounted to. From a trusted proxy, that is
    /// the rightmost X-Forwarded-For hop that is not itself a trusted proxy:
    /// every hop right of it was written by a proxy we trust, while hops
    /// further left were written by the client and may say anything.
    /// `forwarded_for` holds every X-Forwarded-For header value, in order.
    pub fn client_address<'a>(
        &self,
        peer: Option<SocketAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let peer = peer?.ip();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let headers: Vec<&str> = forwarded_for.into_iter().collect();
        let mut nearest = peer;
        for hop in headers.iter().rev().flat_map(|h| h.rsplit(',')) {
            match parse_hop(hop) {
                Some(ip) if self.is_trusted(ip) => nearest = ip,
                Some(ip) => return Some(ip),
                // A trusted proxy writes addresses; anything else is the
                // client's own text, so the nearest trusted hop is all we know.
                None => return Some(nearest),
            }
        }
        Some(nearest)
    }

    /// Takes one call from the client's bucket and, for a valid address, one
    /// from that address's; on refusal, how long until a call is allowed.
    pub async fn check(
        &self,
        client: Option<IpAddr>,
        email: Option<(AddressBucket, &Email)>,
    ) -> Result<(), LimitError> {
        let email = email.map(|(bucket, email)| EmailKey::of(bucket, email));
        match &self.buckets {
            Buckets::Memory {
                per_client,
                per_email,
                ..
            } => {
                if let (Some(limiter), Some(client)) = (per_client, client) {
                    limiter
                        .check(ClientKey::of(client))
                        .map_err(LimitError::Exceeded)?;
                }
                if let (Some(limiter), Some(email)) = (per_email, email) {
                    limiter.check(email).map_err(LimitError::Exceeded)?;
                }
                Ok(())
            }
            Buckets::Shared { .. } => {
                if let (Some(rate), Some(client)) = (self.per_client, client) {
                    let key = format!("client:{}", ClientKey::of(client).ip());
                    self.take_shared(&key, rate).await?;
                }
                if let (Some(rate), Some(email)) = (self.per_email, email) {
                    let key = format!("email:{}", hex(&email.0));
                    self.take_shared(&key, rate).await?;
                }
                Ok(())
            }
        }
    }

    /// Takes one call from `caller`'s requests_per_minute, if it has one.
    pub async fn check_quota(&self, caller: &Caller) -> Result<(), LimitError> {
        let Some(per_minute) = caller.requests_per_minute else {
            return Ok(());
        };
        match &self.buckets {
            Buckets::Memory { quotas, .. } => match quotas.get(caller.label) {
                Some(limiter) => limiter.check(()).map_err(LimitError::Exceeded),
                None => Ok(()),
            },
            Buckets::Shared { .. } => match Rate::new(per_minute, Duration::from_secs(60)) {
                Some(rate) => {
                    self.take_shared(&format!("caller:{}", caller.name), rate)
                        .await
                }
                None => Ok(()),
            },
        }
    }

    async fn take_shared(&self, key: &str, rate: Rate) -> Result<(), LimitError> {
        let Buckets::Shared {
            storage,
            readiness,
            written,
        } = &self.buckets
        else {
            return Ok(());
        };
        if !readiness.is_ready() {
            return Err(LimitError::Store(StorageError::NotReady));
        }
        written.store(true, Ordering::Relaxed);
        let (interval, capacity) = rate.micros();
        match storage
            .take_from_bucket(key, now_micros(), interval, capacity)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(LimitError::Exceeded(wait)),
            Err(e) => Err(LimitError::Store(e)),
        }
    }

    /// Drops buckets that are full again, so memory (or the shared table)
    /// follows recent traffic rather than every address ever seen.
    pub async fn forget_idle(&self) {
        match &self.buckets {
            Buckets::Memory {
                per_client,
                per_email,
                quotas,
            } => {
                if let Some(l) = per_client {
                    l.forget_idle();
                }
                if let Some(l) = per_email {
                    l.forget_idle();
                }
                quotas.values().for_each(KeyedLimiter::forget_idle);
            }
            Buckets::Shared {
                storage, written, ..
            } => {
                if written.swap(false, Ordering::Relaxed) {
                    if let Err(e) = storage.prune_buckets(now_micros()).await {
                        written.store(true, Ordering::Relaxed);
                        tracing::warn!(error = %crate::telemetry::error_chain(&e), "pruning rate-limit buckets failed");
                    }
                }
            }
        }
    }

    /// Keys held in memory by the per-client and the per-address limiter.
    pub fn keys(&self) -> (usize, usize) {
        match &self.buckets {
            Buckets::Memory {
                per_client,
                per_email,
                ..
            } => (
                per_client.as_ref().map_or(0, KeyedLimiter::len),
                per_email.as_ref().map_or(0, KeyedLimiter::len),
            ),
            Buckets::Shared { .. } => (0, 0),
        }
    }
}

fn now_micros() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One X-Forwarded-For hop: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 4000))
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_and_only_from_trusted_proxies() {
        let limits = RateLimits::new(
            1,
            1,
            vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
            10,
        );
        let one = |xff: &[&str]| limits.client_address(peer("10.0.0.1"), xff.iter().copied());
        // The leftmost hop is whatever the client wrote.
        assert_eq!(one(&["1.1.1.1, 203.0.113.7"]), ip("203.0.113.7"));
        // Trusted hops on the right are skipped.
        assert_eq!(one(&["1.1.1.1, 203.0.113.7, 10.0.0.2"]), ip("203.0.113.7"));
        // Several headers are one list, in order.
        assert_eq!(one(&["1.1.1.1", "203.0.113.7"]), ip("203.0.113.7"));
        // Ports and brackets.
        assert_eq!(one(&["203.0.113.7:5555"]), ip("203.0.113.7"));
        assert_eq!(one(&["[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(one(&["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(one(&["2001:db8::1"]), ip("2001:db8::1"));
        // Garbage right after the trusted hops: the nearest trusted hop.
        assert_eq!(one(&["203.0.113.7, not-an-ip"]), ip("10.0.0.1"));
        assert_eq!(one(&["203.0.113.7, garbage, 10.0.0.2"]), ip("10.0.0.2"));
        assert_eq!(one(&[]), ip("10.0.0.1"));
        // An untrusted peer's header is ignored.
        let spoofed = limits.client_address(peer("198.51.100.9"), ["203.0.113.7"]);
        assert_eq!(spoofed, ip("198.51.100.9"));
    }

    #[tokio::test]
    async fn ipv6_clients_share_a_bucket_per_64() {
        let limits = RateLimits::new(1, 0, vec![], 10);
        assert!(limits.check(ip("2001:db8:1:2::1"), None).await.is_ok());
        assert!(limits
            .check(ip("2001:db8:1:2:ffff::9"), None)
            .await
            .is_err());
        assert!(limits.check(ip("2001:db8:1:3::1"), None).await.is_ok());
        // An IPv4-mapped address is its IPv4 address.
        assert!(limits.check(ip("192.0.2.1"), None).await.is_ok());
        assert!(limits.check(ip("::ffff:192.0.2.1"), None).await.is_err());
    }

    #[tokio::test]
    async fn buckets_are_per_client_and_per_email() {
        let limits = RateLimits::new(2, 1, vec![], 100);
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        assert!(limits
            .check(a, Some((AddressBucket::Register, &email("x@example.com"))))
            .await
            .is_ok());
        // Same address, other case: the same bucket.
        let refused = limits
            .check(b, Some((AddressBucket::Register, &email("X@Example.com "))))
            .await;
        assert!(matches!(refused, Err(LimitError::Exceeded(wait)) if wait > Duration::ZERO));
        assert!(limits
            .check(a, Some((AddressBucket::Register, &email("y@example.com"))))
            .await
            .is_ok());
        assert!(
            limits
                .check(a, Some((AddressBucket::Register, &email("z@example.com"))))
                .await
                .is_err(),
            "client bucket empty"
        );
        assert!(limits
            .check(b, Some((AddressBucket::Register, &email("z@example.com"))))
            .await
            .is_ok());
        assert!(RateLimits::disabled()
            .check(a, Some((AddressBucket::Register, &email("x@example.com"))))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn each_call_has_its_own_bucket_per_address() {
        let limits = RateLimits::new(100, 1, vec![], 100);
        let victim = email("victim@example.com");
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert!(limits
            .check(a, Some((AddressBucket::ConfirmCode, &victim)))
            .await
            .is_ok());
        assert!(limits
            .check(a, Some((AddressBucket::ConfirmCode, &victim)))
            .await
            .is_err());
        // Wrong codes used up theirs; the other calls still have their own.
        for bucket in [
            AddressBucket::PasswordReset,
            AddressBucket::ResendConfirmation,
            AddressBucket::Register,
            AddressBucket::EmailChange,
        ] {
            assert!(limits.check(b, Some((bucket, &victim))).await.is_ok());
            assert!(limits.check(b, Some((bucket, &victim))).await.is_err());
        }
    }

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
