//! Access tokens: RFC 9068 JWTs signed with Ed25519, their signing keys and
//! the JWKS document that lets any service verify them offline.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use ring::signature::Ed25519KeyPair;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::keyring::Keyring;

/// HKDF `info` of the Ed25519 seed derived from each server key.
const SEED_LABEL: &[u8] = b"account-service access-token signing key v1";
/// The media type RFC 9068 gives access tokens, in its short form.
const TOKEN_TYPE: &str = "at+jwt";
/// Real tokens are ~450 bytes; anything far larger is refused before any work.
const MAX_TOKEN_BYTES: usize = 4096;

/// A public key that verifies tokens and is published.
#[derive(Clone)]
struct PublicKey {
    /// Its RFC 7638 thumbprint.
    kid: String,
    /// The raw key, base64url: the JWK's `x`.
    x: String,
    decoding: DecodingKey,
}

/// The key that signs access tokens and every key that verifies them, the
/// signing one first. Debug shows key ids only.
#[derive(Clone)]
pub struct SigningKeys {
    /// The key that signs, parsed once (see [`SigningKeys::sign`]).
    signing: Option<Arc<Ed25519KeyPair>>,
    /// The signing key's PKCS#8 DER, for tests that sign with another encoder.
    #[cfg(test)]
    signing_der: Vec<u8>,
    public: Vec<PublicKey>,
}

/// ACCESS_TOKEN_SIGNING_KEY_FILE could not be used; the key is never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    #[error("not a PEM-encoded PKCS#8 Ed25519 private key")]
    Malformed,
}

impl SigningKeys {
    /// Keys derived from the server keys: the current one signs, and the
    /// current and previous ones verify and are published, so rotating
    /// SECRET_KEY rotates the signing key and no token stops verifying.
    pub fn derive(keyring: &Keyring) -> Self {
        let keys = keyring
            .derived_keys(SEED_LABEL)
            .iter()
            .map(|seed| ed25519_dalek::SigningKey::from_bytes(seed))
            .collect::<Vec<_>>();
        Self::from_keys(&keys)
    }

    /// The key of an ACCESS_TOKEN_SIGNING_KEY_FILE (PEM, PKCS#8 Ed25519),
    /// alone: it signs, verifies and is published.
    pub fn from_pem(pem: &str) -> Result<Self, SigningKeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| SigningKeyError::Malformed)?;
        Ok(Self::from_keys(std::slice::from_ref(&key)))
    }

    /// The key of the PEM file at `path` (ACCESS_TOKEN_SIGNING_KEY_FILE);
    /// an error names the setting and the file, never the key.
    pub fn from_pem_file(path: &Path) -> anyhow::Result<Self> {
        let setting = || format!("ACCESS_TOKEN_SIGNING_KEY_FILE {}", path.display());
        let pem = std::fs::read_to_string(path).with_context(setting)?;
        // The key's text leaves memory with this function.
        let pem = Zeroizing::new(pem);
        Self::from_pem(&pem).with_context(setting)
    }

    /// The key ids, the signing key's first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.public.iter().map(|k| k.kid.as_str())
    }

    /// `keys` must not be empty; the first signs.
    fn from_keys(keys: &[ed25519_dalek::SigningKey]) -> Self {
        let mut public: Vec<PublicKey> = Vec::with_capacity(keys.len());
        for key in keys {
            let raw = key.verifying_key().to_bytes();
            let x = URL_SAFE_NO_PAD.encode(raw);
            let kid = thumbprint(&x);
            // SECRET_KEY_PREVIOUS equal to SECRET_KEY: one key, listed once.
            if public.iter().all(|k| k.kid != kid) {
                public.push(PublicKey {
                    kid,
                    x,
                    decoding: DecodingKey::from_ed_der(&raw),
                });
            }
        }
        let signing = keys
            .first()
            .and_then(|k| Ed25519KeyPair::from_seed_unchecked(k.as_bytes()).ok())
            .map(Arc::new);
        SigningKeys {
            signing,
            public,
            #[cfg(test)]
            signing_der: keys
                .first()
                .and_then(|k| {
                    use ed25519_dalek::pkcs8::EncodePrivateKey;
                    k.to_pkcs8_der().ok()
                })
                .map(|der| der.as_bytes().to_vec())
                .unwrap_or_default(),
        }
    }

    /// `header.claims.signature`, the JWS compact serialization that
    /// `jsonwebtoken::encode` writes. Signed here because that function
    /// parses its PKCS#8 key on every call, which derives the public key: a
    /// second scalar multiplication as costly as the signature, and a fifth
    /// of a refresh's CPU in the service. The key here is parsed once.
    fn sign<T: Serialize>(&self, header: &Header, claims: &T) -> anyhow::Result<String> {
        let key = self
            .signing
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no access-token signing key"))?;
        let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let signature = key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }

    fn signing_kid(&self) -> &str {
        self.public.first().map_or("", |k| k.kid.as_str())
    }

    fn jwks(&self) -> JwkSet {
        let keys = self
            .public
            .iter()
            .map(|k| Jwk {
                common: CommonParameters {
                    public_key_use: Some(PublicKeyUse::Signature),
                    key_algorithm: Some(KeyAlgorithm::EdDSA),
                    key_id: Some(k.kid.clone()),
                    ..CommonParameters::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: k.x.clone(),
                }),
            })
            .collect();
        JwkSet { keys }
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kids", &self.key_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url SHA-256 of
/// its required members in lexicographic order, without whitespace.
fn thumbprint(x: &str) -> String {
    #[derive(Serialize)]
    struct Required<'a> {
        crv: &'a str,
        kty: &'a str,
        x: &'a str,
    }
    let canonical = serde_json::to_vec(&Required {
        crv: "Ed25519",
        kty: "OKP",
        x,
    })
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical))
}

