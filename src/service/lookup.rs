//! Looking an account up, by id (batched) or by address.

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
}
