//! The rest of an account's life: profile and address changes, deletion,
//! the admin listing and the event stream.

use std::collections::HashSet;

use chrono::Utc;
use secrecy::SecretString;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::credentials::credential_binding;
use super::error::{refuse_nul_token, Context};
use super::{now, Accounts, Lookup, ServiceError};
use crate::domain::{
    self, Account, Email, EventType, FieldViolation, ProfileChanges, ValidationErrors,
};
use crate::events::{Cursor, CursorError, Refused, WatchItem};
use crate::storage::{AccountFilter, StorageError};

/// ListAccounts' page size when the request gives none, and its largest.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// Message for a new address equal to the current one.
pub const SAME_EMAIL: &str = "The new e-mail address must differ from the current one.";
/// Message for a page token this service did not issue for these filters.
pub const INVALID_PAGE_TOKEN: &str =
    "Invalid page token: pass next_page_token of the previous page, with the same filters.";
/// Message for a cursor that is not one of this service's.
pub const INVALID_CURSOR: &str = "Invalid cursor: pass the cursor of an event from this stream.";

/// A ListAccounts request as parsed: filters, where to start, how many.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: AccountFilter,
    pub after: Option<Uuid>,
    pub page_size: u32,
}

/// A page of accounts, and the token of the next one (empty on the last).
pub struct AccountPage {
    pub accounts: Vec<Account>,
    pub next_page_token: String,
}

impl Accounts {
    fn email_changes(&self) -> Result<&crate::auth::EmailChangeTokens, ServiceError> {
        self.email_changes.as_ref().ok_or_else(|| {
            ServiceError::Unexpected(anyhow::anyhow!("e-mail changes are not configured"))
        })
    }

