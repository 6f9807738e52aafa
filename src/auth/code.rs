//! Confirmation codes: six digits mailed beside the link, for shoppers who
//! cannot follow it. Only a keyed hash of each code is stored.

use chrono::{DateTime, Utc};
use rand::Rng;
use uuid::Uuid;

use super::keyring::{Keyring, PurposeMac};

const LABEL: &[u8] = b"account-service confirmation code\0";

/// Wrong codes an account may try before its code is burned.
pub const MAX_CODE_FAILURES: i64 = 5;

/// A code as stored: its keyed hash and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub account_id: Uuid,
    pub hmac: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues codes and checks them, with the keyring's keys.
#[derive(Clone)]
pub struct ConfirmationCodes {
    macs: PurposeMac,
    lifetime: chrono::Duration,
}

impl ConfirmationCodes {
    /// Codes live as long as confirmation links (`lifetime_secs`).
    pub fn new(keyring: &Keyring, lifetime_secs: u64) -> Self {
        ConfirmationCodes {
            macs: keyring.purpose(LABEL),
            lifetime: i64::try_from(lifetime_secs)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .unwrap_or(chrono::Duration::days(3650))
                .min(chrono::Duration::days(3650)),
        }
    }

    /// A fresh code for `account_id` (the six digits, to mail) and what
    /// to store of it.
    pub fn issue(&self, account_id: Uuid, now: DateTime<Utc>) -> (String, StoredCode) {
        let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32));
        let stored = StoredCode {
            account_id,
            hmac: self
                .macs
                .sign_text(&[account_id.as_bytes(), code.as_bytes()]),
            expires_at: now + self.lifetime,
        };
        (code, stored)
    }

    /// Whether `code` is the one whose hash is `stored`, for `account_id`.
    /// Costs the same whether or not it is.
    pub fn matches(&self, account_id: Uuid, code: &str, stored: &str) -> bool {
        self.macs
            .verify_text(&[account_id.as_bytes(), code.as_bytes()], stored)
    }

    /// The six digits a shopper typed, white space around them ignored;
    /// `None` for anything else.
    pub fn parse(raw: &str) -> Option<&str> {
        let code = raw.trim();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_bound_to_their_account_and_key() {
        let codes = ConfirmationCodes::new(&Keyring::new(b"key", None), 3600);
        let id = Uuid::now_v7();
        let now = Utc::now();
        let (code, stored) = codes.issue(id, now);
        assert_eq!(ConfirmationCodes::parse(&code), Some(code.as_str()));
        assert_eq!(stored.expires_at, now + chrono::Duration::hours(1));
        assert!(!stored.hmac.contains(&code));
        assert!(codes.matches(id, &code, &stored.hmac));
        assert!(!codes.matches(Uuid::now_v7(), &code, &stored.hmac));
        let other = if code == "000000" { "000001" } else { "000000" };
        assert!(!codes.matches(id, other, &stored.hmac));
        assert!(
            !ConfirmationCodes::new(&Keyring::new(b"other", None), 3600).matches(
                id,
                &code,
                &stored.hmac
            )
        );
        assert!(
            ConfirmationCodes::new(&Keyring::new(b"new", Some(b"key")), 3600).matches(
                id,
                &code,
                &stored.hmac
            )
        );
    }

    #[test]
    fn stored_hashes_keep_their_derivation() {
        // HMAC-SHA256(key, label || account id || code), base64url: what
        // codes stored before keep matching.
        let codes = ConfirmationCodes::new(&Keyring::new(b"key", Some(b"new")), 3600);
        let id = Uuid::parse_str("0192f0c4-7a3e-7000-8000-000000000001").unwrap();
        assert!(codes.matches(id, "123456", "cIxiaqN5MorCZfelcC3MEOjaNBCMcY6WNncLyTzRD5A"));
    }

    #[test]
    fn only_six_ascii_digits_parse() {
        assert_eq!(ConfirmationCodes::parse(" 012345 "), Some("012345"));
        for bad in [
            "12345",
            "1234567",
            "12a456",
            "١٢٣٤٥٦",
            "",
            "12 456",
            "12345\0",
        ] {
            assert_eq!(ConfirmationCodes::parse(bad), None, "{bad:?}");
        }
    }
}
