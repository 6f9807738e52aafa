//! Signed, expiring tokens (HS256 JWTs): confirmation links, and password
//! reset links bound to the password they may replace.

use chrono::{DateTime, Utc};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keyring::{Keyring, PurposeMac};

/// The only audience a confirmation token is valid for.
pub const AUDIENCE: &str = "confirm-registration";

/// Real tokens are ~250 bytes; anything far larger is refused before any work.
const MAX_TOKEN_BYTES: usize = 4096;

/// The only audience a password reset token is valid for.
pub const RESET_AUDIENCE: &str = "reset-password";

/// The only audience an e-mail change token is valid for.
pub const EMAIL_CHANGE_AUDIENCE: &str = "confirm-email-change";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    /// Reset tokens: an HMAC of the password hash they may replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pwd: Option<String>,
    /// E-mail change tokens: the address asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// E-mail change tokens: an HMAC of the address they may replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cur: Option<String>,
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

/// Signs and checks tokens for one audience, with the current key and a
/// previous one still accepted during a rotation.
#[derive(Clone)]
struct Signer {
    audience: &'static str,
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
    lifetime_secs: i64,
    validation: Validation,
}

impl Signer {
    fn new(audience: &'static str, keyring: &Keyring, lifetime_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["sub", "aud", "exp"]);
        validation.leeway = 0;
        // Expiry is checked below against the caller's clock, with `exp == now`
        // counting as expired; the library's own check is one second laxer.
        validation.validate_exp = false;
        Signer {
            audience,
            encoding: keyring.jwt_signing(),
            decoding: keyring.jwt_verifying(),
            lifetime_secs: i64::try_from(lifetime_secs).unwrap_or(i64::MAX),
            validation,
        }
    }

    fn issue(
        &self,
        account_id: Uuid,
        now: DateTime<Utc>,
        pwd: Option<String>,
    ) -> Result<String, anyhow::Error> {
        self.issue_with(account_id, now, pwd, None, None)
    }

    fn issue_with(
        &self,
        account_id: Uuid,
        now: DateTime<Utc>,
        pwd: Option<String>,
        email: Option<String>,
        cur: Option<String>,
    ) -> Result<String, anyhow::Error> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: account_id.to_string(),
            aud: self.audience.to_owned(),
            iat,
            exp: iat.saturating_add(self.lifetime_secs),
            jti: Uuid::new_v4().simple().to_string(),
            pwd,
            email,
            cur,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a genuine token, unexpired at `now`.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<(Uuid, Claims), TokenError> {
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
        let id = Uuid::parse_str(&claims.sub).map_err(|_| TokenError::Invalid)?;
        Ok((id, claims))
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

/// Issues and verifies confirmation tokens.
#[derive(Clone)]
pub struct ConfirmationTokens(Signer);

impl ConfirmationTokens {
    pub fn new(keyring: &Keyring, lifetime_secs: u64) -> Self {
        ConfirmationTokens(Signer::new(AUDIENCE, keyring, lifetime_secs))
    }

    /// A token for `account_id`, valid from `now` for the configured lifetime.
    pub fn issue(&self, account_id: Uuid, now: DateTime<Utc>) -> Result<String, anyhow::Error> {
        self.0.issue(account_id, now, None)
    }

    /// The account id a token names, if it is genuine and unexpired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Uuid, TokenError> {
        self.0.verify(token, now).map(|(id, _)| id)
    }
}

/// A genuine, unexpired reset token: whose password it may reset, and the
/// binding to that password's hash (checked with [`ResetTokens::binds`]).
#[derive(Debug)]
pub struct ResetClaim {
    pub account_id: Uuid,
    binding: String,
}

/// Issues and verifies password reset tokens. Each carries an HMAC of the
/// password hash it may replace, so it stops working the moment that
/// password changes: single use without a table of used tokens.
#[derive(Clone)]
pub struct ResetTokens {
    signer: Signer,
    /// MACs of the password hash a token may replace.
    bindings: PurposeMac,
}

impl ResetTokens {
    pub fn new(keyring: &Keyring, lifetime_secs: u64) -> Self {
        ResetTokens {
            signer: Signer::new(RESET_AUDIENCE, keyring, lifetime_secs),
            bindings: keyring.purpose(RESET_LABEL),
        }
    }

