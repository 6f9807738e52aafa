//! Sessions: what a sign-in stores, the client it came from, and why one ends.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::requests::uuid_field;
use super::{FieldViolation, ValidationErrors};

/// Longest user agent stored, in characters; longer ones are cut.
pub const USER_AGENT_MAX_CHARS: usize = 512;
/// Message for a `client.ip_address` that is not an IP address.
pub const INVALID_IP_ADDRESS: &str = "Enter a valid IPv4 or IPv6 address.";
/// Message for a user agent holding control characters.
pub const CONTROL_CHARACTERS: &str = "Control characters are not allowed.";

/// One sign-in of an account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub account_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The sign-in or the last refresh.
    pub last_used_at: DateTime<Utc>,
    pub user_agent: String,
    pub ip_address: String,
    /// Signed in with a second factor after the password.
    pub two_step: bool,
}

impl Session {
    /// When the session ends unless refreshed before: `idle` after its last
    /// use, and at the latest `max` after the sign-in.
    pub fn expires_at(&self, idle: Duration, max: Duration) -> DateTime<Utc> {
        let after = |from: DateTime<Utc>, d: Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| from.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        after(self.last_used_at, idle).min(after(self.created_at, max))
    }
}

/// What the calling web backend saw of the shopper, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Cut to [`USER_AGENT_MAX_CHARS`] characters.
    pub user_agent: String,
    /// Canonical text of the address (an IPv4-mapped IPv6 address as IPv4),
    /// or empty when none was given.
    pub ip_address: String,
}

impl ClientInfo {
    /// Parses `client.user_agent` and `client.ip_address`, every violation
    /// at once. A user agent is what a browser sent: it may be long (it is
    /// cut), and hold a tab as any header value may, but another control
    /// character in it is no browser's.
    pub fn parse(user_agent: &str, ip_address: &str) -> Result<ClientInfo, ValidationErrors> {
        let mut errors = ValidationErrors(Vec::new());
        let user_agent = user_agent.trim();
        if user_agent.chars().any(|c| c.is_control() && c != '\t') {
            errors.0.push(FieldViolation {
                field: "client.user_agent",
                description: CONTROL_CHARACTERS.to_owned(),
            });
        }
        let ip_address = ip_address.trim();
        let ip = if ip_address.is_empty() {
            String::new()
        } else {
            match ip_address.parse::<IpAddr>() {
                Ok(ip) => ip.to_canonical().to_string(),
                Err(_) => {
                    errors.0.push(FieldViolation {
                        field: "client.ip_address",
                        description: INVALID_IP_ADDRESS.to_owned(),
                    });
                    String::new()
                }
            }
        };
        if !errors.0.is_empty() {
            return Err(errors);
        }
        Ok(ClientInfo {
            user_agent: user_agent.chars().take(USER_AGENT_MAX_CHARS).collect(),
            ip_address: ip,
        })
    }
}

/// Why a session ended, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    SignedOut,
    Revoked,
    Expired,
    /// A rotated-out refresh token came back after the reuse interval.
    Reused,
    /// A sign-in beyond the account's session limit ended the least recently used.
    Evicted,
    PasswordChanged,
    EmailChanged,
    Deleted,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::SignedOut => "signed_out",
            SessionEnd::Revoked => "revoked",
            SessionEnd::Expired => "expired",
            SessionEnd::Reused => "reused",
            SessionEnd::Evicted => "evicted",
            SessionEnd::PasswordChanged => "password",
            SessionEnd::EmailChanged => "email",
            SessionEnd::Deleted => "deleted",
        }
    }
}

/// A session id field: a UUID. Required unless `optional`, when empty means none.
pub fn parse_session_id(
    field: &'static str,
    raw: &str,
    optional: bool,
) -> Result<Option<Uuid>, ValidationErrors> {
    if optional && raw.trim().is_empty() {
        return Ok(None);
    }
    let mut errors = ValidationErrors(Vec::new());
    match uuid_field(&mut errors, field, raw) {
        Some(id) => Ok(Some(id)),
        None => Err(errors),
    }
}

/// An account id and a session id, every violation at once.
pub fn parse_account_session(
    account_id: &str,
    session_field: &'static str,
    session_id: &str,
    session_optional: bool,
) -> Result<(Uuid, Option<Uuid>), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let account = uuid_field(&mut errors, "account_id", account_id);
    let session = parse_session_id(session_field, session_id, session_optional)
        .map_err(|e| errors.0.extend(e.0))
        .ok();
    match (account, session) {
        (Some(account), Some(session)) => Ok((account, session)),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cut_by_characters_and_control_characters_refused() {
        let long = "é".repeat(60 * 1024);
        let c = ClientInfo::parse(&long, "").unwrap();
        assert_eq!(c.user_agent.chars().count(), USER_AGENT_MAX_CHARS);
        let e = ClientInfo::parse("Mozilla\0", "bad").unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|v| v.field).collect();
        assert_eq!(fields, ["client.user_agent", "client.ip_address"]);
        assert!(ClientInfo::parse("a\u{7f}", "").is_err());
        assert!(ClientInfo::parse("a\r\nSet-Cookie: x", "").is_err());
        let tab = ClientInfo::parse("Mozilla/5.0\t(X11)", "").unwrap();
        assert_eq!(tab.user_agent, "Mozilla/5.0\t(X11)");
    }

    #[test]
    fn addresses_are_stored_canonical() {
        let c = ClientInfo::parse("", " ::ffff:192.0.2.1 ").unwrap();
        assert_eq!(c.ip_address, "192.0.2.1");
        let c = ClientInfo::parse("", "2001:DB8::1").unwrap();
        assert_eq!(c.ip_address, "2001:db8::1");
        for bad in ["1.2.3", "example.com", "1.2.3.4:80", "[::1]"] {
            assert!(ClientInfo::parse("", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_is_the_earlier_of_idle_and_absolute() {
        let t = Utc::now();
        let s = Session {
            id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            created_at: t,
            last_used_at: t + chrono::Duration::seconds(50),
            user_agent: String::new(),
            ip_address: String::new(),
            two_step: false,
        };
        let idle = Duration::from_secs(20);
        assert_eq!(
            s.expires_at(idle, Duration::from_secs(60)),
            t + chrono::Duration::seconds(60)
        );
        assert_eq!(
            s.expires_at(idle, Duration::from_secs(600)),
            t + chrono::Duration::seconds(70)
        );
    }

    #[test]
    fn session_ids_are_parsed_with_their_field() {
        assert_eq!(
            parse_session_id("keep_session_id", " ", true).unwrap(),
            None
        );
        let e = parse_account_session("x", "session_id", "y", false).unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|v| v.field).collect();
        assert_eq!(fields, ["account_id", "session_id"]);
    }
}
