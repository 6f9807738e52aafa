//! Confirmation: by the link's token, by the mail's code, and a fresh mail
//! on request.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::{refuse_nul_token, Context};
use super::registration::placeholder_account;
use super::{now, Accounts, CodeError, ServiceError};
use crate::auth::{ConfirmationCodes, StoredCode};
use crate::domain::{Account, Email};
use crate::mail::MailComposer;
use crate::storage::{CodeTry, OutboxMessage, StorageError};

impl Accounts {
    /// Verifies the account a confirmation token names.
    #[tracing::instrument(name = "confirm_registration", skip_all)]
    pub async fn confirm(&self, token: &str) -> Result<Account, ServiceError> {
        refuse_nul_token(token)?;
        let id = self
            .tokens
            .verify(token, Utc::now())
            .map_err(ServiceError::Token)?;
        let account = self
            .confirmations
            .call(id)
            .await
            .context("marking the account verified")?;
        self.metrics.confirmations.inc();
        tracing::info!(account_id = %account.id, "account confirmed");
        Ok(account)
    }

    /// Verifies the account of `email` with the code its confirmation mail
    /// carried. Every address costs the same: unknown ones, and ones without
    /// a code, answer as a wrong code does. Each try counts; after
    /// MAX_CODE_FAILURES wrong ones the code is burned.
    #[tracing::instrument(name = "confirm_code", skip_all)]
    pub async fn confirm_code(&self, email: &Email, code: &str) -> Result<Account, ServiceError> {
        let Some(code) = ConfirmationCodes::parse(code) else {
            return Err(ServiceError::Code(CodeError::Invalid));
        };
        let tried = self
            .storage
            .try_code(email.as_str())
            .await
            .context("counting a confirmation code try")?;
        let stored = match tried {
            CodeTry::Counted(stored) => stored,
            CodeTry::Burned | CodeTry::NoCode => {
                // The same hashing as a real comparison.
                let _ = self.codes.matches(Uuid::nil(), code, "");
                return Err(ServiceError::Code(if tried == CodeTry::Burned {
                    CodeError::Exhausted
                } else {
                    CodeError::Invalid
                }));
            }
        };
        if !self.codes.matches(stored.account_id, code, &stored.hmac) {
            return Err(ServiceError::Code(CodeError::Invalid));
        }
        if stored.expires_at <= Utc::now() {
            return Err(ServiceError::Code(CodeError::Expired));
        }
        self.storage
            .refund_code_try(stored.account_id)
            .await
            .context("taking back a right code's try")?;
        let account = self
            .confirmations
            .call(stored.account_id)
            .await
            .context("marking the account verified")?;
        self.metrics.confirmations.inc();
        tracing::info!(account_id = %account.id, "account confirmed by code");
        Ok(account)
    }

    /// Queues a fresh confirmation mail when `email` belongs to an unverified
    /// account; answers the same for unknown and verified addresses.
    ///
    /// Every case takes the same path, so the answer's timing reveals
    /// nothing: one lookup, one token and one rendering (of a mail that is
    /// thrown away unless it is for an unverified account), then one
    /// transaction that records the cooldown and queues the mail when there
    /// is one to queue.
    #[tracing::instrument(name = "resend_confirmation", skip_all)]
    pub async fn resend_confirmation(&self, email: &Email) -> Result<(), ServiceError> {
        let now = now();
        let (account, deliver) = match self.storage.account_by_email(email.as_str()).await {
            Ok(account) => {
                let deliver = !account.verified;
                (account, deliver)
            }
            Err(StorageError::NotFound) => (placeholder_account(email, now), false),
            Err(e) => return Err(e).context("looking the address up"),
        };
        let (mail, code) =
            self.confirmation_mail(&account, now, MailComposer::resent_confirmation)?;
        if let Some(wait) = self
            .queue_after_cooldown(
                email.as_str(),
                now,
                self.resend_cooldown,
                (&mail, Some(&code)),
                deliver,
            )
            .await?
        {
            return Err(ServiceError::CoolingDown(wait));
        }
        if deliver {
            tracing::info!(account_id = %account.id, "confirmation mail queued again");
        } else {
            tracing::debug!("confirmation mail not queued: no unverified account");
        }
        Ok(())
    }

    /// Records a request for `mail` under the cooldown `key` and queues the
    /// mail (and stores its confirmation code, if it has one) when `deliver`, in one transaction that does the same work
    /// either way. `Some(wait)` when the key asked less than `cooldown` ago.
    pub(super) async fn queue_after_cooldown(
        &self,
        key: &str,
        now: DateTime<Utc>,
        cooldown: std::time::Duration,
        (mail, code): (&OutboxMessage, Option<&StoredCode>),
        deliver: bool,
    ) -> Result<Option<std::time::Duration>, ServiceError> {
        let span = chrono::Duration::from_std(cooldown).map_err(|e| {
            ServiceError::Unexpected(anyhow::Error::new(e).context("a cooldown as a date offset"))
        })?;
        let claimed = self
            .storage
            .request_resend(key, now, now - span, mail, deliver, code)
            .await
            .context("recording the request")?;
        // The storage wakes the mail worker after every recorded request,
        // mail queued or not, so that the work a wake-up sets off does not
        // tell the cases apart.
        let Some(last) = claimed else {
            return Ok(None);
        };
        Ok(Some(
            (last + span - now)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(1)),
        ))
    }
}