    /// A token for `account_id` whose password hash is now `password_hash`.
    pub fn issue(
        &self,
        account_id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<String, anyhow::Error> {
        let binding = self.bindings.sign_text(&[password_hash.as_bytes()]);
        self.signer.issue(account_id, now, Some(binding))
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<ResetClaim, TokenError> {
        let (account_id, claims) = self.signer.verify(token, now)?;
        let binding = claims.pwd.ok_or(TokenError::Invalid)?;
        Ok(ResetClaim {
            account_id,
            binding,
        })
    }

    /// Whether `claim` was issued while the password hash was `current`.
    pub fn binds(&self, claim: &ResetClaim, current: &str) -> bool {
        self.bindings
            .verify_text(&[current.as_bytes()], &claim.binding)
    }
}

/// A genuine, unexpired e-mail change token.
#[derive(Debug)]
pub struct EmailChangeClaim {
    pub account_id: Uuid,
    /// The address asked for, normalised when the token was issued.
    pub new_email: String,
    binding: String,
}

/// Issues and verifies the tokens of new-address confirmation links. Each
/// names the new address and carries an HMAC of the address it replaces,
/// so that it works only while the account still has that address (or, to
/// be idempotent, once it has the new one).
#[derive(Clone)]
pub struct EmailChangeTokens {
    signer: Signer,
    /// MACs of the address a token may replace.
    bindings: PurposeMac,
}

impl EmailChangeTokens {
    pub fn new(keyring: &Keyring, lifetime_secs: u64) -> Self {
        EmailChangeTokens {
            signer: Signer::new(EMAIL_CHANGE_AUDIENCE, keyring, lifetime_secs),
            bindings: keyring.purpose(EMAIL_LABEL),
        }
    }

    /// A token moving `account_id` from `current_email` to `new_email`.
    pub fn issue(
        &self,
        account_id: Uuid,
        current_email: &str,
        new_email: &str,
        now: DateTime<Utc>,
    ) -> Result<String, anyhow::Error> {
        let cur = self.bindings.sign_text(&[current_email.as_bytes()]);
        self.signer
            .issue_with(account_id, now, None, Some(new_email.to_owned()), Some(cur))
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<EmailChangeClaim, TokenError> {
        let (account_id, claims) = self.signer.verify(token, now)?;
        match (claims.email, claims.cur) {
            (Some(new_email), Some(binding)) if !new_email.is_empty() => Ok(EmailChangeClaim {
                account_id,
                new_email,
                binding,
            }),
            _ => Err(TokenError::Invalid),
        }
    }

    /// Whether `claim` was issued while the account's address was `current`.
    pub fn binds(&self, claim: &EmailChangeClaim, current: &str) -> bool {
        self.bindings
            .verify_text(&[current.as_bytes()], &claim.binding)
    }
}

const RESET_LABEL: &[u8] = b"account-service password reset binding\0";
const EMAIL_LABEL: &[u8] = b"account-service e-mail change binding\0";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn reset_tokens_are_bound_to_the_password_hash_and_their_audience() {
        let resets = ResetTokens::new(&Keyring::new(KEY, None), 3600);
        let id = Uuid::now_v7();
        let now = Utc::now();
        let token = resets.issue(id, "$argon2id$old", now).unwrap();
        let claim = resets.verify(&token, now).unwrap();
        assert_eq!(claim.account_id, id);
        assert!(resets.binds(&claim, "$argon2id$old"));
        assert!(!resets.binds(&claim, "$argon2id$new"));
        // Expired at exp, no leeway.
        assert_eq!(
            resets
                .verify(&token, now + Duration::seconds(3600))
                .unwrap_err(),
            TokenError::Expired
        );
        // A confirmation token is no reset token, and the other way round.
        let confirmation = tokens().issue(id, now).unwrap();
        assert_eq!(
            resets.verify(&confirmation, now).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(
            tokens().verify(&token, now).unwrap_err(),
            TokenError::Invalid
        );
        // Issued under the previous key: still verifies and binds during a rotation.
        let old = ResetTokens::new(
            &Keyring::new(b"previous-key-0123456789-0123456789", None),
            3600,
        );
        let rotated = ResetTokens::new(
            &Keyring::new(KEY, Some(b"previous-key-0123456789-0123456789")),
            3600,
        );
        let token = old.issue(id, "$argon2id$old", now).unwrap();
        let claim = rotated.verify(&token, now).unwrap();
        assert!(rotated.binds(&claim, "$argon2id$old"));
        assert_eq!(resets.verify(&token, now).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn reset_tokens_carry_their_claims_and_only_hs256() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let resets = ResetTokens::new(&Keyring::new(KEY, None), 1800);
        let (id, now) = (Uuid::now_v7(), Utc::now());
        let token = resets.issue(id, "$argon2id$h", now).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        let payload = token.split('.').nth(1).unwrap();
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims.sub, id.to_string());
        assert_eq!(claims.aud, RESET_AUDIENCE);
        assert_eq!(claims.iat, now.timestamp());
        assert_eq!(claims.exp, claims.iat + 1800);
        assert_eq!(claims.jti.len(), 32);
        assert!(claims.pwd.as_ref().is_some_and(|p| !p.contains("argon2")));
        assert_ne!(
            resets.issue(id, "$argon2id$h", now).unwrap(),
            token,
            "every token has its own jti"
        );
        // The same claims signed with HS512 under the same key: refused.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(resets.verify(&hs512, now).unwrap_err(), TokenError::Invalid);
    }

    const KEY: &[u8] = b"test-secret-key-of-some-length-0123456789";

    fn tokens() -> ConfirmationTokens {
        ConfirmationTokens::new(&Keyring::new(KEY, None), 3600)
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
        let other = ConfirmationTokens::new(&Keyring::new(b"another-key", None), 3600)
            .issue(id, now)
            .unwrap();
        assert_eq!(tokens().verify(&other, now), Err(TokenError::Invalid));
        assert_eq!(tokens().verify("garbage", now), Err(TokenError::Invalid));
        assert_eq!(tokens().verify("  ", now), Err(TokenError::Missing));
        let huge = "a".repeat(100_000);
        assert_eq!(tokens().verify(&huge, now), Err(TokenError::Invalid));
    }

    #[test]
    fn email_change_tokens_name_the_new_address_and_bind_the_old() {
        let tokens = EmailChangeTokens::new(&Keyring::new(KEY, None), 3600);
        let id = Uuid::now_v7();
        let now = Utc::now();
        let token = tokens
            .issue(id, "old@example.com", "new@example.com", now)
            .unwrap();
        let claim = tokens.verify(&token, now).unwrap();
        assert_eq!(claim.account_id, id);
        assert_eq!(claim.new_email, "new@example.com");
        assert!(tokens.binds(&claim, "old@example.com"));
        assert!(!tokens.binds(&claim, "other@example.com"));
        // Other purposes' tokens are refused.
        let confirmation = ConfirmationTokens::new(&Keyring::new(KEY, None), 3600)
            .issue(id, now)
            .unwrap();
        assert_eq!(
            tokens.verify(&confirmation, now).unwrap_err(),
            TokenError::Invalid
        );
        let reset = ResetTokens::new(&Keyring::new(KEY, None), 3600)
            .issue(id, "old@example.com", now)
            .unwrap();
        assert_eq!(tokens.verify(&reset, now).unwrap_err(), TokenError::Invalid);
        assert_eq!(
            tokens
                .verify(&token, now + Duration::seconds(3600))
                .unwrap_err(),
            TokenError::Expired
        );
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
            pwd: None,
            email: None,
            cur: None,
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
        let old = ConfirmationTokens::new(&Keyring::new(b"old-key", None), 3600)
            .issue(id, now)
            .unwrap();
        let rotated = ConfirmationTokens::new(&Keyring::new(KEY, Some(b"old-key")), 3600);
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
            let tokens = ConfirmationTokens::new(&Keyring::new(b"key", None), 3600);
            prop_assert!(tokens.verify(&raw, Utc::now()).is_err());
            prop_assert!(tokens.verify(&parts, Utc::now()).is_err());
        }
    }
}
