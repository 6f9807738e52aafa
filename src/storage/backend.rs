//! The storage traits implemented once, for every SQL dialect: transactions,
//! which statements run, and what their results mean.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolOptions;
use sqlx::{Pool, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::dialect::{Conn, DbRow, Engine, Param};
use super::sql::{self, Sql};
use super::sqlite_reads::Readers;
use super::{
    compare_schema, rows, AccountFilter, AccountStore, ClaimedMessage, CodeTry, CredentialStore,
    DeadLetter, EventBatch, EventPosition, EventStore, Lifecycle, LimitStore, LoginReservation,
    MailFailure, Operations, OutboxMessage, OutboxStatus, OutboxStore, PoolSettings, StorageError,
};
use crate::auth::{PasswordHash, StoredCode, MAX_CODE_FAILURES};
use crate::domain::{Account, EventType, ProfileChanges};

/// A connection pool of dialect `D`.
pub(super) struct SqlStorage<D: Engine> {
    pool: Pool<D::Db>,
    /// Held through each write transaction where the database has one
    /// writer at a time (SQLite): writers queue here, in order, instead of
    /// polling the database lock with the driver's sleeping busy handler.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Look-ups by id answered without the pool, where the backend can.
    readers: Option<Readers>,
    dialect: PhantomData<fn() -> D>,
}

/// A write transaction, holding the writer's turn where there is one.
struct WriteTx<Db: sqlx::Database> {
    tx: Transaction<'static, Db>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<Db: sqlx::Database> WriteTx<Db> {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<Db: sqlx::Database> std::ops::Deref for WriteTx<Db> {
    type Target = Db::Connection;

    fn deref(&self) -> &Db::Connection {
        &self.tx
    }
}

impl<Db: sqlx::Database> std::ops::DerefMut for WriteTx<Db> {
    fn deref_mut(&mut self) -> &mut Db::Connection {
        &mut self.tx
    }
}

impl<D: Engine> SqlStorage<D> {
    /// A pool that connects on first use.
    pub(super) fn open(url: &str, settings: PoolSettings) -> Result<Self, StorageError> {
        let options = D::connect_options(url)?;
        let readers = D::readers(&options);
        let pool = PoolOptions::<D::Db>::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(D::PING_BEFORE_USE)
            .connect_lazy_with(options);
        Ok(SqlStorage {
            pool,
            writer: D::SINGLE_WRITER.then(|| Arc::new(tokio::sync::Mutex::new(()))),
            readers,
            dialect: PhantomData,
        })
    }

    /// Runs one statement on a pooled connection; returns the rows changed.
    async fn execute(&self, statement: &Sql, params: &[Param<'_>]) -> Result<u64, StorageError> {
        let mut conn = self.pool.acquire().await?;
        D::execute(&mut conn, statement, params).await
    }

    /// Runs one statement on a pooled connection; returns its rows.
    async fn fetch(
        &self,
        statement: &Sql,
        params: &[Param<'_>],
    ) -> Result<Vec<DbRow<D>>, StorageError> {
        let mut conn = self.pool.acquire().await?;
        D::fetch(&mut conn, statement, params).await
    }

    /// Runs `statement`, an UPDATE … RETURNING of one account, and records
    /// `event` if it changed a row, in one transaction. `None` when it
    /// matched no row (nothing is written then).
    /// With `verifies`, the statement marks the account verified, and an
    /// `ACCOUNT_VERIFIED` event follows when it was not.
    async fn update_with_event(
        &self,
        statement: &Sql,
        params: &[Param<'_>],
        event: EventType,
        id: Uuid,
        now: DateTime<Utc>,
        verifies: bool,
    ) -> Result<Option<Account>, StorageError> {
        let mut tx = self.begin().await?;
        let was_verified = if verifies {
            lock_verified::<D>(&mut tx, id).await?
        } else {
            None
        };
        let rows = D::fetch(&mut tx, statement, params).await?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(None);
        };
        let account = rows::account::<D>(row)?;
        insert_event::<D>(&mut tx, event, id, now).await?;
        if was_verified == Some(false) && account.verified {
            insert_event::<D>(&mut tx, EventType::AccountVerified, id, now).await?;
        }
        tx.commit().await?;
        Ok(Some(account))
    }

    async fn begin(&self) -> Result<WriteTx<D::Db>, StorageError> {
        let turn = match &self.writer {
            Some(writer) => Some(Arc::clone(writer).lock_owned().await),
            None => None,
        };
        let tx = match D::BEGIN_WRITE {
            Some(statement) => self.pool.begin_with(statement).await?,
            None => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }
}

/// The first row, or `NotFound`.
fn first<R>(rows: Vec<R>) -> Result<R, StorageError> {
    rows.into_iter().next().ok_or(StorageError::NotFound)
}

/// Runs a statement that only some dialects need; a no-op in the others.
async fn execute_if_needed<D: Engine>(
    conn: &mut Conn<D>,
    statement: &Sql<Option<&'static str>>,
    params: &[Param<'_>],
) -> Result<(), StorageError> {
    if let Some(text) = D::pick(statement) {
        let only = Sql {
            postgres: text,
            sqlite: text,
        };
        D::execute(conn, &only, params).await?;
    }
    Ok(())
}

/// Wakes the workers of other instances (delivered at commit).
async fn notify_workers<D: Engine>(conn: &mut Conn<D>) -> Result<(), StorageError> {
    execute_if_needed::<D>(
        conn,
        &sql::NOTIFY_WORKERS,
        &[Param::Text(sql::MAIL_CHANNEL)],
    )
    .await
}

async fn insert_mail_row<D: Engine>(
    conn: &mut Conn<D>,
    mail: &OutboxMessage,
) -> Result<(), StorageError> {
    D::execute(
        conn,
        &sql::INSERT_MAIL,
        &[
            Param::Uuid(mail.id),
            Param::Uuid(mail.account_id),
            Param::Text(mail.kind.as_str()),
            Param::Text(&mail.recipient),
            Param::Text(&mail.subject),
            Param::Text(&mail.text_body),
            Param::Text(&mail.html_body),
            Param::Time(mail.created_at),
            Param::Text(&mail.locale),
        ],
    )
    .await?;
    Ok(())
}

/// Records a change to an account in the transaction that makes it.
async fn insert_event<D: Engine>(
    conn: &mut Conn<D>,
    kind: EventType,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    D::execute(
        conn,
        &sql::INSERT_EVENT,
        &[
            Param::Int(kind.number()),
            Param::Uuid(account_id),
            Param::Time(now),
        ],
    )
    .await?;
    Ok(())
}

/// Stores an account's newest confirmation code when `keep` is set (the
/// statement runs either way).
async fn store_code<D: Engine>(
    conn: &mut Conn<D>,
    code: &StoredCode,
    keep: bool,
) -> Result<(), StorageError> {
    D::execute(
        conn,
        &sql::STORE_CODE,
        &[
            Param::Uuid(code.account_id),
            Param::Text(&code.hmac),
            Param::Time(code.expires_at),
            Param::Bool(keep),
        ],
    )
    .await?;
    Ok(())
}

/// Whether a live account is verified, its row locked for the rest of the
/// transaction; `None` when there is no live account.
async fn lock_verified<D: Engine>(
    conn: &mut Conn<D>,
    id: Uuid,
) -> Result<Option<bool>, StorageError> {
    let rows = D::fetch(conn, &sql::LOCK_VERIFIED, &[Param::Uuid(id)]).await?;
    rows.first().map(|row| D::flag(row, "verified")).transpose()
}

/// Inserts an outbox row and notifies the workers.
async fn insert_mail<D: Engine>(
    conn: &mut Conn<D>,
    mail: &OutboxMessage,
) -> Result<(), StorageError> {
    insert_mail_row::<D>(conn, mail).await?;
    notify_workers::<D>(conn).await
}

#[async_trait]
impl<D: Engine> Lifecycle for SqlStorage<D> {
    async fn migrate(&self) -> Result<(), StorageError> {
        // On a connection of its own, closed afterwards: a migration that
        // fails part-way leaves the migrator's session lock behind, and a
        // pooled connection would keep holding it.
        let mut conn = self.pool.acquire().await?.detach();
        let result = D::MIGRATOR.run_direct(&mut conn).await;
        let _ = sqlx::Connection::close(conn).await;
        result?;
        Ok(())
    }

    async fn check_schema(&self) -> Result<(), StorageError> {
        let applied = if self.fetch(&sql::MIGRATIONS_TABLE, &[]).await?.is_empty() {
            None
        } else {
            let rows = self.fetch(&sql::APPLIED_MIGRATIONS, &[]).await?;
            Some(
                rows.iter()
                    .map(rows::applied_migration::<D>)
                    .collect::<Result<_, _>>()?,
            )
        };
        compare_schema(&D::MIGRATOR, applied)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.execute(&sql::PING, &[]).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

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
            &[
                Param::Uuid(account.id),
                Param::Text(&account.email),
                Param::Text(&account.username),
                Param::Text(password_hash.expose()),
                Param::Text(&account.first_name),
                Param::Text(&account.last_name),
                Param::Text(&account.phone_number),
                Param::Text(&account.address),
                Param::Bool(account.verified),
                Param::Bool(account.term_and_condition),
                Param::Text(&account.created_from),
                Param::Time(account.created_at),
                Param::Time(account.updated_at),
                Param::Text(&account.locale),
            ],
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
        if let Some(accounts) = self
            .readers
            .as_ref()
            .and_then(|r| r.accounts_by_ids(&distinct))
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
        rows.iter().map(rows::account::<D>).collect()
    }

    async fn account_by_email(&self, email: &str) -> Result<Account, StorageError> {
        let row = first(
            self.fetch(&sql::ACCOUNT_BY_EMAIL, &[Param::Text(email)])
                .await?,
        )?;
        rows::account::<D>(&row)
    }

    async fn mark_all_verified(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Account>, StorageError> {
        let params = [Param::Uuids(ids), Param::Time(now)];
        let rows = if let Some(events) = D::pick(&sql::VERIFIED_EVENTS) {
            let mut tx = self.begin().await?;
            let only = Sql {
                postgres: events,
                sqlite: events,
            };
            D::execute(&mut tx, &only, &params).await?;
            let rows = D::fetch(&mut tx, &sql::MARK_VERIFIED, &params).await?;
            tx.commit().await?;
            rows
        } else {
            self.fetch(&sql::MARK_VERIFIED, &params).await?
        };
        rows.iter().map(rows::account::<D>).collect()
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
        rows.iter().map(rows::account::<D>).collect()
    }
}

#[async_trait]
impl<D: Engine> EventStore for SqlStorage<D> {
    async fn read_events(
        &self,
        after: EventPosition,
        limit: u32,
    ) -> Result<EventBatch, StorageError> {
        let mut conn = self.pool.acquire().await?;
        let (horizon, held_back) = match D::pick(&sql::EVENT_HORIZON) {
            Some(text) => {
                let only = Sql {
                    postgres: text,
                    sqlite: text,
                };
                let row = first(D::fetch(&mut conn, &only, &[]).await?)?;
                (D::text(&row, "horizon")?, D::flag(&row, "held")?)
            }
            None => ("0".to_owned(), false),
        };
        let xid = after.xid.to_string();
        let params = [
            Param::Text(&xid),
            Param::Int(after.seq),
            Param::Int(i64::from(limit)),
            Param::Text(&horizon),
        ];
        let rows = D::fetch(&mut conn, &sql::READ_EVENTS, &params).await?;
        let events = rows
            .iter()
            .map(rows::event::<D>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventBatch { events, held_back })
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_EVENTS, &[Param::Time(before)])
            .await
    }

    async fn listen_for_events(&self, wake: Arc<Notify>, stop: CancellationToken) {
        D::listen(&self.pool, sql::EVENTS_CHANNEL, wake, stop).await;
    }
}

#[async_trait]
impl<D: Engine> OutboxStore for SqlStorage<D> {
    async fn queue_mail(&self, mail: &OutboxMessage) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        insert_mail::<D>(&mut tx, mail).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_mails(&self, mails: &[&OutboxMessage]) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        for mail in mails {
            insert_mail_row::<D>(&mut tx, mail).await?;
        }
        notify_workers::<D>(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        claim: Uuid,
    ) -> Result<Vec<ClaimedMessage>, StorageError> {
        let params = [
            Param::Time(now),
            Param::Time(lease_until),
            Param::Int(i64::from(limit)),
            Param::Uuid(claim),
        ];
        let claimed = self.fetch(&sql::CLAIM_MAIL, &params).await?;
        claimed.iter().map(rows::claimed::<D>).collect()
    }

    async fn next_mail_due(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        let row = first(self.fetch(&sql::NEXT_MAIL_DUE, &[]).await?)?;
        D::optional_time(&row, "due")
    }

    async fn mark_mail_sent(
        &self,
        ids: &[Uuid],
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let params = [Param::Uuids(ids), Param::Time(now), Param::Uuid(claim)];
        self.execute(&sql::MARK_MAIL_SENT, &params).await
    }

    async fn reschedule_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        let params = [
            Param::Uuid(id),
            Param::Time(next_attempt_at),
            Param::Text(error),
            Param::Uuid(claim),
        ];
        self.execute(&sql::RESCHEDULE_MAIL, &params).await?;
        Ok(())
    }

    async fn fail_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
        failure: &MailFailure<'_>,
    ) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        let moved = D::execute(
            &mut tx,
            &sql::MARK_MAIL_FAILED,
            &[
                Param::Uuid(id),
                Param::Text(failure.error),
                Param::Uuid(claim),
            ],
        )
        .await?;
        if moved == 1 {
            D::execute(
                &mut tx,
                &sql::INSERT_DEAD_LETTER,
                &[
                    Param::Uuid(Uuid::now_v7()),
                    Param::Uuid(id),
                    Param::Text(failure.kind),
                    Param::Text(failure.error),
                    Param::Time(now),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_mail(&self, ids: &[Uuid], claim: Uuid) -> Result<u64, StorageError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let params = [Param::Uuids(ids), Param::Uuid(claim)];
        self.execute(&sql::RELEASE_MAIL, &params).await
    }

    async fn prune_erased_mail(&self) -> Result<u64, StorageError> {
        let mut tx = self.begin().await?;
        D::execute(&mut tx, &sql::PRUNE_ERASED_DEAD_LETTERS, &[]).await?;
        let pruned = D::execute(&mut tx, &sql::PRUNE_ERASED_MAIL, &[]).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_SENT, &[Param::Time(sent_before)])
            .await
    }

    async fn listen_for_mail(&self, wake: Arc<Notify>, stop: CancellationToken) {
        D::listen(&self.pool, sql::MAIL_CHANNEL, wake, stop).await;
    }

    async fn watch_commits(&self, changed: Arc<Notify>, stop: CancellationToken) {
        if let Some(readers) = &self.readers {
            super::sqlite_commits::watch(readers.path(), changed, stop).await;
        }
    }
}

#[async_trait]
impl<D: Engine> Operations for SqlStorage<D> {
    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<OutboxStatus, StorageError> {
        let row = first(self.fetch(&sql::OUTBOX_STATUS, &[Param::Time(now)]).await?)?;
        rows::outbox_status::<D>(&row)
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StorageError> {
        let letters = self
            .fetch(&sql::DEAD_LETTERS, &[Param::Int(i64::from(limit))])
            .await?;
        letters.iter().map(rows::dead_letter::<D>).collect()
    }

    async fn retry_dead_letters(
        &self,
        id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let mut tx = self.begin().await?;
        let requeued = D::fetch(
            &mut tx,
            &sql::REQUEUE_DEAD_LETTERS,
            &[Param::Time(now), Param::OptionalUuid(id)],
        )
        .await?
        .iter()
        .map(|row| D::uuid(row, "id"))
        .collect::<Result<Vec<_>, _>>()?;
        // Only the dead letters whose message went back to the queue.
        D::execute(
            &mut tx,
            &sql::MARK_DEAD_LETTERS_RETRIED,
            &[
                Param::Time(now),
                Param::Uuids(&requeued),
                Param::OptionalUuid(id),
            ],
        )
        .await?;
        notify_workers::<D>(&mut tx).await?;
        tx.commit().await?;
        Ok(requeued.len() as u64)
    }
}

#[async_trait]
impl<D: Engine> LimitStore for SqlStorage<D> {
    async fn take_from_bucket(
        &self,
        key: &str,
        now_us: i64,
        interval_us: i64,
        capacity_us: i64,
    ) -> Result<Option<std::time::Duration>, StorageError> {
        let params = [
            Param::Text(key),
            Param::Int(now_us),
            Param::Int(interval_us),
            Param::Int(capacity_us),
        ];
        let row = first(self.fetch(&sql::TAKE_FROM_BUCKET, &params).await?)?;
        if D::flag(&row, "allowed")? {
            return Ok(None);
        }
        let tat = D::bigint(&row, "tat")?;
        let wait = tat
            .saturating_add(interval_us)
            .saturating_sub(capacity_us)
            .saturating_sub(now_us);
        Ok(Some(std::time::Duration::from_micros(
            u64::try_from(wait).unwrap_or(0).max(1),
        )))
    }

    async fn prune_buckets(&self, now_us: i64) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_BUCKETS, &[Param::Int(now_us)])
            .await
    }
}

#[async_trait]
impl<D: Engine> CredentialStore for SqlStorage<D> {
    async fn credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(Account, String)>, StorageError> {
        let rows = self
            .fetch(&sql::CREDENTIALS_BY_EMAIL, &[Param::Text(email)])
            .await?;
        rows.first()
            .map(|row| Ok((rows::account::<D>(row)?, D::text(row, "password_hash")?)))
            .transpose()
    }

    async fn import_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let params = [
            Param::Uuid(account.id),
            Param::Text(&account.email),
            Param::Text(&account.username),
            Param::Text(password_hash),
            Param::Text(&account.first_name),
            Param::Text(&account.last_name),
            Param::Text(&account.phone_number),
            Param::Text(&account.address),
            Param::Bool(account.verified),
            Param::Bool(account.term_and_condition),
            Param::Text(&account.created_from),
            Param::Time(account.created_at),
            Param::Time(account.updated_at),
            Param::Text(&account.locale),
        ];
        let mut tx = self.begin().await?;
        if D::execute(&mut tx, &sql::IMPORT_ACCOUNT, &params).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Stamped when it was imported (its `updated_at`), not with the
        // registration date it brings: events are pruned by their time.
        insert_event::<D>(
            &mut tx,
            EventType::AccountRegistered,
            account.id,
            account.updated_at,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<(Account, String)>, StorageError> {
        let rows = self
            .fetch(&sql::CREDENTIALS_BY_ID, &[Param::Uuid(id)])
            .await?;
        rows.first()
            .map(|row| Ok((rows::account::<D>(row)?, D::text(row, "password_hash")?)))
            .transpose()
    }

    async fn replace_password(
        &self,
        account: &Account,
        old: &str,
        new: &PasswordHash,
        now: DateTime<Utc>,
        verify: bool,
        notice: &OutboxMessage,
    ) -> Result<Option<Account>, StorageError> {
        let (id, email) = (account.id, account.email.as_str());
        let mut tx = self.begin().await?;
        let was_verified = if verify {
            lock_verified::<D>(&mut tx, id).await?
        } else {
            None
        };
        let params = [
            Param::Uuid(id),
            Param::Text(old),
            Param::Text(new.expose()),
            Param::Time(now),
            Param::Bool(verify),
            Param::Text(email),
        ];
        let rows = D::fetch(&mut tx, &sql::REPLACE_PASSWORD, &params).await?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(None);
        };
        let account = rows::account::<D>(row)?;
        D::execute(
            &mut tx,
            &sql::CLEAR_LOGIN_FAILURES,
            &[Param::Text(&account.email)],
        )
        .await?;
        insert_mail::<D>(&mut tx, notice).await?;
        insert_event::<D>(&mut tx, EventType::PasswordChanged, id, now).await?;
        if was_verified == Some(false) && account.verified {
            insert_event::<D>(&mut tx, EventType::AccountVerified, id, now).await?;
        }
        tx.commit().await?;
        Ok(Some(account))
    }

    async fn replace_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &PasswordHash,
    ) -> Result<bool, StorageError> {
        let params = [Param::Uuid(id), Param::Text(old), Param::Text(new.expose())];
        Ok(self.execute(&sql::REPLACE_PASSWORD_HASH, &params).await? == 1)
    }

    async fn reserve_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        stale_before: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError> {
        let params = [
            Param::Text(email),
            Param::Time(now),
            Param::Int(i64::from(max_failures)),
            Param::Time(stale_before),
        ];
        if !self
            .fetch(&sql::RESERVE_LOGIN_ATTEMPT, &params)
            .await?
            .is_empty()
        {
            return Ok(LoginReservation::Reserved);
        }
        let rows = self.fetch(&sql::LOGIN_LOCK, &[Param::Text(email)]).await?;
        Ok(match rows.first() {
            Some(row) => LoginReservation::Refused {
                locked_until: D::optional_time(row, "locked_until")?,
                lockouts: D::integer(row, "lockouts")?,
            },
            // Gone between the two statements (pruned): nothing holds it.
            None => LoginReservation::Refused {
                locked_until: None,
                lockouts: 0,
            },
        })
    }

    async fn record_login_failure(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), StorageError> {
        let row = first(
            self.fetch(
                &sql::RECORD_LOGIN_FAILURE,
                &[Param::Text(email), Param::Time(now)],
            )
            .await?,
        )?;
        Ok((D::integer(&row, "failures")?, D::integer(&row, "lockouts")?))
    }

    async fn lock_login(
        &self,
        email: &str,
        max_failures: u32,
        until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let params = [
            Param::Text(email),
            Param::Int(i64::from(max_failures)),
            Param::Time(until),
        ];
        self.execute(&sql::LOCK_LOGIN, &params).await?;
        Ok(())
    }

    async fn release_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let params = [Param::Text(email), Param::Time(now)];
        if self
            .execute(&sql::CLEAR_SETTLED_LOGIN_FAILURES, &params)
            .await?
            == 0
        {
            self.execute(&sql::RELEASE_LOGIN_ATTEMPT, &[Param::Text(email)])
                .await?;
        }
        Ok(())
    }

    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let failures = self
            .execute(&sql::PRUNE_LOGIN_FAILURES, &[Param::Time(before)])
            .await?;
        let code_tries = self
            .execute(&sql::PRUNE_CODE_TRIES, &[Param::Time(before)])
            .await?;
        Ok(failures + code_tries)
    }
}
