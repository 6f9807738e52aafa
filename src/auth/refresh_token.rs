//! Refresh tokens: opaque random strings that are stored only as keyed
//! hashes, and the successor of a token, which every instance derives alike.

use super::keyring::{Keyring, PurposeMac};
use super::one_time::{OneTimeStrings, PrefixedToken};

/// Marks a refresh token, so that a leaked one is recognised by scanners.
const TOKEN: PrefixedToken = PrefixedToken { prefix: "acr_" };
const HASH_LABEL: &[u8] = b"account-service refresh token\0";
const SUCCESSOR_LABEL: &[u8] = b"account-service refresh successor\0";

/// Makes refresh tokens and the keyed hashes they are stored and found by.
/// Debug shows no key (the keyring's own Debug hides them).
#[derive(Clone, Debug)]
pub struct RefreshTokens {
    tokens: OneTimeStrings<PrefixedToken>,
    successors: PurposeMac,
}

impl RefreshTokens {
    pub fn new(keyring: &Keyring) -> Self {
        RefreshTokens {
            tokens: OneTimeStrings::new(keyring, HASH_LABEL, TOKEN),
            successors: keyring.purpose(SUCCESSOR_LABEL),
        }
    }

    /// A new token: 256 bits from the operating system's generator.
    pub fn generate(&self) -> String {
        self.tokens.generate()
    }

    /// The token that follows `token` at a refresh. It is a MAC of `token`
    /// rather than a random one, so that every instance answering a refresh
    /// of the same token derives the same successor: concurrent refreshes
    /// (tabs, retries after a lost answer) converge on one token, and only
    /// whoever holds the server key can compute it.
    pub fn successor(&self, token: &str) -> String {
        TOKEN.encode(&self.successors.sign(&[token.as_bytes()]))
    }

    /// The keyed hash a token is stored as, under the signing key.
    pub fn stored_hash(&self, token: &str) -> [u8; 32] {
        self.tokens.stored_hash(token)
    }

    /// Every hash a stored token may have been saved as, the signing key's
    /// first, so that rotating SECRET_KEY signs no one out; `None` for a
    /// string that is no refresh token, before any work.
    pub fn lookup_hashes(&self, token: &str) -> Option<Vec<[u8; 32]>> {
        self.tokens.lookup_hashes(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::one_time::hex;
    use crate::auth::one_time::testing::assert_debug_hides_keys;

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
        assert_ne!(TOKEN.encode(&hash), refresh.successor(&token));
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
        let body = &refresh.generate()[4..];
        for case in [
            "",
            "acr_",
            body,
            &format!("acc_{body}"),
            &format!("acr_{body}A"),
        ] {
            assert_eq!(refresh.lookup_hashes(case), None, "{case:?}");
        }
    }

    #[test]
    fn stored_hashes_and_successors_keep_their_derivation() {
        // HMAC-SHA256(key, label || token), as tokens stored before were hashed.
        let refresh = tokens(b"key", None);
        let token = format!("acr_{}", "A".repeat(43));
        assert_eq!(
            hex(&refresh.stored_hash(&token)),
            "2d0c116a2bb79d84fc94cbab5a69aeadb97257813e93c7308a8593583d715c50"
        );
        let successor = TOKEN.encode(
            &data_encoding::HEXLOWER
                .decode(b"f26cb0408f418b91dd84aa3c7d4c7d12e706911bec6954c0bf4aa196986339a1")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(refresh.successor(&token), successor);
    }

    #[test]
    fn debug_shows_no_key() {
        assert_debug_hides_keys(RefreshTokens::new);
    }
}
