//! Abuse limits: token buckets per client address and per target e-mail
//! address, for the calls that create accounts or send mail.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct RateLimits {
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_email: Option<DefaultKeyedRateLimiter<String>>,
    /// Peers whose X-Forwarded-For header is believed (load balancers, the
    /// shop's own front end); everyone else is limited by peer address.
    trusted_proxies: Vec<IpAddr>,
    clock: DefaultClock,
}

impl RateLimits {
    /// No limits at all (RATE_LIMITS=off, for local use).
    pub fn disabled() -> Self {
        RateLimits {
            per_client: None,
            per_email: None,
            trusted_proxies: Vec::new(),
            clock: DefaultClock::default(),
        }
    }

    /// `per_client_per_minute` requests a minute from one client address and
    /// `per_email_per_hour` a hour for one target address; 0 turns that limit off.
    pub fn new(
        per_client_per_minute: u32,
        per_email_per_hour: u32,
        trusted_proxies: Vec<IpAddr>,
    ) -> Self {
        RateLimits {
            per_client: NonZeroU32::new(per_client_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_email: NonZeroU32::new(per_email_per_hour)
                .map(|n| RateLimiter::keyed(Quota::per_hour(n))),
            trusted_proxies,
            clock: DefaultClock::default(),
        }
    }

    /// The address a request is accounted to: the first X-Forwarded-For hop
    /// when the peer is a trusted proxy, the peer's own address otherwise.
    pub fn client_address(
        &self,
        peer: Option<SocketAddr>,
        forwarded_for: Option<&str>,
    ) -> Option<IpAddr> {
        let peer = peer?.ip();
        if self.trusted_proxies.contains(&peer) {
            let first_hop = forwarded_for
                .and_then(|h| h.split(',').next())
                .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
            if let Some(client) = first_hop {
                return Some(client);
            }
        }
        Some(peer)
    }

    /// Takes one token from the client's bucket and one from the target
    /// address's; on refusal, how long until the call would be allowed.
    pub fn check(&self, client: Option<IpAddr>, email: &str) -> Result<(), Duration> {
        if let (Some(limiter), Some(client)) = (&self.per_client, client) {
            limiter
                .check_key(&client)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now()))?;
        }
        let email = crate::domain::email_normalize(email);
        if let (Some(limiter), false) = (&self.per_email, email.is_empty()) {
            limiter
                .check_key(&email)
                .map_err(|not_until| not_until.wait_time_from(self.clock.now()))?;
        }
        Ok(())
    }

    /// Drops buckets that are full again, so memory follows recent traffic
    /// rather than every address ever seen.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_email {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 4000))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let limits = RateLimits::new(1, 1, vec!["10.0.0.1".parse().unwrap()]);
        let via_proxy = limits.client_address(peer("10.0.0.1"), Some("203.0.113.7, 10.0.0.1"));
        assert_eq!(via_proxy, Some("203.0.113.7".parse().unwrap()));
        let spoofed = limits.client_address(peer("198.51.100.9"), Some("203.0.113.7"));
        assert_eq!(spoofed, Some("198.51.100.9".parse().unwrap()));
        let garbage = limits.client_address(peer("10.0.0.1"), Some("not-an-ip"));
        assert_eq!(garbage, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn buckets_are_per_client_and_per_email() {
        let limits = RateLimits::new(2, 1, vec![]);
        let a = Some("192.0.2.1".parse().unwrap());
        let b = Some("192.0.2.2".parse().unwrap());
        assert!(limits.check(a, "x@example.com").is_ok());
        // Same address, other case: the same bucket.
        let wait = limits.check(b, "X@Example.com ").unwrap_err();
        assert!(wait > Duration::ZERO);
        assert!(limits.check(a, "y@example.com").is_ok());
        assert!(
            limits.check(a, "z@example.com").is_err(),
            "client bucket empty"
        );
        assert!(limits.check(b, "z@example.com").is_ok());
        assert!(RateLimits::disabled().check(a, "x@example.com").is_ok());
    }
}
