//! One-time strings that are handed out once and stored only as keyed
//! hashes (refresh tokens, sign-in challenges, recovery codes): how each is
//! drawn, the one spelling it is hashed in, and its hashes under every key.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::keyring::{Keyring, PurposeMac, Tag};

/// What one kind of one-time string looks like.
pub(super) trait Shape {
    /// A new string, from the operating system's generator.
    fn draw(&self) -> String;

    /// The spelling a presented string is hashed in, so that the ways a
    /// person may type one all find the same row.
    fn normalise<'a>(&self, presented: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(presented)
    }

    /// Whether a normalised string can be one of these at all: what is
    /// refused here costs no MAC and no database look-up.
    fn admits(&self, normalised: &str) -> bool;
}

/// Draws strings of one shape and hashes them under one purpose label.
/// Debug shows no key (the keyring's own Debug hides them).
#[derive(Clone, Debug)]
pub(super) struct OneTimeStrings<S> {
    shape: S,
    hashes: PurposeMac,
}

impl<S: Shape> OneTimeStrings<S> {
    pub fn new(keyring: &Keyring, label: &'static [u8], shape: S) -> Self {
        OneTimeStrings {
            shape,
            hashes: keyring.purpose(label),
        }
    }

    pub fn generate(&self) -> String {
        self.shape.draw()
    }

    /// The keyed hash a string is stored as, under the signing key.
    pub fn stored_hash(&self, presented: &str) -> Tag {
        let normalised = self.shape.normalise(presented);
        self.hashes.sign(&[normalised.as_bytes()])
    }

    /// Every hash a stored string may have been saved as, the signing key's
    /// first, so that rotating SECRET_KEY invalidates none; `None` for a
    /// string of another shape, before any work.
    pub fn lookup_hashes(&self, presented: &str) -> Option<Vec<Tag>> {
        let normalised = self.shape.normalise(presented);
        self.shape
            .admits(&normalised)
            .then(|| self.hashes.sign_all(&[normalised.as_bytes()]))
    }
}

/// A prefix, so that a leaked token is recognised by secret scanners,
/// followed by 32 bytes in base64url without padding.
#[derive(Clone, Copy, Debug)]
pub(super) struct PrefixedToken {
    pub prefix: &'static str,
}

/// 32 bytes, base64url without padding.
const BODY_CHARS: usize = 43;

impl PrefixedToken {
    /// The token whose body is `bytes`.
    pub fn encode(&self, bytes: &[u8; 32]) -> String {
        let mut token = String::with_capacity(self.prefix.len() + BODY_CHARS);
        token.push_str(self.prefix);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
        token
    }
}

impl Shape for PrefixedToken {
    /// 256 bits.
    fn draw(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        self.encode(&bytes)
    }

    fn admits(&self, token: &str) -> bool {
        let Some(body) = token.strip_prefix(self.prefix) else {
            return false;
        };
        // The decoder refuses non-canonical trailing bits: one token, one spelling.
        body.len() == BODY_CHARS
            && URL_SAFE_NO_PAD
                .decode(body)
                .is_ok_and(|decoded| decoded.len() == 32)
    }
}

/// Lower-case hex, as the database stores these hashes.
pub(super) fn hex(tag: &Tag) -> String {
    data_encoding::HEXLOWER.encode(tag)
}

/// Checks shared by the tests of every kind of one-time string.
#[cfg(test)]
pub(super) mod testing {
    use super::Keyring;

    /// What `make` builds from a keyring shows neither key in its Debug.
    pub fn assert_debug_hides_keys<T: std::fmt::Debug>(make: impl Fn(&Keyring) -> T) {
        let shown = format!("{:?}", make(&Keyring::new(b"hunter2", Some(b"swordfish"))));
        assert!(!shown.contains("hunter2") && !shown.contains("swordfish"));
        assert!(!shown.contains("104, 117, 110"), "{shown}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: PrefixedToken = PrefixedToken { prefix: "tst_" };

    #[test]
    fn prefixed_tokens_admit_only_their_own_canonical_spelling() {
        let good = TOKEN.draw();
        assert_ne!(good, TOKEN.draw());
        assert!(TOKEN.admits(&good));
        let body = &good[4..];
        let cases = [
            String::new(),
            "tst_".to_owned(),
            body.to_owned(),
            format!("tsx_{body}"),
            format!("tst_{body}A"),
            format!("tst_{}", &body[1..]),
            format!(" {good}"),
            format!("tst_{}+", &body[..42]),
            format!("tst_{}=", &body[..42]),
            // 43 characters whose last carries bits beyond the 32 bytes.
            format!("tst_{}B", "A".repeat(42)),
        ];
        for case in cases {
            assert!(!TOKEN.admits(&case), "{case:?}");
        }
        assert!(TOKEN.admits(&format!("tst_{}A", "A".repeat(42))));
    }

    #[test]
    fn hashes_are_keyed_labelled_and_found_under_every_key() {
        let before = OneTimeStrings::new(&Keyring::new(b"old", None), b"one\0", TOKEN);
        let token = before.generate();
        let stored = before.stored_hash(&token);
        let other_label = OneTimeStrings::new(&Keyring::new(b"old", None), b"two\0", TOKEN);
        assert_ne!(other_label.stored_hash(&token), stored);

        let after = OneTimeStrings::new(&Keyring::new(b"new", Some(b"old")), b"one\0", TOKEN);
        let hashes = after.lookup_hashes(&token).unwrap();
        assert_eq!(hashes, vec![after.stored_hash(&token), stored]);
        assert_eq!(after.lookup_hashes("tst_short"), None);
    }

    #[test]
    fn hex_is_lower_case() {
        let mut tag = [0u8; 32];
        tag[0] = 0xab;
        tag[31] = 0x0f;
        let shown = hex(&tag);
        assert_eq!(shown.len(), 64);
        assert!(
            shown.starts_with("ab00") && shown.ends_with("000f"),
            "{shown}"
        );
    }
}
