//! Secrets at rest (TOTP secrets): AES-256-GCM under a key derived from the
//! server key, so a copy of the database alone reveals none, and a secret
//! sealed before a key rotation still opens with the previous key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::keyring::Keyring;

/// Keeps these keys apart from every other use of the server key.
const KEY_INFO: &[u8] = b"account-service totp secret encryption v1";
/// Names the format, so that another cipher or layout can follow it.
const VERSION: &str = "v1.";
/// 96 bits, GCM's native nonce; random, as each secret is sealed only at
/// enrolment and at a re-seal after rotation, far from the 2^32 sealings
/// per key where random nonces would start to risk a repeat.
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// Seals and opens secrets with keys derived from the keyring's. Debug
/// shows nothing.
#[derive(Clone)]
pub struct SecretBox {
    /// The current key's cipher first, then the previous key's.
    ciphers: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// An opened secret.
pub struct Opened {
    pub plaintext: Vec<u8>,
    /// Sealed under SECRET_KEY_PREVIOUS: seal it again with the current key,
    /// so that the previous key can be retired.
    pub stale: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("plaintext", &"..")
            .field("stale", &self.stale)
            .finish()
    }
}

/// Why a sealed secret did not open. It says nothing more on purpose: which
/// check failed would help no operator and might help an attacker.
#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the sealed secret does not open with any configured key")]
    Unreadable,
}

impl SecretBox {
    pub fn new(keyring: &Keyring) -> Self {
        let ciphers = keyring
            .derived_keys(KEY_INFO)
            .iter()
            .map(|key| Aes256Gcm::new(&(**key).into()))
            .collect();
        SecretBox { ciphers }
    }

    /// `plaintext` sealed under the current key, as text for a database
    /// column: "v1." and base64url(nonce || ciphertext || tag). `context`
    /// (the owning account's id) is authenticated with it, so a sealed
    /// secret copied into another account's row does not open there.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context,
        };
        // The keyring always holds a current key, and AES-GCM refuses only
        // inputs over 64 GiB; were either ever false, the empty ciphertext
        // fails to open as Unreadable rather than panicking here.
        let ciphertext = self
            .ciphers
            .first()
            .and_then(|cipher| cipher.encrypt(Nonce::from_slice(&nonce), payload).ok())
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        let mut text = String::from(VERSION);
        URL_SAFE_NO_PAD.encode_string(&sealed, &mut text);
        text
    }

    /// The plaintext of `sealed`, if it was sealed for `context` under the
    /// current key or the previous one.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Opened, SecretBoxError> {
        let encoded = sealed
            .strip_prefix(VERSION)
            .ok_or(SecretBoxError::Unreadable)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SecretBoxError::Unreadable)?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SecretBoxError::Unreadable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.ciphers
            .iter()
            .enumerate()
            .find_map(|(index, cipher)| {
                let payload = Payload {
                    msg: ciphertext,
                    aad: context,
                };
                let plaintext = cipher.decrypt(Nonce::from_slice(nonce), payload).ok()?;
                Some(Opened {
                    plaintext,
                    stale: index > 0,
                })
            })
            .ok_or(SecretBoxError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &[u8] = b"0192f0c4-7a3e-7000-8000-000000000001";
    const SECRET: &[u8] = b"12345678901234567890";

    fn sealer(current: &[u8], previous: Option<&[u8]>) -> SecretBox {
        SecretBox::new(&Keyring::new(current, previous))
    }

    #[test]
    fn a_sealed_secret_opens_for_its_account() {
        let secrets = sealer(b"key", None);
        let sealed = secrets.seal(SECRET, ACCOUNT);
        assert!(sealed.starts_with("v1."), "{sealed}");
        assert!(sealed[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(SECRET)));
        let opened = secrets.open(&sealed, ACCOUNT).unwrap();
        assert_eq!(opened.plaintext, SECRET);
        assert!(!opened.stale);
        // A fresh nonce each time: the same secret never seals alike.
        assert_ne!(secrets.seal(SECRET, ACCOUNT), sealed);
    }

    #[test]
    fn another_accounts_row_does_not_open_it() {
        let secrets = sealer(b"key", None);
        let sealed = secrets.seal(SECRET, ACCOUNT);
        let other = b"0192f0c4-7a3e-7000-8000-000000000002";
        assert!(matches!(
            secrets.open(&sealed, other),
            Err(SecretBoxError::Unreadable)
        ));
        assert!(secrets.open(&sealed, b"").is_err());
    }

    #[test]
    fn any_change_to_the_sealed_text_is_refused() {
        let secrets = sealer(b"key", None);
        let sealed = secrets.seal(SECRET, ACCOUNT);
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for index in [0, NONCE_BYTES, bytes.len() - 1] {
            bytes[index] ^= 1;
            let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(secrets.open(&tampered, ACCOUNT).is_err(), "{index}");
            bytes[index] ^= 1;
        }
        let cut = format!("v1.{}", URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]));
        for bad in [
            "",
            "v1.",
            "v2.AAAA",
            &sealed[3..],
            &format!("v2.{}", &sealed[3..]),
            &format!("{sealed}="),
            &format!("{sealed}!"),
            &cut,
            &format!(
                "v1.{}",
                URL_SAFE_NO_PAD.encode([0u8; NONCE_BYTES + TAG_BYTES - 1])
            ),
        ] {
            assert!(secrets.open(bad, ACCOUNT).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn after_a_rotation_an_old_seal_opens_as_stale() {
        let sealed = sealer(b"old", None).seal(SECRET, ACCOUNT);
        let rotated = sealer(b"new", Some(b"old"));
        let opened = rotated.open(&sealed, ACCOUNT).unwrap();
        assert_eq!(opened.plaintext, SECRET);
        assert!(opened.stale);
        // Sealed again, it opens with the current key alone.
        let resealed = rotated.seal(&opened.plaintext, ACCOUNT);
        let fresh = rotated.open(&resealed, ACCOUNT).unwrap();
        assert!(!fresh.stale);
        assert_eq!(
            sealer(b"new", None)
                .open(&resealed, ACCOUNT)
                .unwrap()
                .plaintext,
            SECRET
        );
    }

    #[test]
    fn an_unknown_key_opens_nothing() {
        let sealed = sealer(b"gone", None).seal(SECRET, ACCOUNT);
        assert!(sealer(b"key", None).open(&sealed, ACCOUNT).is_err());
        assert!(sealer(b"new", Some(b"old")).open(&sealed, ACCOUNT).is_err());
        // Nor does the same server key derived for another purpose.
        let other_purpose = Keyring::new(b"gone", None).derived_keys(b"other");
        let cipher = Aes256Gcm::new(&(*other_purpose[0]).into());
        let sealed = sealer(b"gone", None).seal(SECRET, ACCOUNT);
        let bytes = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: ACCOUNT,
        };
        assert!(cipher.decrypt(Nonce::from_slice(nonce), payload).is_err());
    }

    #[test]
    fn debug_shows_nothing_secret() {
        let secrets = sealer(b"hunter2", Some(b"swordfish"));
        let opened = secrets
            .open(&secrets.seal(b"the plaintext", ACCOUNT), ACCOUNT)
            .unwrap();
        let shown = format!("{secrets:?} {opened:?} {:?}", SecretBoxError::Unreadable);
        for hidden in ["hunter2", "swordfish", "the plaintext", "116, 104, 101"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
        assert!(shown.contains("stale: false"), "{shown}");
    }
}
