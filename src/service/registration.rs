//! Registration: a new account and its welcome mail, or the quiet answer
//! to a taken address.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::Context;
use super::{now, Accounts, RenderConfirmation, ServiceError};
use crate::auth::StoredCode;
use crate::domain::{Account, Email, NewAccount};
use crate::mail::MailComposer;
use crate::storage::{OutboxMessage, StorageError};

/// The public fields of a registration, echoed back by a quiet answer.
struct NewAccountView {
    email: String,
    username: String,
    first_name: String,
    last_name: String,
    phone_number: String,
    address: String,
    term_and_condition: bool,
    created_from: String,
    locale: String,
}

impl From<NewAccount> for NewAccountView {
    fn from(n: NewAccount) -> Self {
        NewAccountView {
            email: n.email.into_string(),
            username: n.username,
            first_name: n.first_name,
            last_name: n.last_name,
            phone_number: n.phone_number,
            address: n.address,
            term_and_condition: n.term_and_condition,
            created_from: n.created_from,
            locale: n.locale,
        }
    }
}

impl NewAccountView {
    /// A new, unverified account with these fields.
    fn into_account(self, id: Uuid, now: DateTime<Utc>) -> Account {
        Account {
            id,
            email: self.email,
            username: self.username,
            first_name: self.first_name,
            last_name: self.last_name,
            phone_number: self.phone_number,
            address: self.address,
            verified: false,
            term_and_condition: self.term_and_condition,
            created_from: self.created_from,
            locale: self.locale,
            created_at: now,
            updated_at: now,
            totp_enabled: false,
            image: None,
        }
    }
}

fn new_account_of(a: &Account) -> NewAccountView {
    NewAccountView {
        email: a.email.clone(),
        username: a.username.clone(),
        first_name: a.first_name.clone(),
        last_name: a.last_name.clone(),
        phone_number: a.phone_number.clone(),
        address: a.address.clone(),
        term_and_condition: a.term_and_condition,
        created_from: a.created_from.clone(),
        locale: a.locale.clone(),
    }
}

/// Stands in for a missing account so that an unknown address costs what a
/// known one does; nothing made from it is stored or sent.
pub(super) fn placeholder_account(email: &Email, now: DateTime<Utc>) -> Account {
    NewAccountView {
        email: email.as_str().to_owned(),
        username: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        phone_number: String::new(),
        address: String::new(),
        term_and_condition: false,
        created_from: String::new(),
        locale: String::new(),
    }
    .into_account(Uuid::nil(), now)
}

impl Accounts {
    /// Stores an unverified account and queues its welcome mail.
    #[tracing::instrument(name = "register", skip_all)]
    pub async fn register(&self, new: NewAccount) -> Result<Account, ServiceError> {
        // Spares the ~20 ms hash for the common duplicate (unless protection
        // must spend it anyway); the unique index below still decides races.
        match self.storage.account_by_email(new.email.as_str()).await {
            Ok(existing) if self.enumeration_protection => {
                let _ = self
                    .hasher
                    .hash(new.password.clone())
                    .await
                    .context("hashing the password")?;
                return self.answer_taken_address(new.into(), existing).await;
            }
            Ok(_) => return Err(ServiceError::EmailTaken),
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e).context("looking the address up"),
        }
        let hash = self
            .hasher
            .hash(new.password.clone())
            .await
            .context("hashing the password")?;

        let now = now();
        let account = NewAccountView::from(new).into_account(Uuid::now_v7(), now);
        let (mail, code) = self.confirmation_mail(&account, now, MailComposer::welcome)?;
        match self
            .storage
            .create_account(&account, &hash, &mail, &code)
            .await
        {
            Ok(()) => {}
            Err(StorageError::Conflict) if self.enumeration_protection => {
                let existing = self
                    .storage
                    .account_by_email(&account.email)
                    .await
                    .context("reading the account that took the address")?;
                return self
                    .answer_taken_address(new_account_of(&account), existing)
                    .await;
            }
            Err(e) => return Err(e).context("storing the account and its welcome mail"),
        }
        self.metrics.registrations.inc();
        tracing::info!(account_id = %account.id, "account registered");
        Ok(account)
    }

    /// A mail carrying a fresh confirmation link for `account`, rendered by
    /// `render` (the welcome mail, or a resent confirmation).
    pub(super) fn confirmation_mail(
        &self,
        account: &Account,
        now: DateTime<Utc>,
        render: RenderConfirmation,
    ) -> Result<(OutboxMessage, StoredCode), ServiceError> {
        let token = self
            .tokens
            .issue(account.id, now)
            .map_err(|e| ServiceError::Unexpected(e.context("signing a confirmation token")))?;
        let (code, stored) = self.codes.issue(account.id, now);
        let mail = render(&self.composer, account, &token, &code, now)
            .context("rendering a confirmation mail")?;
        Ok((mail, stored))
    }

    /// The quiet answer to a taken address: the owner is told by mail, and
    /// the caller gets what a new registration would have returned.
    async fn answer_taken_address(
        &self,
        new: NewAccountView,
        existing: Account,
    ) -> Result<Account, ServiceError> {
        let now = now();
        let notice = self
            .composer
            .account_exists(&existing, now)
            .context("rendering the account-exists notice")?;
        self.storage
            .queue_mail(&notice)
            .await
            .context("queueing the account-exists notice")?;
        tracing::info!("registration for a taken address answered quietly");
        Ok(new.into_account(Uuid::now_v7(), now))
    }
}
