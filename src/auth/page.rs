//! Page tokens of listings: opaque, tamper-evident, and bound to the
//! filters of the listing that issued them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::storage::AccountFilter;

const LABEL: &[u8] = b"account-service page token\0";
const MAC_BYTES: usize = 16;

/// Seals and opens page tokens with the server key (and the previous one
/// during a rotation).
#[derive(Clone)]
pub struct PageTokens {
    keys: Vec<Vec<u8>>,
}

impl PageTokens {
    pub fn new(secret: &[u8], previous: Option<&[u8]>) -> Self {
        let mut keys = vec![secret.to_vec()];
        keys.extend(previous.map(<[u8]>::to_vec));
        PageTokens { keys }
    }

    /// A token for the page after `last`, for a listing with `filter`.
    pub fn seal(&self, last: Uuid, filter: &AccountFilter) -> String {
        let mut token = last.as_bytes().to_vec();
        token.extend_from_slice(&mac(&self.keys[0], last, filter));
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
        let genuine = self.keys.iter().fold(false, |found, key| {
            found | bool::from(mac(key, last, filter).as_slice().ct_eq(tag))
        });
        genuine.then_some(last)
    }
}

fn mac(key: &[u8], last: Uuid, filter: &AccountFilter) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this arm is never taken.
        return vec![0; MAC_BYTES];
    };
    mac.update(LABEL);
    mac.update(last.as_bytes());
    let verified = match filter.verified {
        None => b'-',
        Some(true) => b'1',
        Some(false) => b'0',
    };
    mac.update(&[verified]);
    mac.update(filter.email_prefix.as_bytes());
    mac.finalize().into_bytes()[..MAC_BYTES].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_for_their_filters_and_key() {
        let pages = PageTokens::new(b"key", None);
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
        assert_eq!(PageTokens::new(b"other", None).open(&token, &filter), None);
        assert_eq!(
            PageTokens::new(b"new", Some(b"key")).open(&token, &filter),
            Some(id)
        );
        let mut tampered = URL_SAFE_NO_PAD.decode(&token).unwrap();
        tampered[0] ^= 1;
        assert_eq!(pages.open(&URL_SAFE_NO_PAD.encode(tampered), &filter), None);
        assert_eq!(pages.open("junk", &filter), None);
        assert_eq!(pages.open(&"A".repeat(5000), &filter), None);
    }
}