/// The claims of an access token as issued (RFC 9068 section 2.2).
#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    sid: String,
    iat: i64,
    exp: i64,
    jti: String,
    auth_time: i64,
    amr: &'a [&'a str],
}

/// What verification reads beyond what jsonwebtoken checks itself.
#[derive(Deserialize)]
struct CheckedClaims {
    sub: String,
    sid: String,
    exp: i64,
}

/// The `amr` of a sign-in with a password alone.
pub const PASSWORD_ONLY: &[&str] = &["pwd"];
/// The `amr` of a sign-in with a password and an authenticator or recovery code.
pub const PASSWORD_AND_CODE: &[&str] = &["pwd", "otp"];

/// A token just issued, and when it stops verifying.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What a genuine, unexpired access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub account_id: Uuid,
    pub session_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Why an access token does not verify; never repeats the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
}

/// Issues and verifies access tokens, and holds the JWKS document.
#[derive(Clone)]
pub struct AccessTokens {
    keys: SigningKeys,
    issuer: String,
    audience: String,
    ttl: Duration,
    ttl_secs: i64,
    validation: Validation,
    jwks: String,
    verified: cache::VerifiedTokens,
}

impl AccessTokens {
    pub fn new(keys: SigningKeys, issuer: String, audience: String, ttl: Duration) -> Self {
        // EdDSA alone: a token naming HS256 (signed with the public key as
        // an HMAC secret) or `none` is refused before any signature check.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        // Expiry is checked against the caller's clock, `exp == now` counting
        // as expired; the library's own check reads the system clock.
        validation.validate_exp = false;
        // Serialising a set of strings cannot fail.
        let jwks = serde_json::to_string(&keys.jwks()).unwrap_or_default();
        AccessTokens {
            keys,
            issuer,
            audience,
            ttl,
            ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            validation,
            jwks,
            verified: cache::VerifiedTokens::default(),
        }
    }

    /// A token for `session_id` of `account_id`, signed in with a password
    /// at `auth_time`, valid from `now` for the TTL.
    pub fn issue(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        auth_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, anyhow::Error> {
        self.issue_for(account_id, session_id, auth_time, PASSWORD_ONLY, now)
    }

    /// A token as [`Self::issue`], the sign-in made with the methods `amr`
    /// names (RFC 8176: `pwd`, `otp`).
    pub fn issue_for(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        auth_time: DateTime<Utc>,
        amr: &[&str],
        now: DateTime<Utc>,
    ) -> Result<IssuedAccessToken, anyhow::Error> {
        let iat = now.timestamp();
        let exp = iat.saturating_add(self.ttl_secs);
        let expires_at = DateTime::from_timestamp(exp, 0)
            .ok_or_else(|| anyhow::anyhow!("access token expiry out of range"))?;
        let claims = IssuedClaims {
            iss: &self.issuer,
            sub: account_id.to_string(),
            aud: &self.audience,
            sid: session_id.to_string(),
            iat,
            exp,
            jti: Uuid::new_v4().to_string(),
            auth_time: auth_time.timestamp(),
            amr,
        };
        let header = Header {
            typ: Some(TOKEN_TYPE.to_owned()),
            kid: Some(self.keys.signing_kid().to_owned()),
            ..Header::new(Algorithm::EdDSA)
        };
        let token = self.keys.sign(&header, &claims)?;
        Ok(IssuedAccessToken { token, expires_at })
    }

    /// The claims of a token one of the keys signed for this issuer and
    /// audience, unexpired at `now`. Whether its session is still live is
    /// the caller's question.
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, AccessTokenError> {
        use AccessTokenError::{Expired, Invalid};
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Invalid);
        }
        if let Some(claims) = self.verified.get(token, now) {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Invalid)?;
        let typ = header.typ.as_deref().unwrap_or_default();
        // RFC 9068 section 4: `at+jwt`, or its full media type, in any case.
        let typed =
            typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt");
        if header.alg != Algorithm::EdDSA || !typed {
            return Err(Invalid);
        }
        let kid = header.kid.as_deref().ok_or(Invalid)?;
        let key = self
            .keys
            .public
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(Invalid)?;
        let claims = jsonwebtoken::decode::<CheckedClaims>(token, &key.decoding, &self.validation)
            .map_err(|_| Invalid)?
            .claims;
        if claims.exp <= now.timestamp() {
            return Err(Expired);
        }
        let verified = AccessClaims {
            account_id: Uuid::parse_str(&claims.sub).map_err(|_| Invalid)?,
            session_id: Uuid::parse_str(&claims.sid).map_err(|_| Invalid)?,
            expires_at: DateTime::from_timestamp(claims.exp, 0).ok_or(Invalid)?,
        };
        self.verified.insert(token, verified, now);
        Ok(verified)
    }

    /// The JWKS document (`{"keys":[…]}`) of every verifying key.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// How long an access token is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("keys", &self.keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

mod cache;

#[cfg(test)]
mod tests;
