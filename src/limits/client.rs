//! Which client a request is accounted to: the peer, or the address a
//! trusted proxy forwarded; and the bucket key of that client.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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

/// Peers whose X-Forwarded-For header is believed (load balancers, the
/// shop's own front end); everyone else is accounted by peer address.
#[derive(Debug, Clone, Default)]
pub(super) struct TrustedProxies(Vec<IpAddr>);

impl TrustedProxies {
    pub(super) fn new(proxies: Vec<IpAddr>) -> Self {
        TrustedProxies(proxies.into_iter().map(|ip| ip.to_canonical()).collect())
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// The client a request is accounted to. From a trusted proxy, that is
    /// the rightmost X-Forwarded-For hop that is not itself a trusted proxy:
    /// every hop right of it was written by a proxy we trust, while hops
    /// further left were written by the client and may say anything.
    /// `forwarded_for` holds every X-Forwarded-For header value, in order.
    pub(super) fn client_address<'a>(
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

    fn ip(raw: &str) -> Option<IpAddr> {
        Some(raw.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_and_only_from_trusted_proxies() {
        let limits = TrustedProxies::new(vec![
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        ]);
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
}
