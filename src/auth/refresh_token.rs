//! Refresh tokens: opaque random strings that are stored only as keyed
//! hashes, and the successor of a token, which every instance derives alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::keyring::{Keyring, PurposeMac};

/// Marks a refresh token, so that a leaked one is recognised by scanners.
const PREFIX: &str = "acr_";
/// 32 bytes, base64url without padding.
const BODY_CHARS: usize = 43;
const HASH_LABEL: &[u8] = b"account-service refresh token\0";
const SUCCESSOR_LABEL: &[u8] = b"account-service refresh successor\0";

/// Makes refresh tokens and the keyed hashes they are stored and found by.
/// Debug shows no key (the keyring's own Debug hides them).
#[derive(Clone, Debug)]
pub struct RefreshTokens {
    hashes: PurposeMac,
    successors: PurposeMac,
}

impl RefreshTokens {
    pub fn new(keyring: &Keyring) -> Self {
        RefreshTokens {
            hashes: keyring.purpose(HASH_LABEL),
            successors: keyring.purpose(SUCCESSOR_LABEL),
        }
    }

    /// A new token: 256 bits from the operating system's generator.
    pub fn generate(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        encode(&bytes)
    }

    /// The token that follows `token` at a refresh. It is a MAC of `token`
    /// rather than a random one, so that every instance answering a refresh
    /// of the same token derives the same successor: concurrent refreshes
    /// (tabs, retries after a lost answer) converge on one token, and only
    /// whoever holds the server key can compute it.
    pub fn successor(&self, token: &str) -> String {
        encode(&self.successors.sign(&[token.as_bytes()]))
    }

    /// The keyed hash a token is stored as, under the signing key.
    pub fn stored_hash(&self, token: &str) -> [u8; 32] {
        self.hashes.sign(&[token.as_bytes()])
    }

    /// Every hash a stored token may have been saved as, the signing key's
    /// first, so that rotating SECRET_KEY signs no one out; `None` for a
    /// string that is no refresh token, before any work.
    pub fn lookup_hashes(&self, token: &str) -> Option<Vec<[u8; 32]>> {
        let body = token.strip_prefix(PREFIX)?;
        if body.len() != BODY_CHARS {
            return None;
        }
        // The decoder refuses non-canonical trailing bits: one token, one spelling.
        let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
        (decoded.len() == 32).then(|| self.hashes.sign_all(&[token.as_bytes()]))
    }
}

fn encode(bytes: &[u8; 32]) -> String {
    let mut token = String::with_capacity(PREFIX.len() + BODY_CHARS);
    token.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(current: &[u8], previous: Option<&[u8]>) -> RefreshTokens {
        RefreshTokens::new(&Keyring::new(current, previous))
    }

    #[test]
    fn generated_tokens_are_prefixed_random_and_well_formed() {
        let refresh = tokens(b"key", None);
        let (a, b) = (refresh.generate(), refresh.generate());
        assert_ne!(a, b);
        for token in [&a, &b] {
            assert!(token.starts_with("acr_"), "{token}");
            assert_eq!(token.len(), 4 + 43);
            assert!(refresh.lookup_hashes(token).is_some());
        }
    }

    #[test]
    fn the_successor_is_the_same_everywhere_and_secret_to_the_key() {
        let token = tokens(b"key", None).generate();
        let one = tokens(b"key", None).successor(&token);
        let other_instance = tokens(b"key", None).successor(&token);
        assert_eq!(one, other_instance);
        assert_ne!(one, token);
        assert_ne!(tokens(b"other key", None).successor(&token), one);
        assert_ne!(tokens(b"key", None).successor(&one), one);
        // A successor is a refresh token like any other.
        assert!(tokens(b"key", None).lookup_hashes(&one).is_some());
        assert_eq!(one.len(), 47);
    }

    #[test]
    fn the_stored_hash_is_keyed_and_apart_from_the_successor() {
        let refresh = tokens(b"key", None);
        let token = refresh.generate();
        let hash = refresh.stored_hash(&token);
        assert_eq!(hash, tokens(b"key", None).stored_hash(&token));
        assert_ne!(hash, tokens(b"other key", None).stored_hash(&token));
        assert_ne!(encode(&hash), refresh.successor(&token));
        assert_eq!(refresh.lookup_hashes(&token), Some(vec![hash]));
    }

    #[test]
    fn after_a_rotation_a_token_is_found_under_either_key() {
        let before = tokens(b"old", None);
        let token = before.generate();
        let stored = before.stored_hash(&token);
        let after = tokens(b"new", Some(b"old"));
        let hashes = after.lookup_hashes(&token).unwrap();
        assert_eq!(hashes, vec![after.stored_hash(&token), stored]);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_work() {
        let refresh = tokens(b"key", None);
        let good = refresh.generate();
        let body = &good[4..];
        let cases = [
            String::new(),
            "acr_".to_owned(),
            body.to_owned(),
            format!("acx_{body}"),
            format!("acr_{body}A"),
            format!("acr_{}", &body[1..]),
            format!(" {good}"),
            format!("acr_{}+", &body[..42]),
            format!("acr_{}=", &body[..42]),
            // 43 characters whose last carries bits beyond the 32 bytes.
            format!("acr_{}B", "A".repeat(42)),
        ];
        for case in cases {
            assert_eq!(refresh.lookup_hashes(&case), None, "{case:?}");
        }
        assert!(refresh
            .lookup_hashes(&format!("acr_{}A", "A".repeat(42)))
            .is_some());
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", tokens(b"hunter2", Some(b"swordfish")));
        assert!(!shown.contains("hunter2") && !shown.contains("swordfish"));
        assert!(!shown.contains("104, 117, 110"), "{shown}");
    }
}
