//! The storage traits implemented once, for every SQL dialect: transactions,
//! which statements run, and what their results mean. Each store trait's
//! implementation has a file of its own; here, the pool and what they share.

mod accounts;
mod credentials;
mod events;
mod lifecycle;
mod limits;
mod media;
mod operations;
mod outbox;
mod second_factor;
mod sessions;
mod writes;

use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use sqlx::pool::PoolOptions;
use sqlx::Pool;
use uuid::Uuid;

use super::dialect::{DbRow, DirectAccess, Engine, Param};
use super::hooks::{CommitHooks, Wakes};
use super::sql::Sql;
use super::{rows, PoolSettings, StorageError};
use crate::domain::{Account, EventType, SessionEnd};
use sessions::end_account_sessions;
use writes::{insert_event, lock_verified, WriteTx};

/// A connection pool of dialect `D`.
pub(super) struct SqlStorage<D: Engine> {
    pool: Pool<D::Db>,
    /// Held through each write transaction where the database has one
    /// writer at a time (SQLite): writers queue here, in order, instead of
    /// polling the database lock with the driver's sleeping busy handler.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Look-ups by id answered without the pool, and commits watched, where
    /// the backend can.
    direct: Option<Arc<dyn DirectAccess>>,
    /// Run after the commits that queued mail or wrote events. A std lock:
    /// it is held only to call the hooks, never across an await, and is
    /// written once at start-up.
    hooks: RwLock<CommitHooks>,
    dialect: PhantomData<fn() -> D>,
}

/// A pooled connection idle for longer than this is pinged before it is
/// used, where the backend pings (servers, proxies and firewalls drop idle
/// connections). One used more recently is taken as it is, as HikariCP's
/// alive-bypass window takes it: a ping on every use would be one more
/// round trip beside every statement, on cores argon2 shares. A connection
/// the server dropped even so fails its statement (UNAVAILABLE), fails the
/// ping sqlx makes when it comes back, and is closed.
const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_millis(500);

impl<D: Engine> SqlStorage<D> {
    /// A pool that connects on first use.
    pub(super) fn open(url: &str, settings: PoolSettings) -> Result<Self, StorageError> {
        let options = D::connect_options(url)?;
        let direct = D::direct(&options).map(Arc::from);
        let mut pool = PoolOptions::<D::Db>::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(false);
        if D::PING_BEFORE_USE {
            pool = pool.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        }
        let pool = pool.connect_lazy_with(options);
        Ok(SqlStorage {
            pool,
            writer: D::SINGLE_WRITER.then(|| Arc::new(tokio::sync::Mutex::new(()))),
            direct,
            hooks: RwLock::new(CommitHooks::default()),
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

    /// Begins a write transaction, after the writer's turn where there is one.
    async fn begin(&self) -> Result<WriteTx<'_, D::Db>, StorageError> {
        let turn = match &self.writer {
            Some(writer) => Some(Arc::clone(writer).lock_owned().await),
            None => None,
        };
        let tx = match D::BEGIN_WRITE {
            Some(statement) => self.pool.begin_with(statement).await?,
            None => self.pool.begin().await?,
        };
        Ok(WriteTx::new(tx, turn, &self.hooks))
    }

    /// Runs the hooks of a write committed outside [`Self::begin`]'s
    /// transactions (a single statement commits on its own).
    fn committed(&self, wakes: Wakes) {
        run_hooks(&self.hooks, wakes);
    }

    /// Runs `statement`, an UPDATE … RETURNING of one account, and records
    /// `event` if it changed a row, in one transaction. `None` when it
    /// matched no row (nothing is written then).
    /// With `changes_address`, the statement moves the account to a
    /// confirmed address: it becomes verified (an `ACCOUNT_VERIFIED` event
    /// follows when it was not), and every session of the account ends.
    async fn update_with_event(
        &self,
        statement: &Sql,
        params: &[Param<'_>],
        event: EventType,
        id: Uuid,
        now: DateTime<Utc>,
        changes_address: bool,
    ) -> Result<Option<Account>, StorageError> {
        let mut tx = self.begin().await?;
        let was_verified = if changes_address {
            lock_verified::<D>(&mut tx, id).await?
        } else {
            None
        };
        let rows = D::fetch(&mut tx, statement, params).await?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(None);
        };
        let account = rows::account(&D::row(row))?;
        insert_event::<D>(&mut tx, event, id, now).await?;
        if was_verified == Some(false) && account.verified {
            insert_event::<D>(&mut tx, EventType::AccountVerified, id, now).await?;
        }
        if changes_address {
            end_account_sessions::<D>(&mut tx, id, None, SessionEnd::EmailChanged, now).await?;
        }
        tx.commit().await?;
        Ok(Some(account))
    }
}

/// Runs the hooks that `wakes` names.
fn run_hooks(hooks: &RwLock<CommitHooks>, wakes: Wakes) {
    if wakes != Wakes::default() {
        // The hooks stay whole whatever panicked while they were replaced.
        hooks.read().unwrap_or_else(|p| p.into_inner()).run(wakes);
    }
}

/// The first row, or `NotFound`.
fn first<R>(rows: Vec<R>) -> Result<R, StorageError> {
    rows.into_iter().next().ok_or(StorageError::NotFound)
}

/// The accounts of rows of `sql::account_columns!()`.
fn accounts_of<D: Engine>(rows: &[DbRow<D>]) -> Result<Vec<Account>, StorageError> {
    rows.iter().map(|row| rows::account(&D::row(row))).collect()
}

#[cfg(test)]
mod tests;
