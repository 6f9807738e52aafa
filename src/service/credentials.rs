//! Password checks: sign-in, and the current password that guards a change,
//! under one lockout that every instance shares.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::error::Context;
use super::registration::placeholder_account;
use super::{now, Accounts, ServiceError, SAME_PASSWORD};
use crate::auth::{PasswordHash, ResetTokens, TokenError};
use crate::domain::{Account, Email, Password, ValidationErrors};
use crate::storage::{LoginReservation, PasswordReplacement, StorageError};
use uuid::Uuid;

/// A reservation older than this was left by an instance that died between
/// reserving and answering: no check takes a minute.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Reservations made before this are taken for abandoned.
fn stale_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or_default()
}

/// A password that matched its account's stored hash, its check still
/// reserved.
pub(super) struct Matched {
    pub(super) account: Account,
    stored: String,
    /// A hash with the current parameters, to store in place of `stored`.
    upgrade: Option<PasswordHash>,
}

impl Matched {
    /// Whether giving the check back is all that remains: no hash to
    /// upgrade, a verified account, no second factor to ask for.
    pub(super) fn settles_plainly(&self) -> bool {
        self.upgrade.is_none() && self.account.verified && !self.account.totp_enabled
    }
}

impl Accounts {
    /// Checks a shopper's password at sign-in.
    ///
    /// A wrong password and an unknown address cost the same (the address is
    /// checked against a dummy hash), answer the same, and answer no sooner
    /// than the failure floor, so that an imported account's slower hash
    /// does not set it apart. Every check is reserved in the database before
    /// it is computed; past `max_failures` the address is locked out,
    /// without any hashing, for a lockout that doubles each time. A match on
    /// a hash with other parameters (or from the Django app) stores a
    /// current argon2id hash. Only once the password matched is an
    /// unverified account told apart.
    #[tracing::instrument(name = "check_password", skip_all)]
    pub async fn check_password(
        &self,
        email: &Email,
        password: SecretString,
    ) -> Result<Account, ServiceError> {
        let now = Utc::now();
        let matched = self.match_password(email, password, now).await?;
        self.settle_check(email.as_str(), now, matched).await
    }

    /// The computing half of [`Accounts::check_password`]: reserved, read
    /// and checked in the hashing pool. A wrong password or an unknown
    /// address is counted and answered here, after the failure floor; a
    /// match comes back with its reservation still held.
    pub(super) async fn match_password(
        &self,
        email: &Email,
        password: SecretString,
        now: DateTime<Utc>,
    ) -> Result<Matched, ServiceError> {
        let started = Instant::now();
        let address = email.as_str();
        let stale = stale_before(now);
        let (reservation, found) = self
            .storage
            .reserve_and_read(address, now, self.sign_in.max_failures, stale)
            .await?;
        self.refuse_unless_reserved(reservation, now)?;
        let verified = match self
            .hasher
            .verify(password, found.as_ref().map(|(_, hash)| hash.as_str()))
            .await
        {
            Ok(verified) => verified,
            Err(e) => return Err(self.check_abandoned(address, now, e.into()).await),
        };
        match found {
            Some((account, stored)) if verified.matched => Ok(Matched {
                account,
                stored,
                upgrade: verified.upgrade,
            }),
            found => {
                let failed = self.sign_in_failed(address, now).await;
                let took = started.elapsed();
                // A slow hash of an older kind lifts the floor for everyone;
                // this service's own hashes and the dummy never do, so a
                // busy moment cannot ratchet it up.
                if found.is_some_and(|(_, stored)| !stored.starts_with("$argon2")) {
                    self.failure_floor.raise_to(took);
                }
                tokio::time::sleep(self.failure_floor.get().saturating_sub(took)).await;
                Err(failed)
            }
        }
    }

    /// Gives a matched check back and answers it: its hash upgraded, then an
    /// unverified account or one with two-step sign-in told apart.
    pub(super) async fn settle_check(
        &self,
        address: &str,
        now: DateTime<Utc>,
        matched: Matched,
    ) -> Result<Account, ServiceError> {
        let Matched {
            account,
            stored,
            upgrade,
        } = matched;
        // With two-step sign-in on, the password alone signs no one in: its
        // failures stay counted until the code completes the sign-in.
        let forget = !account.totp_enabled;
        self.storage
            .release_login_attempt(address, now, forget)
            .await?;
        let mut current_hash = stored;
        if let Some(upgrade) = upgrade {
            let replaced = self
                .storage
                .replace_password_hash(account.id, &current_hash, &upgrade)
                .await?;
            if replaced {
                tracing::info!(account_id = %account.id, "password hash upgraded to the current parameters");
                upgrade.expose().clone_into(&mut current_hash);
            }
        }
        if !account.verified {
            return Err(ServiceError::EmailNotVerified);
        }
        if account.totp_enabled {
            return Err(self
                .second_factor_required(&account, &current_hash, now)
                .await);
        }
        Ok(account)
    }

