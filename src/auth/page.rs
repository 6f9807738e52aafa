//! Page tokens of listings: opaque, tamper-evident, and bound to the
//! filters of the listing that issued them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::keyring::{Keyring, PurposeMac};
use crate::domain::AccountFilter;

const LABEL: &[u8] = b"account-service page token\0";
const MAC_BYTES: usize = 16;

/// Seals and opens page tokens with the keyring's keys.
#[derive(Clone)]
pub struct PageTokens {
    macs: PurposeMac,
}

impl PageTokens {
    pub fn new(keyring: &Keyring) -> Self {
        PageTokens {
            macs: keyring.purpose(LABEL),
        }
    }

    /// A token for the page after `last`, for a listing with `filter`.
    pub fn seal(&self, last: Uuid, filter: &AccountFilter) -> String {
        let mut token = last.as_bytes().to_vec();
        let mac = covered(last, filter, |parts| self.macs.sign(parts));
        token.extend_from_slice(&mac[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Where the page of `token` starts, if this service sealed it for `filter`.
    pub fn open(&self, token: &str, filter: &AccountFilter) -> Option<Uuid> {
        if token.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() != 16 + MAC_BYTES {
            return None;
        }
        let (id, tag) = raw.split_at(16);
        let last = Uuid::from_slice(id).ok()?;
        let genuine = covered(last, filter, |parts| {
            self.macs
                .verify(parts, |mac| mac[..MAC_BYTES].ct_eq(tag).into())
        });
        genuine.then_some(last)
    }
}

/// Calls `f` with what a page token's MAC covers: where the page starts,
/// then the filters.
fn covered<R>(last: Uuid, filter: &AccountFilter, f: impl FnOnce(&[&[u8]]) -> R) -> R {
    let verified = match filter.verified {
        None => b'-',
        Some(true) => b'1',
        Some(false) => b'0',
    };
    f(&[last.as_bytes(), &[verified], filter.email_prefix.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_for_their_filters_and_key() {
        let pages = PageTokens::new(&Keyring::new(b"key", None));
        let id = Uuid::now_v7();
        let filter = AccountFilter {
            email_prefix: "ann".into(),
            verified: Some(true),
        };
        let token = pages.seal(id, &filter);
        assert_eq!(pages.open(&token, &filter), Some(id));
        let other = AccountFilter {
            verified: None,
            ..filter.clone()
        };
        assert_eq!(pages.open(&token, &other), None);
        assert_eq!(
            PageTokens::new(&Keyring::new(b"other", None)).open(&token, &filter),
            None
        );
        assert_eq!(
            PageTokens::new(&Keyring::new(b"new", Some(b"key"))).open(&token, &filter),
            Some(id)
        );
        let mut tampered = URL_SAFE_NO_PAD.decode(&token).unwrap();
        tampered[0] ^= 1;
        assert_eq!(pages.open(&URL_SAFE_NO_PAD.encode(tampered), &filter), None);
        assert_eq!(pages.open("junk", &filter), None);
        assert_eq!(pages.open(&"A".repeat(5000), &filter), None);
    }

    #[test]
    fn tokens_keep_their_derivation() {
        // id || HMAC-SHA256(key, label || id || verified || prefix)[..16]:
        // what listings handed out before still opens.
        let id = Uuid::parse_str("0192f0c4-7a3e-7000-8000-000000000001").unwrap();
        let filter = AccountFilter {
            email_prefix: "ann".into(),
            verified: Some(true),
        };
        let pages = PageTokens::new(&Keyring::new(b"key", None));
        let token = "AZLwxHo-cACAAAAAAAAAAYXdVIflapU5GAjWTeMvVdk";
        assert_eq!(pages.seal(id, &filter), token);
        assert_eq!(pages.open(token, &filter), Some(id));
    }
}
