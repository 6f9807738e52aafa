//! Looking an account up, by id (batched) or by address.

use uuid::Uuid;

use super::error::Context;
use super::{Accounts, Lookup, ServiceError};
use crate::domain::Account;

impl Accounts {
    pub async fn get(&self, lookup: Lookup) -> Result<Account, ServiceError> {
        match lookup {
            Lookup::Id(id) => self.lookups.call(id).await,
            Lookup::Email(email) => self.storage.account_by_email(email.as_str()).await,
        }
        .context("reading the account")
    }

    /// A live account and its stored password hash, for a change that
    /// must check or replace it; NOT_FOUND otherwise.
    pub(super) async fn live_credentials(
        &self,
        id: Uuid,
    ) -> Result<(Account, String), ServiceError> {
        self.storage
            .credentials_by_id(id)
            .await
            .context("reading the account")?
            .ok_or(ServiceError::NotFound)
    }
}