    /// Parses ListAccounts' fields; the page token must be one this service
    /// issued for the same filters.
    pub fn parse_list_query(
        &self,
        page_size: i32,
        page_token: &str,
        email_prefix: &str,
        verified: Option<bool>,
    ) -> Result<ListQuery, ValidationErrors> {
        let mut errors = ValidationErrors(Vec::new());
        let page_size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                errors.0.push(FieldViolation {
                    field: "page_size",
                    description: "Ensure this value is greater than or equal to 0.".to_owned(),
                });
                0
            }
            n => u32::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
        };
        let prefix = email_prefix.trim();
        if domain::has_nul(prefix) {
            errors.0.push(FieldViolation {
                field: "email_prefix",
                description: domain::NULL_CHARACTERS.to_owned(),
            });
        } else if domain::char_len(prefix) > domain::EMAIL_MAX_CHARS {
            errors.0.push(FieldViolation {
                field: "email_prefix",
                description: domain::too_long(domain::EMAIL_MAX_CHARS),
            });
        }
        let filter = AccountFilter {
            email_prefix: prefix.to_lowercase(),
            verified,
        };
        let after = match page_token.trim() {
            "" => None,
            token => match self.pages.open(token, &filter) {
                Some(after) => Some(after),
                None => {
                    errors.0.push(FieldViolation {
                        field: "page_token",
                        description: INVALID_PAGE_TOKEN.to_owned(),
                    });
                    None
                }
            },
        };
        if errors.0.is_empty() {
            Ok(ListQuery {
                filter,
                after,
                page_size,
            })
        } else {
            Err(errors)
        }
    }

    /// One page of live accounts in id order.
    #[tracing::instrument(name = "list_accounts", skip_all)]
    pub async fn list(&self, query: ListQuery) -> Result<AccountPage, ServiceError> {
        let mut accounts = self
            .storage
            .list_accounts(query.after, query.page_size + 1, &query.filter)
            .await
            .context("listing accounts")?;
        let more = accounts.len() > query.page_size as usize;
        accounts.truncate(query.page_size as usize);
        let next_page_token = match accounts.last() {
            Some(last) if more => self.pages.seal(last.id, &query.filter),
            _ => String::new(),
        };
        Ok(AccountPage {
            accounts,
            next_page_token,
        })
    }

    /// Changes the profile fields `changes` names. Nothing changed: the
    /// account as it is, with no event.
    #[tracing::instrument(name = "update_profile", skip_all)]
    pub async fn update_profile(
        &self,
        id: Uuid,
        changes: ProfileChanges,
    ) -> Result<Account, ServiceError> {
        if changes.is_empty() {
            return self.get(Lookup::Id(id)).await;
        }
        let updated = self
            .storage
            .update_profile(id, &changes, now())
            .await
            .context("updating the profile")?;
        match updated {
            Some(account) => {
                tracing::info!(account_id = %account.id, "profile updated");
                Ok(account)
            }
            None => self.get(Lookup::Id(id)).await,
        }
    }

    /// Starts moving an account to `new_email`, given its password.
    ///
    /// The new address gets a link (or, when another account has it, that
    /// account's owner gets a notice instead, after the same work), and the
    /// current address a notice naming the new one masked: the answer is
    /// the same either way.
    #[tracing::instrument(name = "change_email", skip_all)]
    pub async fn change_email(
        &self,
        id: Uuid,
        new_email: &Email,
        password: SecretString,
        code: &str,
    ) -> Result<(), ServiceError> {
        let tokens = self.email_changes()?;
        let (account, stored) = self.live_credentials(id).await?;
        if account.email == new_email.as_str() {
            return Err(ServiceError::Invalid(ValidationErrors::single(
                "new_email",
                SAME_EMAIL,
            )));
        }
        let now = now();
        self.check_current_password(&account, password, &stored, now)
            .await?;
        // Only the proven owner of an address may move it: a link parked on
        // an unconfirmed account would outlive the real owner's recovery.
        if !account.verified {
            return Err(ServiceError::EmailNotVerified);
        }
        self.guard_with_second_factor(&account, code, now).await?;
        let owner = match self.storage.account_by_email(new_email.as_str()).await {
            Ok(owner) => Some(owner),
            Err(StorageError::NotFound) => None,
            Err(e) => return Err(e).context("looking the new address up"),
        };

        let token = tokens
            .issue(
                account.id,
                &credential_binding(&account.email, &stored),
                new_email.as_str(),
                now,
            )
            .map_err(|e| ServiceError::Unexpected(e.context("signing an e-mail change token")))?;
        let link = self
            .composer
            .email_change_confirmation(&account, new_email.as_str(), &token, now)
            .context("rendering e-mail change mail")?;
        // Both are rendered whichever is sent, so that a taken address
        // costs what a free one does.
        let placeholder;
        let notice = self
            .composer
            .account_exists(
                match &owner {
                    Some(owner) => owner,
                    None => {
                        placeholder = Account {
                            email: new_email.as_str().to_owned(),
                            ..account.clone()
                        };
                        &placeholder
                    }
                },
                now,
            )
            .context("rendering e-mail change mail")?;
        let to_new = if owner.is_some() { notice } else { link };
        let to_old = self
            .composer
            .email_change_requested(&account, new_email.as_str(), now)
            .context("rendering e-mail change mail")?;
        self.storage
            .queue_mails(&[&to_old, &to_new])
            .await
            .context("queueing the e-mail change mail")?;
        tracing::info!(account_id = %account.id, "e-mail change requested");
        Ok(())
    }

    /// Moves the account a change token names to its new address.
    /// Following the link again answers the account as it is.
    #[tracing::instrument(name = "confirm_email_change", skip_all)]
    pub async fn confirm_email_change(&self, token: &str) -> Result<Account, ServiceError> {
        refuse_nul_token(token)?;
        let tokens = self.email_changes()?;
        let claim = tokens
            .verify(token, Utc::now())
            .map_err(ServiceError::Token)?;
        let (account, stored) = self.live_credentials(claim.account_id).await?;
        if account.email == claim.new_email {
            return Ok(account);
        }
        if !tokens.binds(&claim, &credential_binding(&account.email, &stored)) {
            return Err(ServiceError::Token(crate::auth::TokenError::Invalid));
        }
        let changed = self
            .storage
            .change_email(account.id, &account.email, &stored, &claim.new_email, now())
            .await
            .context("changing the address")?;
        match changed {
            Some(account) => {
                tracing::info!(account_id = %account.id, "e-mail address changed");
                Ok(account)
            }
            // Changed meanwhile: by this very link (idempotent), or otherwise.
            None => {
                let account = self
                    .storage
                    .account_by_id(claim.account_id)
                    .await
                    .context("reading the account")?;
                if account.email == claim.new_email {
                    Ok(account)
                } else {
                    Err(ServiceError::Token(crate::auth::TokenError::Invalid))
                }
            }
        }
    }

    /// Deletes an account: with its password, or without when `password`
    /// is `None` (a caller with `accounts:admin`). Deleting a deleted
    /// account succeeds again.
    #[tracing::instrument(name = "delete_account", skip_all)]
    pub async fn delete_account(
        &self,
        id: Uuid,
        password: Option<SecretString>,
        code: &str,
    ) -> Result<(), ServiceError> {
        let found = self
            .storage
            .credentials_by_id(id)
            .await
            .context("reading the account")?;
        let Some((account, stored)) = found else {
            return if self.storage.is_tombstone(id).await? {
                Ok(())
            } else {
                Err(ServiceError::NotFound)
            };
        };
        let now = now();
        // Without a password (an admin), whatever the hash is now; with one,
        // the hash it was checked against.
        let expected = match password {
            Some(password) => {
                self.check_current_password(&account, password, &stored, now)
                    .await?;
                self.guard_with_second_factor(&account, code, now).await?;
                Some(stored.as_str())
            }
            None => None,
        };
        let goodbye = self
            .composer
            .account_deleted(&account, now)
            .context("rendering the goodbye notice")?;
        let deleted = self
            .storage
            .delete_account(id, &account.email, expected, &goodbye, now)
            .await
            .context("erasing the account")?;
        if !deleted {
            // Deleted meanwhile (fine), or its password changed (the one
            // checked is no longer current).
            return if self.storage.is_tombstone(id).await? {
                Ok(())
            } else {
                Err(ServiceError::InvalidCredentials)
            };
        }
        tracing::info!(account_id = %id, "account deleted and erased");
        if let Some(images) = &self.profile_images {
            // The image's objects were queued with the erasure.
            images.deletions().notify_one();
        }
        Ok(())
    }

    /// Starts streaming events after `after_cursor` (empty: from the oldest
    /// retained one), of `types` (all when empty).
    pub fn watch_events(
        &self,
        after_cursor: &str,
        types: HashSet<EventType>,
    ) -> Result<mpsc::Receiver<WatchItem>, ServiceError> {
        let cursor = Cursor::parse(after_cursor).map_err(|_| {
            ServiceError::Invalid(ValidationErrors::single("after_cursor", INVALID_CURSOR))
        })?;
        self.events.check(cursor, Utc::now()).map_err(|e| match e {
            CursorError::Expired => ServiceError::CursorExpired,
            CursorError::Malformed => {
                ServiceError::Invalid(ValidationErrors::single("after_cursor", INVALID_CURSOR))
            }
        })?;
        self.events
            .watch(cursor, types)
            .map_err(|refused| match refused {
                Refused::Full => ServiceError::Busy,
                Refused::Closing => ServiceError::ShuttingDown,
            })
    }
}
