//! Recovery codes: the one-time codes that stand in for the authenticator
//! app when the phone is lost, shown once and stored only as keyed hashes.

use std::borrow::Cow;

use rand::RngCore;

use super::keyring::Keyring;
use super::one_time::{hex, OneTimeStrings, Shape};

/// How many codes a set holds.
pub const RECOVERY_CODE_COUNT: usize = 10;

const HASH_LABEL: &[u8] = b"account-service recovery code\0";
/// RFC 4648 base32 in lower case: no 0/1/8/9 to mistake for o/l/b/g, and
/// nothing that changes when a phone capitalises it.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// 10 characters of 5 bits: 50 bits, beyond guessing within the sign-in
/// lockout.
const CHARS: usize = 10;
/// Where the dash goes, so a person can read the code out in two halves.
const HALF: usize = CHARS / 2;

#[derive(Clone, Copy, Debug)]
struct RecoveryCode;

impl Shape for RecoveryCode {
    /// "xxxxx-xxxxx".
    fn draw(&self) -> String {
        let bits = rand::rngs::OsRng.next_u64();
        let mut code = String::with_capacity(CHARS + 1);
        for i in 0..CHARS {
            if i == HALF {
                code.push('-');
            }
            // 32 symbols take exactly 5 bits each: no modulo bias.
            code.push(char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize]));
        }
        code
    }

    /// Surrounding and inner white space and dashes dropped, lower case:
    /// however the code was copied or typed.
    fn normalise<'a>(&self, presented: &'a str) -> Cow<'a, str> {
        Cow::Owned(
            presented
                .chars()
                .filter(|c| *c != '-' && !c.is_whitespace())
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        )
    }

    fn admits(&self, normalised: &str) -> bool {
        normalised.len() == CHARS && normalised.bytes().all(|b| ALPHABET.contains(&b))
    }
}

/// Makes sets of recovery codes and the keyed hashes they are stored and
/// found by. Debug shows no key.
#[derive(Clone, Debug)]
pub struct RecoveryCodes {
    codes: OneTimeStrings<RecoveryCode>,
}

impl RecoveryCodes {
    pub fn new(keyring: &Keyring) -> Self {
        RecoveryCodes {
            codes: OneTimeStrings::new(keyring, HASH_LABEL, RecoveryCode),
        }
    }

    /// A new set of [`RECOVERY_CODE_COUNT`] distinct codes, each
    /// "xxxxx-xxxxx".
    pub fn generate(&self) -> Vec<String> {
        let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_CODE_COUNT);
        while codes.len() < RECOVERY_CODE_COUNT {
            let code = self.codes.generate();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }

    /// The keyed hash a code is stored as, in hex, under the signing key,
    /// of its normalised spelling.
    pub fn stored_hash(&self, code: &str) -> String {
        hex(&self.codes.stored_hash(code))
    }

    /// Every hash a code may have been stored as, in hex, the signing key's
    /// first; `None` unless the code, normalised, is 10 characters of the
    /// alphabet.
    pub fn lookup_hashes(&self, code: &str) -> Option<Vec<String>> {
        self.codes
            .lookup_hashes(code)
            .map(|hashes| hashes.iter().map(hex).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::one_time::testing::assert_debug_hides_keys;

    fn codes(current: &[u8], previous: Option<&[u8]>) -> RecoveryCodes {
        RecoveryCodes::new(&Keyring::new(current, previous))
    }

    #[test]
    fn a_set_is_ten_distinct_codes_of_two_halves() {
        let recovery = codes(b"key", None);
        let set = recovery.generate();
        assert_eq!(set.len(), 10);
        for code in &set {
            let (left, right) = code.split_once('-').unwrap();
            assert_eq!((left.len(), right.len()), (5, 5), "{code}");
            assert!(
                format!("{left}{right}")
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
                "{code}"
            );
            assert_eq!(
                recovery.lookup_hashes(code),
                Some(vec![recovery.stored_hash(code)])
            );
        }
        let mut distinct = set.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
        assert_ne!(set, recovery.generate());
    }

    #[test]
    fn every_spelling_of_a_code_finds_the_same_hash() {
        let recovery = codes(b"key", None);
        let stored = recovery.stored_hash("abcde-fg234");
        assert_eq!(stored.len(), 64);
        for typed in [
            "abcdefg234",
            " ABCDE-FG234\n",
            "abcde fg234",
            "ab-cde-fg\t234",
        ] {
            assert_eq!(recovery.stored_hash(typed), stored, "{typed:?}");
            assert_eq!(
                recovery.lookup_hashes(typed),
                Some(vec![stored.clone()]),
                "{typed:?}"
            );
        }
        assert_ne!(recovery.stored_hash("abcde-fg235"), stored);
        assert_ne!(codes(b"other", None).stored_hash("abcde-fg234"), stored);
    }

    #[test]
    fn what_cannot_be_a_code_is_refused() {
        let recovery = codes(b"key", None);
        for bad in [
            "",
            "abcde-fg23",
            "abcde-fg2345",
            "abcde-fg238",
            "abcde-fg231",
            "abcde_fg234",
            "abcdé-fg234",
            "abcde-fg23\u{212a}",
            "123456",
        ] {
            assert_eq!(recovery.lookup_hashes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn after_a_rotation_a_code_is_found_under_either_key() {
        let before = codes(b"old", None);
        let code = &before.generate()[0];
        let after = codes(b"new", Some(b"old"));
        assert_eq!(
            after.lookup_hashes(code),
            Some(vec![after.stored_hash(code), before.stored_hash(code)])
        );
    }

    #[test]
    fn debug_shows_no_key() {
        assert_debug_hides_keys(RecoveryCodes::new);
    }
}
