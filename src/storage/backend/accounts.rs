//! [`AccountStore`] over a dialect: registration, look-ups, verification,
//! confirmation codes, profile and address changes, erasure and listing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::media::queue_image_deletion;
use super::writes::{
    account_params, execute_if_needed, insert_event, insert_mail, insert_mail_row, lock_verified,
    notify_workers, store_code,
};
use super::{accounts_of, end_account_sessions, first, SqlStorage};
use crate::auth::{PasswordHash, StoredCode, MAX_CODE_FAILURES};
use crate::domain::{Account, AccountFilter, EventType, ProfileChanges, SessionEnd};
use crate::storage::dialect::{Engine, Param};
use crate::storage::hooks::Wakes;
use crate::storage::sql::{self, Sql};
use crate::storage::{rows, AccountStore, CodeTry, OutboxMessage, StorageError};

#[async_trait]
impl<D: Engine> AccountStore for SqlStorage<D> {
    async fn create_account(
        &self,
        account: &Account,
        password_hash: &PasswordHash,
        mail: &OutboxMessage,
        code: &StoredCode,
    ) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        D::execute(
            &mut tx,
            &sql::INSERT_ACCOUNT,
            &account_params(account, password_hash.expose()),
        )
        .await?;
        insert_mail::<D>(&mut tx, mail).await?;
        store_code::<D>(&mut tx, code, true).await?;
        insert_event::<D>(
            &mut tx,
            EventType::AccountRegistered,
            account.id,
            account.created_at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn accounts_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Account>, StorageError> {
        // SQLite's statement joins the list, so a repeated id would come
        // back twice; a lone id needs neither the copy nor the sort.
        let distinct: std::borrow::Cow<'_, [Uuid]> = if ids.len() < 2 {
            ids.into()
        } else {
            let mut distinct = ids.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.into()
        };
        // A blocking read on the async thread, on purpose: it is a point
        // look-up by primary key that never waits (no busy timeout; anything
        // it cannot answer at once falls through to the pool below), and a
        // hop to a blocking thread would cost more than the read itself.
        if let Some(accounts) = self
            .direct
            .as_ref()
            .and_then(|direct| direct.accounts_by_ids(&distinct))
        {
            return Ok(accounts);
        }
        let rows = match &*distinct {
            [id] => self.fetch(&sql::ACCOUNT_BY_ID, &[Param::Uuid(*id)]).await?,
            _ => {
                self.fetch(&sql::ACCOUNTS_BY_IDS, &[Param::Uuids(&distinct)])
                    .await?
            }
        };
        accounts_of::<D>(&rows)
    }

    async fn account_by_email(&self, email: &str) -> Result<Account, StorageError> {
        let row = first(
            self.fetch(&sql::ACCOUNT_BY_EMAIL, &[Param::Text(email)])
                .await?,
        )?;
        rows::account(&D::row(&row))
    }