    /// Reserves one password check of `address` before any hashing: the
    /// database decides, so however many checks race, on however many
    /// instances, at most `max_failures` run before the lockout; the rest
    /// answer LOGIN_LOCKED without a hash.
    pub(super) async fn reserve_check(
        &self,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let reservation = self
            .storage
            .reserve_login_attempt(address, now, self.sign_in.max_failures, stale_before(now))
            .await?;
        self.refuse_unless_reserved(reservation, now)
    }

    /// LOGIN_LOCKED, with the time to wait, unless the check was reserved.
    fn refuse_unless_reserved(
        &self,
        reservation: LoginReservation,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        match reservation {
            LoginReservation::Reserved => Ok(()),
            LoginReservation::Refused {
                locked_until,
                lockouts,
            } => {
                let wait = match locked_until {
                    Some(until) if until > now => (until - now).to_std().unwrap_or_default(),
                    // The slots are held by checks under way: the lockout
                    // they are about to start.
                    _ => self.sign_in.lockout_after(lockouts),
                };
                Err(ServiceError::LockedOut(wait))
            }
        }
    }

    /// A reserved check that could not be made (the database or the hashing
    /// pool failed): its reservation is given back, and `error` answered.
    pub(super) async fn check_abandoned(
        &self,
        address: &str,
        now: DateTime<Utc>,
        error: ServiceError,
    ) -> ServiceError {
        // Nothing was checked: the failures on record stay, so that making
        // checks fail (a full hashing queue) cannot wipe them.
        if let Err(e) = self
            .storage
            .release_login_attempt(address, now, false)
            .await
        {
            tracing::warn!(error = %e, "a password check's reservation was not given back");
        }
        error
    }

    /// Checks a password an account holder typed against `stored`, as a
    /// sign-in would: reserved first, refused while the address is locked
    /// out, and a wrong one counts towards the lockout. With two-step
    /// sign-in on, a right one forgets no failure: only a right code does,
    /// so a known password cannot wipe the count of guessed codes.
    pub(super) async fn check_current_password(
        &self,
        account: &Account,
        password: SecretString,
        stored: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let address = account.email.as_str();
        self.reserve_check(address, now).await?;
        let verified = match self.hasher.verify(password, Some(stored)).await {
            Ok(verified) => verified,
            Err(e) => return Err(self.check_abandoned(address, now, e.into()).await),
        };
        if verified.matched {
            self.storage
                .release_login_attempt(address, now, !account.totp_enabled)
                .await?;
            Ok(())
        } else {
            Err(self.sign_in_failed(address, now).await)
        }
    }

    /// Turns the reservation of `address` into a failure, locks it out once
    /// it reaches LOGIN_MAX_FAILURES, and returns the error to answer.
    pub(super) async fn sign_in_failed(&self, address: &str, now: DateTime<Utc>) -> ServiceError {
        let counted = async {
            let (failures, lockouts) = self.storage.record_login_failure(address, now).await?;
            if failures >= i64::from(self.sign_in.max_failures) {
                let lockout = self.sign_in.lockout_after(lockouts);
                // From now, not from the call's start: the check took time.
                let now = Utc::now();
                let until =
                    now + chrono::Duration::from_std(lockout).unwrap_or(chrono::Duration::hours(1));
                self.storage
                    .lock_login(address, self.sign_in.max_failures, until)
                    .await?;
                tracing::warn!(
                    lockout_secs = lockout.as_secs(),
                    "sign-in locked out after repeated failures"
                );
            }
            Ok::<(), StorageError>(())
        };
        match counted.await {
            Ok(()) => ServiceError::InvalidCredentials,
            Err(e) => e.into(),
        }
    }

    /// Queues a password reset mail when the address has an account. Every
    /// valid address gets the same answer after the same work, and the same
    /// cooldown (RESOURCE_EXHAUSTED with the time to wait).
    #[tracing::instrument(name = "request_password_reset", skip_all)]
    pub async fn request_password_reset(&self, email: &Email) -> Result<(), ServiceError> {
        let resets = self.resets()?;
        let now = now();
        let found = self
            .storage
            .credentials_by_email(email.as_str())
            .await
            .context("looking the address up")?;
        let deliver = found.is_some();
        let (account, hash) =
            found.unwrap_or_else(|| (placeholder_account(email, now), String::new()));
        let token = resets
            .tokens
            .issue(account.id, &credential_binding(&account.email, &hash), now)
            .map_err(|e| ServiceError::Unexpected(e.context("signing a password reset token")))?;
        let mail = self
            .composer
            .password_reset(&account, &token, now)
            .context("rendering the password reset mail")?;
        let key = reset_cooldown_key(email);
        if let Some(wait) = self
            .queue_after_cooldown(&key, now, resets.cooldown, (&mail, None), deliver)
            .await?
        {
            return Err(ServiceError::ResetCoolingDown(wait));
        }
        if deliver {
            tracing::info!(account_id = %account.id, "password reset mail queued");
        }
        Ok(())
    }

