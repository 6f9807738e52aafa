//! Signed, expiring confirmation tokens (HS256 JWTs) for the welcome mail's link.

use chrono::{DateTime, Utc};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only audience a confirmation token is valid for.
pub const AUDIENCE: &str = "confirm-registration";

/// Real tokens are ~250 bytes; anything far larger is refused before any work.
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the confirmation token is missing")]
    Missing,
    #[error("the confirmation token is invalid")]
    Invalid,
    #[error("the confirmation token has expired")]
    Expired,
}

impl TokenError {
    /// The `google.rpc.ErrorInfo` reason clients match on.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Missing => "TOKEN_MISSING",
            TokenError::Invalid => "TOKEN_INVALID",
            TokenError::Expired => "TOKEN_EXPIRED",
        }
    }
}

/// Issues and verifies confirmation tokens.
#[derive(Clone)]
pub struct ConfirmationTokens {
    encoding: EncodingKey,
    /// The current key first, then a previous key still accepted during a rotation.
    decoding: Vec<DecodingKey>,
    lifetime_secs: i64,
    validation: Validation,
}

impl ConfirmationTokens {
    pub fn new(secret: &[u8], previous: Option<&[u8]>, lifetime_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["sub", "aud", "exp"]);
        validation.leeway = 0;
        // Expiry is checked below against the caller's clock, with `exp == now`
        // counting as expired; the library's own check is one second laxer.
        validation.validate_exp = false;
        let mut decoding = vec![DecodingKey::from_secret(secret)];
        decoding.extend(previous.map(DecodingKey::from_secret));
        ConfirmationTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding,
            lifetime_secs: i64::try_from(lifetime_secs).unwrap_or(i64::MAX),
            validation,
        }
    }

    /// A token for `account_id`, valid from `now` for the configured lifetime.
    pub fn issue(&self, account_id: Uuid, now: DateTime<Utc>) -> Result<String, anyhow::Error> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: account_id.to_string(),
            aud: AUDIENCE.to_owned(),
            iat,
            exp: iat.saturating_add(self.lifetime_secs),
            jti: Uuid::new_v4().simple().to_string(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The account id a token names, if it is genuine and unexpired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Uuid, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let claims = self.decode(token)?;
        if claims.exp <= now.timestamp() {
            return Err(TokenError::Expired);
        }
        Uuid::parse_str(&claims.sub).map_err(|_| TokenError::Invalid)
    }

    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let mut result = Err(TokenError::Invalid);
        for key in &self.decoding {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                    result = Err(TokenError::Expired)
                }
                Err(_) => {}
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    const KEY: &[u8] = b"test-secret-key-of-some-length-0123456789";

    fn tokens() -> ConfirmationTokens {
        ConfirmationTokens::new(KEY, None, 3600)
    }

    #[test]
    fn round_trip() {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let token = tokens().issue(id, now).unwrap();
        assert_eq!(tokens().verify(&token, now), Ok(id));
    }

    #[test]
    fn expiry_has_zero_leeway() {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let token = tokens().issue(id, now).unwrap();
        let almost = now + Duration::seconds(3599);
        assert_eq!(tokens().verify(&token, almost), Ok(id));
        let at_exp = now + Duration::seconds(3600);
        assert_eq!(tokens().verify(&token, at_exp), Err(TokenError::Expired));
    }

    #[test]
    fn refuses_foreign_and_malformed_tokens() {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let other = ConfirmationTokens::new(b"another-key", None, 3600)
            .issue(id, now)
            .unwrap();
        assert_eq!(tokens().verify(&other, now), Err(TokenError::Invalid));
        assert_eq!(tokens().verify("garbage", now), Err(TokenError::Invalid));
        assert_eq!(tokens().verify("  ", now), Err(TokenError::Missing));
        let huge = "a".repeat(100_000);
        assert_eq!(tokens().verify(&huge, now), Err(TokenError::Invalid));
    }

    #[test]
    fn refuses_wrong_audience_and_algorithm() {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: Uuid::now_v7().to_string(),
            aud: "password-reset".into(),
            iat: now,
            exp: now + 60,
            jti: "x".into(),
        };
        let key = EncodingKey::from_secret(KEY);
        let wrong_aud =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert_eq!(
            tokens().verify(&wrong_aud, Utc::now()),
            Err(TokenError::Invalid)
        );
        let claims = Claims {
            aud: AUDIENCE.into(),
            ..claims
        };
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
        assert_eq!(
            tokens().verify(&hs512, Utc::now()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn previous_key_still_verifies_during_rotation() {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let old = ConfirmationTokens::new(b"old-key", None, 3600)
            .issue(id, now)
            .unwrap();
        let rotated = ConfirmationTokens::new(KEY, Some(b"old-key"), 3600);
        assert_eq!(rotated.verify(&old, now), Ok(id));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_input_never_verifies_or_panics(raw in any::<String>(), parts in "[A-Za-z0-9_-]{0,60}(\\.[A-Za-z0-9_-]{0,60}){0,3}") {
            let tokens = ConfirmationTokens::new(b"key", None, 3600);
            prop_assert!(tokens.verify(&raw, Utc::now()).is_err());
            prop_assert!(tokens.verify(&parts, Utc::now()).is_err());
        }
    }
}
