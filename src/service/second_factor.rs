//! Two-step sign-in: enrolment of an authenticator app, recovery codes, the
//! challenge between a right password and its code, and the code that
//! guards a change once two-step sign-in is on.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::error::{Context, SecondFactorError};
use super::sessions::SignedIn;
use super::{now, Accounts, Lookup, ServiceError};
use crate::auth::{qr_code_svg, ChallengeTokens, RecoveryCodes, SecretBox, TotpSecret};
use crate::domain::{Account, ClientInfo};
use crate::storage::{SecondFactorChange, StoredChallenge};

/// How long a sign-in challenge may wait for its code.
const CHALLENGE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);

/// What two-step sign-in is made of.
#[derive(Clone)]
pub struct SecondFactors {
    pub secrets: SecretBox,
    pub recovery: RecoveryCodes,
    pub challenges: ChallengeTokens,
    /// The issuer shown in authenticator apps (SITE_NAME).
    pub site_name: String,
}

/// A started enrolment: what the shopper's app needs.
pub struct TotpEnrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_code_svg: String,
}

/// The code given for a second factor.
#[derive(Debug, Clone, Copy)]
pub enum Factor<'a> {
    Totp(&'a str),
    Recovery(&'a str),
    /// A `code` field: six digits are an authenticator code, anything else
    /// a recovery code.
    Either(&'a str),
}

fn refused(e: SecondFactorError) -> ServiceError {
    ServiceError::SecondFactor(e)
}

impl Accounts {
    fn second_factors(&self) -> Result<&SecondFactors, ServiceError> {
        self.second_factors.as_ref().ok_or_else(|| {
            ServiceError::Unexpected(anyhow::anyhow!("two-step sign-in is not configured"))
        })
    }

    /// Begins an enrolment, given the current password (checked as
    /// ChangePassword checks it): a new secret replaces a pending one.
    #[tracing::instrument(name = "start_totp_enrollment", skip_all)]
    pub async fn start_totp_enrollment(
        &self,
        id: Uuid,
        password: SecretString,
    ) -> Result<TotpEnrollment, ServiceError> {
        let factors = self.second_factors()?;
        let (account, stored) = self.live_credentials(id).await?;
        let now = now();
        self.check_current_password(&account, password, &stored, now)
            .await?;
        if account.totp_enabled {
            return Err(refused(SecondFactorError::AlreadyEnabled));
        }
        let secret = TotpSecret::generate();
        let sealed = factors.secrets.seal(secret.expose(), id.as_bytes());
        let started = self
            .storage
            .start_second_factor(id, &sealed, now)
            .await
            .context("storing the pending secret")?;
        if !started {
            return Err(refused(SecondFactorError::AlreadyEnabled));
        }
        let otpauth_uri = secret.otpauth_uri(&factors.site_name, &account.email);
        let qr_code_svg = qr_code_svg(&otpauth_uri).map_err(ServiceError::Unexpected)?;
        tracing::info!(account_id = %id, "two-step sign-in enrolment started");
        Ok(TotpEnrollment {
            secret: secret.base32(),
            otpauth_uri,
            qr_code_svg,
        })
    }

    /// Turns two-step sign-in on with a right code for the pending secret;
    /// answers the recovery codes, shown this once.
    #[tracing::instrument(name = "confirm_totp_enrollment", skip_all)]
    pub async fn confirm_totp_enrollment(
        &self,
        id: Uuid,
        code: &str,
    ) -> Result<(Account, Vec<String>), ServiceError> {
        let factors = self.second_factors()?;
        let account = self.get(Lookup::Id(id)).await?;
        let stored = self
            .storage
            .second_factor(id)
            .await
            .context("reading the pending secret")?;
        let stored = match stored {
            None => return Err(refused(SecondFactorError::NotStarted)),
            Some(s) if s.enabled => return Err(refused(SecondFactorError::AlreadyEnabled)),
            Some(s) => s,
        };
        let now = now();
        let secret = self.open_secret(factors, id, &stored.sealed_secret)?;
        let Some(step) = secret.matching_step(code, now) else {
            return Err(refused(SecondFactorError::EnrollmentCodeInvalid));
        };
        let codes = factors.recovery.generate();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| factors.recovery.stored_hash(c))
            .collect();
        let notice = self
            .composer
            .second_factor_enabled(&account, now)
            .context("rendering the two-step sign-in notice")?;
        let change = SecondFactorChange {
            account_id: id,
            notice: &notice,
            now,
        };
        let account = self
            .storage
            .enable_second_factor(&change, step, &hashes)
            .await
            .context("turning two-step sign-in on")?
            .ok_or(refused(SecondFactorError::NotStarted))?;
        tracing::info!(account_id = %id, "two-step sign-in turned on");
        Ok((account, codes))
    }

    /// Turns two-step sign-in off, given the password and a code.
    #[tracing::instrument(name = "disable_totp", skip_all)]
    pub async fn disable_totp(
        &self,
        id: Uuid,
        password: SecretString,
        code: &str,
    ) -> Result<Account, ServiceError> {
        self.second_factors()?;
        let (account, stored) = self.live_credentials(id).await?;
        let now = now();
        self.check_current_password(&account, password, &stored, now)
            .await?;
        if !account.totp_enabled {
            return Err(refused(SecondFactorError::NotEnabled));
        }
        self.check_second_factor(&account, Factor::Either(code), now)
            .await?;
        let notice = self
            .composer
            .second_factor_disabled(&account, now)
            .context("rendering the two-step sign-in notice")?;
        let change = SecondFactorChange {
            account_id: id,
            notice: &notice,
            now,
        };
        let account = self
            .storage
            .disable_second_factor(&change)
            .await
            .context("turning two-step sign-in off")?
            .ok_or(refused(SecondFactorError::NotEnabled))?;
        tracing::info!(account_id = %id, "two-step sign-in turned off");
        Ok(account)
    }

    /// Replaces the recovery codes, given a code; the old ones stop working.
    #[tracing::instrument(name = "regenerate_recovery_codes", skip_all)]
    pub async fn regenerate_recovery_codes(
        &self,
        id: Uuid,
        code: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let factors = self.second_factors()?;
        let account = self.get(Lookup::Id(id)).await?;
        if !account.totp_enabled {
            return Err(refused(SecondFactorError::NotEnabled));
        }
        let now = now();
        self.check_second_factor(&account, Factor::Either(code), now)
            .await?;
        let codes = factors.recovery.generate();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| factors.recovery.stored_hash(c))
            .collect();
        self.storage
            .replace_recovery_codes(id, &hashes, now)
            .await
            .context("storing recovery codes")?;
        Ok(codes)
    }

    /// What a right password answers for an account with two-step sign-in
    /// on: a challenge bound to the password hash it matched, for
    /// CompleteSignIn.
    pub(super) async fn second_factor_required(
        &self,
        account: &Account,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> ServiceError {
        let factors = match self.second_factors() {
            Ok(factors) => factors,
            Err(e) => return e,
        };
        let challenge = factors.challenges.generate();
        let stored = StoredChallenge {
            account_id: account.id,
            binding: factors.challenges.binding(password_hash),
            expires_at: now + chrono::Duration::from_std(CHALLENGE_LIFETIME).unwrap_or_default(),
            used: false,
        };
        match self
            .storage
            .create_challenge(&factors.challenges.stored_hash(&challenge), &stored)
            .await
            .context("storing the sign-in challenge")
        {
            Ok(()) => ServiceError::SecondFactorRequired(Some(challenge)),
            Err(e) => e,
        }
    }

    /// Completes a sign-in with the challenge of its right password and a
    /// code, and starts the session.
    #[tracing::instrument(name = "complete_sign_in", skip_all)]
    pub async fn complete_sign_in(
        &self,
        challenge: &str,
        factor: Factor<'_>,
        client: ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        let factors = self.second_factors()?;
        let invalid = || refused(SecondFactorError::ChallengeInvalid);
        let hashes = factors
            .challenges
            .lookup_hashes(challenge)
            .ok_or_else(invalid)?;
        let stored = self
            .storage
            .challenge(&hashes)
            .await
            .context("reading the sign-in challenge")?
            .filter(|c| !c.used)
            .ok_or_else(invalid)?;
        let now = now();
        if stored.expires_at <= now {
            return Err(refused(SecondFactorError::ChallengeExpired));
        }
        // The password it was issued for must still be the account's, and
        // two-step sign-in still on.
        let (account, hash) = self
            .storage
            .credentials_by_id(stored.account_id)
            .await
            .context("reading the account")?
            .filter(|(account, hash)| {
                account.totp_enabled && factors.challenges.binding_matches(hash, &stored.binding)
            })
            .ok_or_else(invalid)?;
        drop(hash);
        // Claimed before the code is checked: of concurrent completions of
        // one challenge only one goes on, so none other uses up a recovery
        // code for nothing. A refused code gives the claim back, for
        // another try within the challenge's life.
        if !self
            .storage
            .use_challenge(&hashes, now)
            .await
            .context("using the sign-in challenge")?
        {
            return Err(invalid());
        }
        if let Err(refusal) = self.check_second_factor(&account, factor, now).await {
            if let Err(e) = self.storage.release_challenge(&hashes, now).await {
                tracing::warn!(
                    error = %crate::telemetry::error_chain(&e),
                    "cannot give a sign-in challenge back; the shopper signs in again"
                );
            }
            return Err(refusal);
        }
        self.start_session(account, client, true, None).await
    }

    /// Checks the code of a second factor as a password is checked: reserved
    /// first, refused while the address is locked out, and a wrong one
    /// counts towards the lockout. A right one is used up.
    pub(super) async fn check_second_factor(
        &self,
        account: &Account,
        factor: Factor<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let address = account.email.as_str();
        self.reserve_check(address, now).await?;
        let matched = match self.factor_matches(account, factor, now).await {
            Ok(matched) => matched,
            Err(e) => return Err(self.check_abandoned(address, now, e).await),
        };
        if matched {
            self.storage
                .release_login_attempt(address, now, true)
                .await?;
            return Ok(());
        }
        match self.sign_in_failed(address, now).await {
            ServiceError::InvalidCredentials => Err(refused(SecondFactorError::Invalid)),
            other => Err(other),
        }
    }

    /// The code a guarded change carries, once two-step sign-in is on:
    /// required, and checked.
    pub(super) async fn guard_with_second_factor(
        &self,
        account: &Account,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        if !account.totp_enabled {
            return Ok(());
        }
        if code.trim().is_empty() {
            return Err(ServiceError::SecondFactorRequired(None));
        }
        self.check_second_factor(account, Factor::Either(code), now)
            .await
    }

    /// Whether `factor` is right for the account, using it up if so.
    async fn factor_matches(
        &self,
        account: &Account,
        factor: Factor<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        let factors = self.second_factors()?;
        let code = match factor {
            Factor::Either(code) if is_totp_code(code) => Factor::Totp(code),
            Factor::Either(code) => Factor::Recovery(code),
            other => other,
        };
        match code {
            Factor::Totp(code) | Factor::Either(code) => {
                let stored = self
                    .storage
                    .second_factor(account.id)
                    .await
                    .context("reading the secret")?;
                let Some(stored) = stored.filter(|s| s.enabled) else {
                    return Ok(false);
                };
                let secret = self.open_secret(factors, account.id, &stored.sealed_secret)?;
                let Some(step) = secret.matching_step(code, now) else {
                    return Ok(false);
                };
                self.storage
                    .use_totp_step(account.id, step)
                    .await
                    .context("using the code")
            }
            Factor::Recovery(code) => {
                let Some(hashes) = factors.recovery.lookup_hashes(code) else {
                    return Ok(false);
                };
                let unused = self
                    .storage
                    .unused_recovery_codes(account.id)
                    .await
                    .context("counting recovery codes")?;
                let notice = self
                    .composer
                    .recovery_code_used(
                        account,
                        usize::try_from(unused.saturating_sub(1)).unwrap_or(0),
                        now,
                    )
                    .context("rendering the recovery code notice")?;
                self.storage
                    .use_recovery_code(account.id, &hashes, &notice, now)
                    .await
                    .context("using the recovery code")
            }
        }
    }

    /// Opens a sealed secret; one sealed under the previous key is sealed
    /// again under the current one.
    fn open_secret(
        &self,
        factors: &SecondFactors,
        id: Uuid,
        sealed: &str,
    ) -> Result<TotpSecret, ServiceError> {
        let opened = factors.secrets.open(sealed, id.as_bytes()).map_err(|e| {
            ServiceError::Unexpected(anyhow::Error::new(e).context("opening a TOTP secret"))
        })?;
        if opened.stale {
            let resealed = factors.secrets.seal(&opened.plaintext, id.as_bytes());
            let storage = std::sync::Arc::clone(&self.storage);
            let old = sealed.to_owned();
            // Sealing again is a chore, not part of the answer.
            tokio::spawn(async move {
                if let Err(e) = storage.reseal_second_factor(id, &old, &resealed).await {
                    tracing::warn!(error = %e, "a TOTP secret was not sealed again");
                }
            });
        }
        Ok(TotpSecret::from_bytes(opened.plaintext))
    }
}

/// Six ASCII digits, white space around them ignored.
fn is_totp_code(code: &str) -> bool {
    let code = code.trim();
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}
