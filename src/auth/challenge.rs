//! Sign-in challenges: the opaque token a right password earns when the
//! account needs a second factor, stored only as a keyed hash and bound to
//! the password hash it was issued under.

use subtle::ConstantTimeEq;

use super::keyring::{Keyring, PurposeMac};
use super::one_time::{hex, OneTimeStrings, PrefixedToken};

/// Marks a challenge, so that a leaked one is recognised by scanners and
/// never mistaken for a refresh token ("acr_").
const TOKEN: PrefixedToken = PrefixedToken { prefix: "acc_" };
const HASH_LABEL: &[u8] = b"account-service sign-in challenge\0";
const BINDING_LABEL: &[u8] = b"account-service sign-in challenge binding\0";

/// Makes challenges, the keyed hashes they are stored and found by, and
/// their binding to a password hash. Debug shows no key.
#[derive(Clone, Debug)]
pub struct ChallengeTokens {
    tokens: OneTimeStrings<PrefixedToken>,
    bindings: PurposeMac,
}

impl ChallengeTokens {
    pub fn new(keyring: &Keyring) -> Self {
        ChallengeTokens {
            tokens: OneTimeStrings::new(keyring, HASH_LABEL, TOKEN),
            bindings: keyring.purpose(BINDING_LABEL),
        }
    }

    /// A new challenge: "acc_" and 256 bits in base64url.
    pub fn generate(&self) -> String {
        self.tokens.generate()
    }

    /// The keyed hash a challenge is stored as, in hex, under the signing key.
    pub fn stored_hash(&self, token: &str) -> String {
        hex(&self.tokens.stored_hash(token))
    }

    /// Every hash a stored challenge may have been saved as, in hex, the
    /// signing key's first; `None` for a string that is no challenge.
    pub fn lookup_hashes(&self, token: &str) -> Option<Vec<String>> {
        self.tokens
            .lookup_hashes(token)
            .map(|hashes| hashes.iter().map(hex).collect())
    }

    /// A keyed hash of the password hash a challenge is issued under, in
    /// hex: a password changed or reset in between makes the challenge
    /// worthless, and the row does not hold the password hash itself.
    pub fn binding(&self, password_hash: &str) -> String {
        hex(&self.bindings.sign(&[password_hash.as_bytes()]))
    }

    /// Whether `binding` is [`Self::binding`] of `password_hash` under any
    /// key, compared in constant time.
    pub fn binding_matches(&self, password_hash: &str, binding: &str) -> bool {
        self.bindings.verify(&[password_hash.as_bytes()], |tag| {
            hex(tag).as_bytes().ct_eq(binding.as_bytes()).into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::one_time::testing::assert_debug_hides_keys;

    fn challenges(current: &[u8], previous: Option<&[u8]>) -> ChallengeTokens {
        ChallengeTokens::new(&Keyring::new(current, previous))
    }

    #[test]
    fn challenges_are_prefixed_random_and_found_by_their_hex_hash() {
        let tokens = challenges(b"key", None);
        let (a, b) = (tokens.generate(), tokens.generate());
        assert_ne!(a, b);
        assert!(a.starts_with("acc_") && a.len() == 4 + 43, "{a}");
        let stored = tokens.stored_hash(&a);
        assert_eq!(stored.len(), 64);
        assert!(stored
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(tokens.lookup_hashes(&a), Some(vec![stored.clone()]));
        assert_ne!(challenges(b"other", None).stored_hash(&a), stored);
    }

    #[test]
    fn challenges_are_apart_from_refresh_tokens() {
        let keyring = Keyring::new(b"key", None);
        let refresh = crate::auth::RefreshTokens::new(&keyring);
        let challenge = ChallengeTokens::new(&keyring);
        let refresh_token = refresh.generate();
        assert_eq!(challenge.lookup_hashes(&refresh_token), None);
        let token = challenge.generate();
        assert_eq!(refresh.lookup_hashes(&token), None);
        // Same bytes after the prefix, other label: other hash.
        let body = &token[4..];
        assert_ne!(
            hex(&refresh.stored_hash(&format!("acc_{body}"))),
            challenge.stored_hash(&token)
        );
    }

    #[test]
    fn malformed_challenges_are_refused() {
        let tokens = challenges(b"key", None);
        let good = tokens.generate();
        for bad in [
            "",
            "acc_",
            &good[4..],
            &format!("{good}A"),
            &format!(" {good}"),
        ] {
            assert_eq!(tokens.lookup_hashes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn after_a_rotation_a_challenge_is_found_under_either_key() {
        let before = challenges(b"old", None);
        let token = before.generate();
        let after = challenges(b"new", Some(b"old"));
        assert_eq!(
            after.lookup_hashes(&token),
            Some(vec![after.stored_hash(&token), before.stored_hash(&token)])
        );
    }

    #[test]
    fn the_binding_holds_for_its_password_hash_under_any_key() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let before = challenges(b"old", None);
        let binding = before.binding(hash);
        assert_eq!(binding.len(), 64);
        assert!(!binding.contains("argon2"));
        assert!(before.binding_matches(hash, &binding));
        assert!(!before.binding_matches(&format!("{hash}x"), &binding));
        assert!(!before.binding_matches(hash, &binding.to_uppercase()));
        assert!(!before.binding_matches(hash, ""));
        assert!(challenges(b"new", Some(b"old")).binding_matches(hash, &binding));
        assert!(!challenges(b"new", None).binding_matches(hash, &binding));
        // A binding is no challenge hash of the same text.
        assert_ne!(before.stored_hash(hash), binding);
    }

    #[test]
    fn debug_shows_no_key() {
        assert_debug_hides_keys(ChallengeTokens::new);
    }
}