    /// The account a reset token may reset, if the token is genuine,
    /// unexpired and its password unchanged since it was issued. Reads only:
    /// the sidecar's link calls it for mail scanners and shoppers alike.
    pub async fn check_reset_token(&self, token: &str) -> Result<(Account, String), ServiceError> {
        let resets = self.resets()?;
        let claim = resets
            .tokens
            .verify(token, Utc::now())
            .map_err(ServiceError::ResetToken)?;
        let found = self
            .storage
            .credentials_by_id(claim.account_id)
            .await
            .context("reading the account to reset")?;
        match found {
            Some((account, hash))
                if resets
                    .tokens
                    .binds(&claim, &credential_binding(&account.email, &hash)) =>
            {
                Ok((account, hash))
            }
            _ => Err(ServiceError::ResetToken(TokenError::Invalid)),
        }
    }

    /// Sets a new password with a reset token: the new hash is stored, the
    /// account becomes verified (the mailbox was proven), its lockout is
    /// cleared and a "password changed" notice is queued, in one
    /// transaction. The token stops working with it.
    #[tracing::instrument(name = "reset_password", skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        password: Password,
    ) -> Result<Account, ServiceError> {
        let (account, old) = self.check_reset_token(token).await?;
        let changed = self
            .store_new_password(&account, &old, password, now(), true, None)
            .await?;
        // Another reset or change won the race: this token is spent.
        let account = changed.ok_or(ServiceError::ResetToken(TokenError::Invalid))?;
        tracing::info!(account_id = %account.id, "password reset");
        Ok(account)
    }

    /// Hashes `password` and stores it in place of `old`, with the
    /// "password changed" notice, in one transaction; `verify` also marks
    /// the account verified. `None` when the hash had changed meanwhile.
    async fn store_new_password(
        &self,
        account: &Account,
        old: &str,
        password: Password,
        now: DateTime<Utc>,
        verify: bool,
        keep_session: Option<Uuid>,
    ) -> Result<Option<Account>, ServiceError> {
        let new = self.hasher.hash(password).await?;
        let notice = self
            .composer
            .password_changed(account, now)
            .context("rendering the password changed notice")?;
        let change = PasswordReplacement {
            account,
            old,
            new: &new,
            now,
            verify,
            notice: &notice,
            keep_session,
        };
        self.storage
            .replace_password(&change)
            .await
            .context("storing the new password")
    }

    /// Changes a password, given the current one. A wrong current password
    /// counts towards the sign-in lockout; success queues a "password
    /// changed" notice, ends every reset link issued before and every
    /// session but `keep_session`.
    #[tracing::instrument(name = "change_password", skip_all)]
    pub async fn change_password(
        &self,
        id: Uuid,
        current: SecretString,
        new: Password,
        keep_session: Option<Uuid>,
    ) -> Result<Account, ServiceError> {
        use secrecy::ExposeSecret;
        if current.expose_secret() == new.expose() {
            return Err(ServiceError::Invalid(ValidationErrors::single(
                "password",
                SAME_PASSWORD,
            )));
        }
        let (account, stored) = self.live_credentials(id).await?;
        let now = now();
        self.check_current_password(&account, current, &stored, now)
            .await?;
        let changed = self
            .store_new_password(&account, &stored, new, now, false, keep_session)
            .await?;
        // Changed meanwhile by another call: the current password was not current.
        let account = changed.ok_or(ServiceError::InvalidCredentials)?;
        tracing::info!(account_id = %account.id, "password changed");
        Ok(account)
    }
}

/// How password resets are issued: their tokens and how often an address
/// may ask for one.
#[derive(Clone)]
pub struct PasswordResets {
    pub tokens: ResetTokens,
    pub cooldown: std::time::Duration,
}

/// The key under which a password reset request's cooldown is kept, beside
/// the confirmation mail cooldowns (keyed by the bare address).
fn reset_cooldown_key(email: &Email) -> String {
    format!("password-reset:{}", email.as_str())
}

/// What reset and e-mail change tokens are bound to: the password hash and
/// the address, so that they stop working when either changes.
pub(super) fn credential_binding(email: &str, hash: &str) -> String {
    format!("{email}\n{hash}")
}
