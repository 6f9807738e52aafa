//! Abuse limits: GCRA buckets per client address and per target e-mail
//! address, for the calls that create accounts or send mail, and per-caller
//! quotas; in bounded maps, or in the database shared by every instance.
//!
//! `gcra` does the rate arithmetic, `client` says whom a request is
//! accounted to, `store` is what a bucket store is asked, and `memory` and
//! `shared` are the two stores.

mod client;
mod gcra;
mod memory;
mod shared;
mod store;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::access::{Caller, Callers};
use crate::config::{LimitSettings, RateLimitStore};
use crate::domain::Email;
use crate::readiness::Readiness;
use crate::storage::Storage;

use client::TrustedProxies;
use gcra::Rate;
use memory::MemoryBuckets;
use shared::SharedBuckets;
use store::{Bucket, BucketStore};

pub use client::ClientKey;
pub use gcra::KeyedLimiter;
pub use store::{AddressBucket, EmailKey, LimitError};

/// Keys a limiter keeps by default before it evicts the idlest ones.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

pub struct RateLimits {
    per_client: Option<Rate>,
    per_email: Option<Rate>,
    buckets: Box<dyn BucketStore>,
    /// Peers whose X-Forwarded-For header is believed; everyone else is
    /// limited by peer address.
    trusted_proxies: TrustedProxies,
}

impl RateLimits {
    /// No limits at all (RATE_LIMITS=off, for local use); caller quotas still hold.
    pub fn disabled() -> Self {
        RateLimits {
            per_client: None,
            per_email: None,
            buckets: Box::new(MemoryBuckets::default()),
            trusted_proxies: TrustedProxies::default(),
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
        let per_client = Rate::per_minute(per_client_per_minute);
        let per_email = Rate::new(per_email_per_hour, Duration::from_secs(3600));
        RateLimits {
            per_client,
            per_email,
            buckets: Box::new(MemoryBuckets::new(per_client, per_email, max_keys)),
            trusted_proxies: TrustedProxies::new(trusted_proxies),
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
        limits.buckets = match store {
            RateLimitStore::Postgres => Box::new(SharedBuckets::new(
                limits.per_client,
                limits.per_email,
                Arc::clone(storage),
                Arc::clone(readiness),
            )),
            RateLimitStore::Memory => {
                let memory = MemoryBuckets::new(
                    limits.per_client,
                    limits.per_email,
                    settings.rate_limit_max_keys,
                );
                match callers {
                    Some(callers) => Box::new(memory.with_quotas(callers)),
                    None => Box::new(memory),
                }
            }
        };
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

    /// The client a request is accounted to. From a trusted proxy, that is
    /// the rightmost X-Forwarded-For hop that is not itself a trusted
    /// proxy; `forwarded_for` holds every X-Forwarded-For header value, in
    /// order.
    pub fn client_address<'a>(
        &self,
        peer: Option<SocketAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        self.trusted_proxies.client_address(peer, forwarded_for)
    }

    /// Takes one call from the client's bucket and, for a valid address, one
    /// from that address's; on refusal, how long until a call is allowed.
    pub async fn check(
        &self,
        client: Option<IpAddr>,
        email: Option<(AddressBucket, &Email)>,
    ) -> Result<(), LimitError> {
        let email = email.map(|(bucket, email)| EmailKey::of(bucket, email));
        if let (Some(_), Some(client)) = (self.per_client, client) {
            self.buckets
                .take(Bucket::Client(ClientKey::of(client)))
                .await?;
        }
        if let (Some(_), Some(email)) = (self.per_email, email) {
            self.buckets.take(Bucket::Address(email)).await?;
        }
        Ok(())
    }

    /// Takes one call from `caller`'s requests_per_minute, if it has one.
    pub async fn check_quota(&self, caller: &Caller) -> Result<(), LimitError> {
        if caller.requests_per_minute.is_none() {
            return Ok(());
        }
        self.buckets.take(Bucket::Caller(caller)).await
    }

    /// Drops buckets that are full again, so memory (or the shared table)
    /// follows recent traffic rather than every address ever seen.
    pub async fn forget_idle(&self) {
        self.buckets.forget_idle().await;
    }

    /// Keys held in memory by the per-client and the per-address limiter.
    pub fn keys(&self) -> (usize, usize) {
        self.buckets.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().unwrap())
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
}