    async fn mark_all_verified(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Account>, StorageError> {
        let params = [Param::Uuids(ids), Param::Time(now)];
        let rows = if let Some(events) = D::pick(&sql::VERIFIED_EVENTS) {
            let mut tx = self.begin().await?;
            D::execute(&mut tx, &Sql::both(events), &params).await?;
            tx.wrote_events();
            let rows = D::fetch(&mut tx, &sql::MARK_VERIFIED, &params).await?;
            tx.commit().await?;
            rows
        } else {
            // One statement, which writes the events itself and commits on
            // its own.
            let rows = self.fetch(&sql::MARK_VERIFIED, &params).await?;
            self.committed(Wakes::EVENTS);
            rows
        };
        accounts_of::<D>(&rows)
    }

    async fn request_resend(
        &self,
        email: &str,
        now: DateTime<Utc>,
        cooldown_start: DateTime<Utc>,
        mail: &OutboxMessage,
        deliver: bool,
        code: Option<&StoredCode>,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let mut tx = self.begin().await?;
        execute_if_needed::<D>(&mut tx, &sql::DEFER_FOREIGN_KEYS, &[]).await?;
        let recorded = D::fetch(
            &mut tx,
            &sql::CLAIM_RESEND_COOLDOWN,
            &[
                Param::Text(email),
                Param::Time(now),
                Param::Time(cooldown_start),
            ],
        )
        .await?;
        if recorded.is_empty() {
            let last = D::fetch(&mut tx, &sql::LAST_RESEND_REQUEST, &[Param::Text(email)]).await?;
            tx.rollback().await?;
            return Ok(Some(D::time(&first(last)?, "last_requested_at")?));
        }
        // The mail is written in every case and removed again when there is
        // nobody to send it to: the same statements and nearly the same work
        // for every address. The account reference is checked at commit
        // (`sql::DEFER_FOREIGN_KEYS`), so a removed row (of an unknown
        // address) is never checked.
        insert_mail_row::<D>(&mut tx, mail).await?;
        D::execute(
            &mut tx,
            &sql::DROP_UNDELIVERED_MAIL,
            &[Param::Uuid(mail.id), Param::Bool(deliver)],
        )
        .await?;
        if let Some(code) = code {
            store_code::<D>(&mut tx, code, deliver).await?;
        }
        // Every case wakes the workers, so that the work a wake-up sets off
        // (on this instance and the others) does not tell the cases apart.
        notify_workers::<D>(&mut tx).await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn prune_resend_cooldowns(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_RESEND_COOLDOWNS, &[Param::Time(before)])
            .await
    }

    async fn update_profile(
        &self,
        id: Uuid,
        changes: &ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StorageError> {
        let field = |value: &Option<String>| -> (bool, String) {
            (value.is_some(), value.clone().unwrap_or_default())
        };
        let fields = [
            field(&changes.username),
            field(&changes.first_name),
            field(&changes.last_name),
            field(&changes.phone_number),
            field(&changes.address),
            field(&changes.locale),
        ];
        let mut params = vec![Param::Uuid(id)];
        for (set, value) in &fields {
            params.push(Param::Bool(*set));
            params.push(Param::Text(value));
        }
        params.push(Param::Time(now));
        let updated = self
            .update_with_event(
                &sql::UPDATE_PROFILE,
                &params,
                EventType::ProfileUpdated,
                id,
                now,
                false,
            )
            .await?;
        if updated.is_none() {
            // Nothing changed: `NotFound` unless the account is there.
            self.account_by_id(id).await?;
        }
        Ok(updated)
    }

    async fn change_email(
        &self,
        id: Uuid,
        old_email: &str,
        old_hash: &str,
        new_email: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StorageError> {
        let params = [
            Param::Uuid(id),
            Param::Text(old_email),
            Param::Text(new_email),
            Param::Time(now),
            Param::Text(old_hash),
        ];
        self.update_with_event(
            &sql::CHANGE_EMAIL,
            &params,
            EventType::EmailChanged,
            id,
            now,
            true,
        )
        .await
    }

    async fn delete_account(
        &self,
        id: Uuid,
        email: &str,
        hash: Option<&str>,
        goodbye: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let mut tx = self.begin().await?;
        if lock_verified::<D>(&mut tx, id).await?.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        D::execute(
            &mut tx,
            &sql::DELETE_ACCOUNT_DEAD_LETTERS,
            &[Param::Uuid(id)],
        )
        .await?;
        D::execute(&mut tx, &sql::DELETE_ACCOUNT_MAIL, &[Param::Uuid(id)]).await?;
        D::execute(&mut tx, &sql::DELETE_ACCOUNT_CODE, &[Param::Uuid(id)]).await?;
        // Queued before the address is erased.
        insert_mail::<D>(&mut tx, goodbye).await?;
        // The image's objects go with the row's other personal data.
        queue_image_deletion::<D>(&mut tx, id, now).await?;
        let erased = D::execute(
            &mut tx,
            &sql::ERASE_ACCOUNT,
            &[Param::Uuid(id), Param::Time(now), Param::OptionalText(hash)],
        )
        .await?;
        if erased != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        D::execute(&mut tx, &sql::DELETE_ADDRESS_STATE, &[Param::Text(email)]).await?;
        D::execute(&mut tx, &sql::CLEAR_LOGIN_FAILURES, &[Param::Text(email)]).await?;
        end_account_sessions::<D>(&mut tx, id, None, SessionEnd::Deleted, now).await?;
        // The second factor goes with the rest of what the account held.
        for erase in [
            &sql::DELETE_ANY_SECOND_FACTOR,
            &sql::DELETE_RECOVERY_CODES,
            &sql::DELETE_CHALLENGES,
        ] {
            D::execute(&mut tx, erase, &[Param::Uuid(id)]).await?;
        }
        insert_event::<D>(&mut tx, EventType::AccountDeleted, id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn try_code(&self, email: &str) -> Result<CodeTry, StorageError> {
        let mut conn = self.pool.acquire().await?;
        let counted = D::fetch(
            &mut conn,
            &sql::TRY_CODE,
            &[
                Param::Text(email),
                Param::Int(MAX_CODE_FAILURES),
                Param::Uuid(Uuid::nil()),
            ],
        )
        .await?;
        let code = match counted.first() {
            Some(row) => {
                let account_id = D::uuid(row, "account_id")?;
                (!account_id.is_nil())
                    .then(|| {
                        Ok::<_, StorageError>(StoredCode {
                            account_id,
                            hmac: D::text(row, "code_hmac")?,
                            expires_at: D::time(row, "expires_at")?,
                        })
                    })
                    .transpose()?
            }
            None => None,
        };
        // Run whatever the first found, so every address costs the same.
        let by_address = D::fetch(
            &mut conn,
            &sql::COUNT_ADDRESS_CODE_TRY,
            &[
                Param::Text(email),
                Param::Int(i64::from(code.is_none())),
                Param::Time(Utc::now()),
            ],
        )
        .await?;
        let failures = D::fetch(&mut conn, &sql::CODE_FAILURES, &[Param::Text(email)]).await?;
        if let Some(code) = code {
            return Ok(CodeTry::Counted(code));
        }
        let on_code = match failures.first() {
            Some(row) => D::integer(row, "failures")?,
            None => 0,
        };
        let on_address = match by_address.first() {
            Some(row) => D::integer(row, "failures")?,
            None => 0,
        };
        // A real code burns at its MAX_CODE_FAILURES-th wrong try, and the
        // next answers CODE_EXHAUSTED: an address without one the same.
        if on_code >= MAX_CODE_FAILURES || on_address > MAX_CODE_FAILURES {
            Ok(CodeTry::Burned)
        } else {
            Ok(CodeTry::NoCode)
        }
    }

    async fn refund_code_try(&self, account_id: Uuid) -> Result<(), StorageError> {
        self.execute(&sql::REFUND_CODE_TRY, &[Param::Uuid(account_id)])
            .await?;
        Ok(())
    }

    async fn is_tombstone(&self, id: Uuid) -> Result<bool, StorageError> {
        Ok(!self
            .fetch(&sql::IS_TOMBSTONE, &[Param::Uuid(id)])
            .await?
            .is_empty())
    }

    async fn list_accounts(
        &self,
        after: Option<Uuid>,
        limit: u32,
        filter: &AccountFilter,
    ) -> Result<Vec<Account>, StorageError> {
        let params = [
            Param::OptionalUuid(after),
            Param::Text(&filter.email_prefix),
            Param::OptionalBool(filter.verified),
            Param::Int(i64::from(limit)),
        ];
        let rows = self.fetch(&sql::LIST_ACCOUNTS, &params).await?;
        accounts_of::<D>(&rows)
    }
}
