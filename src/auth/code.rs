//! Confirmation codes: six digits mailed beside the link, for shoppers who
//! cannot follow it. Only a keyed hash of each code is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use subtle::ConstantTimeEq;
use uuid::Uuid;

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

/// Issues codes and checks them, with the current key and a previous one
/// still accepted during a rotation.
#[derive(Clone)]
pub struct ConfirmationCodes {
    keys: Vec<Vec<u8>>,
    lifetime: chrono::Duration,
}

impl ConfirmationCodes {
    /// Codes live as long as confirmation links (`lifetime_secs`).
    pub fn new(secret: &[u8], previous: Option<&[u8]>, lifetime_secs: u64) -> Self {
        let mut keys = vec![secret.to_vec()];
        keys.extend(previous.map(<[u8]>::to_vec));
        ConfirmationCodes {
            keys,
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
            hmac: digest(&self.keys[0], account_id, &code),
            expires_at: now + self.lifetime,
        };
        (code, stored)
    }

    /// Whether `code` is the one whose hash is `stored`, for `account_id`.
    /// Costs the same whether or not it is.
    pub fn matches(&self, account_id: Uuid, code: &str, stored: &str) -> bool {
        self.keys.iter().fold(false, |found, key| {
            found
                | bool::from(
                    digest(key, account_id, code)
                        .as_bytes()
                        .ct_eq(stored.as_bytes()),
                )
        })
    }

    /// The six digits a shopper typed, white space around them ignored;
    /// `None` for anything else.
    pub fn parse(raw: &str) -> Option<&str> {
        let code = raw.trim();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
    }
}

fn digest(key: &[u8], account_id: Uuid, code: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this arm is never taken.
        return String::new();
    };
    mac.update(LABEL);
    mac.update(account_id.as_bytes());
    mac.update(code.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_bound_to_their_account_and_key() {
        let codes = ConfirmationCodes::new(b"key", None, 3600);
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
        assert!(!ConfirmationCodes::new(b"other", None, 3600).matches(id, &code, &stored.hmac));
        assert!(ConfirmationCodes::new(b"new", Some(b"key"), 3600).matches(
            id,
            &code,
            &stored.hmac
        ));
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
