//! The server key and, during a rotation, the previous one: the only place
//! that knows about rotation. Tokens, confirmation codes and page tokens
//! take their keys from here; the newest key signs, every key verifies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA256 output.
pub type Tag = [u8; 32];

/// The signing key and the previous one; Debug shows neither.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: SecretSlice<u8>,
    /// Still accepted, so that what it signed stays valid through a rotation.
    previous: Option<SecretSlice<u8>>,
}

impl Keyring {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Self {
        Keyring {
            current: SecretSlice::from(current.to_vec()),
            previous: previous.map(|p| SecretSlice::from(p.to_vec())),
        }
    }

    /// Every key, the signing one first.
    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.current.expose_secret())
            .chain(self.previous.as_ref().map(|p| p.expose_secret()))
    }

    /// The HS256 key that signs JWTs (the raw key, as tokens always used).
    pub(super) fn jwt_signing(&self) -> EncodingKey {
        EncodingKey::from_secret(self.current.expose_secret())
    }

    /// The HS256 keys a JWT may be signed with, the signing one first.
    pub(super) fn jwt_verifying(&self) -> Vec<DecodingKey> {
        self.keys().map(DecodingKey::from_secret).collect()
    }

    /// 32 bytes derived from every key with HKDF-SHA256 for the purpose
    /// `info`, the signing key's first: key material of another kind (an
    /// Ed25519 seed) then rotates with the server key, with no setting of its own.
    pub(super) fn derived_keys(&self, info: &'static [u8]) -> Vec<Zeroizing<[u8; 32]>> {
        self.keys()
            .map(|key| {
                let mut out = Zeroizing::new([0u8; 32]);
                // HKDF-SHA256 refuses only outputs over 8160 bytes: never this one.
                let _ = Hkdf::<Sha256>::new(None, key).expand(info, out.as_mut());
                out
            })
            .collect()
    }

    /// Keyed MACs for one purpose, kept apart from the others by `label`.
    pub(super) fn purpose(&self, label: &'static [u8]) -> PurposeMac {
        PurposeMac {
            label,
            keyring: self.clone(),
        }
    }
}

/// HMAC-SHA256(key, label || parts…) for one purpose.
#[derive(Clone, Debug)]
pub(super) struct PurposeMac {
    label: &'static [u8],
    keyring: Keyring,
}

impl PurposeMac {
    /// The tag of `parts` under the signing key.
    pub fn sign(&self, parts: &[&[u8]]) -> Tag {
        tag(self.keyring.current.expose_secret(), self.label, parts)
    }

    /// The tag of `parts` under every key, the signing key's first: what a
    /// stored tag may be while keys rotate.
    pub fn sign_all(&self, parts: &[&[u8]]) -> Vec<Tag> {
        self.keyring
            .keys()
            .map(|key| tag(key, self.label, parts))
            .collect()
    }

    /// The tag of `parts` under the signing key, base64url (no padding), as
    /// codes and token bindings carry it.
    pub fn sign_text(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(self.sign(parts))
    }

    /// Whether `claimed` is [`Self::sign_text`] of `parts` under any key,
    /// compared in constant time.
    pub fn verify_text(&self, parts: &[&[u8]], claimed: &str) -> bool {
        self.verify(parts, |tag| {
            URL_SAFE_NO_PAD
                .encode(tag)
                .as_bytes()
                .ct_eq(claimed.as_bytes())
                .into()
        })
    }

    /// Whether `accept` takes the tag of `parts` under any key. Every key is
    /// tried, so the answer costs the same whichever key (if any) matches.
    pub fn verify(&self, parts: &[&[u8]], accept: impl Fn(&Tag) -> bool) -> bool {
        self.keyring.keys().fold(false, |found, key| {
            found | accept(&tag(key, self.label, parts))
        })
    }
}

fn tag(key: &[u8], label: &[u8], parts: &[&[u8]]) -> Tag {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this arm is never taken.
        return [0; 32];
    };
    mac.update(label);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key() {
        let ring = Keyring::new(b"hunter2", Some(b"swordfish"));
        let shown = format!("{ring:?} {:?}", ring.purpose(b"x"));
        assert!(!shown.contains("hunter2") && !shown.contains("swordfish"));
        assert!(!shown.contains("104, 117, 110"), "{shown}");
    }

    #[test]
    fn the_signing_key_signs_and_every_key_verifies() {
        let old = Keyring::new(b"old", None).purpose(b"label\0");
        let rotated = Keyring::new(b"new", Some(b"old")).purpose(b"label\0");
        let signed = old.sign(&[b"a", b"b"]);
        assert_ne!(rotated.sign(&[b"a", b"b"]), signed);
        assert!(rotated.verify(&[b"a", b"b"], |t| *t == signed));
        assert!(!rotated.verify(&[b"a", b"c"], |t| *t == signed));
        let other_purpose = Keyring::new(b"old", None).purpose(b"other\0");
        assert!(!other_purpose.verify(&[b"a", b"b"], |t| *t == signed));
    }

    #[test]
    fn every_key_tags_and_derives_the_signing_one_first() {
        let rotated = Keyring::new(b"new", Some(b"old"));
        let tags = rotated.purpose(b"label\0").sign_all(&[b"a"]);
        let old = Keyring::new(b"old", None);
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0], rotated.purpose(b"label\0").sign(&[b"a"]));
        assert_eq!(tags[1], old.purpose(b"label\0").sign(&[b"a"]));

        let derived = rotated.derived_keys(b"info");
        assert_eq!(derived.len(), 2);
        assert_eq!(*derived[1], *old.derived_keys(b"info")[0]);
        assert_ne!(*derived[0], *derived[1]);
        assert_ne!(*derived[0], *rotated.derived_keys(b"other info")[0]);
        // RFC 5869 test case 3 (no salt, no info): the first 32 bytes of its OKM.
        let rfc = Keyring::new(&[0x0b; 22], None).derived_keys(b"");
        let hex: String = rfc[0].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }
}
