//! What a backend supplies (its driver, how it stores UUIDs and times, which
//! text of a statement it runs), and the one way every backend runs a
//! statement and reads a column.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::rows::Columns;
use super::sql::{Flavour, Sql};
use super::{StorageError, StoredEvent};
use crate::domain::Account;

pub(super) type Conn<D> = <<D as Dialect>::Db as Database>::Connection;
pub(super) type DbRow<D> = <<D as Dialect>::Db as Database>::Row;
pub(super) type ConnectOptions<D> = <Conn<D> as sqlx::Connection>::Options;
type Args<'q, D> = <<D as Dialect>::Db as Database>::Arguments<'q>;

/// A backend's side of the storage: only what differs between SQL dialects.
#[async_trait]
pub(super) trait Dialect: Send + Sync + 'static {
    type Db: Database<Connection: Migrate>;
    /// Which text of each statement this backend runs.
    const FLAVOUR: Flavour;
    /// This backend's migrations.
    const MIGRATOR: Migrator;
    /// Whether the database takes one writer at a time (its write
    /// transactions are then queued in-process).
    const SINGLE_WRITER: bool;
    /// Whether a pooled connection that sat idle is pinged before it is
    /// used, to find one that a server dropped meanwhile.
    const PING_BEFORE_USE: bool;
    /// How a write transaction begins, when not with a plain BEGIN.
    const BEGIN_WRITE: Option<&'static str>;
    /// How a UUID is stored.
    type Uuid: Stored<Self::Db>;
    /// How a list of UUIDs is bound (for `$n` in [`Sql`] texts that take one).
    type Uuids: for<'q> Encode<'q, Self::Db> + Type<Self::Db> + Send + Sync + 'static;
    /// How a point in time is stored.
    type Time: Stored<Self::Db>;
    /// What an `INTEGER` column (the attempt counters) decodes as.
    type Integer: for<'r> Decode<'r, Self::Db> + Type<Self::Db> + Into<i64>;

    /// This dialect's text of a statement.
    fn pick<T: Copy>(statement: &Sql<T>) -> T {
        statement.text(Self::FLAVOUR)
    }

    fn connect_options(url: &str) -> Result<ConnectOptions<Self>, StorageError>;
    /// What this backend does on the database beside the pool, where it can.
    fn direct(_options: &ConnectOptions<Self>) -> Option<Box<dyn DirectAccess>> {
        None
    }
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    fn store_uuid(id: Uuid) -> Self::Uuid;
    /// `None` when the stored value is not a UUID.
    fn load_uuid(stored: Self::Uuid) -> Option<Uuid>;
    fn store_uuids(ids: &[Uuid]) -> Self::Uuids;
    fn store_time(t: DateTime<Utc>) -> Self::Time;
    /// `None` when the stored value is out of range.
    fn load_time(stored: Self::Time) -> Option<DateTime<Utc>>;

    /// Wakes `wake` whenever another process notifies `channel`, until
    /// `stop`. Without cross-process notification it returns at once.
    async fn listen(
        _pool: &Pool<Self::Db>,
        _channel: &'static str,
        _wake: Arc<Notify>,
        _stop: CancellationToken,
    ) {
    }
}

/// What a backend does on the database itself, beside its pool, where it
/// can (an SQLite file the process opens on its own).
#[async_trait]
pub(super) trait DirectAccess: Send + Sync + 'static {
    /// The live accounts among `ids` (each at most once), read on the
    /// calling thread without waiting; `None` when the read could not be
    /// answered at once and should go through the pool.
    fn accounts_by_ids(&self, ids: &[Uuid]) -> Option<Vec<Account>>;

    /// At most `limit` events of the log after sequence `after`, in log
    /// order, read without waiting (it blocks for the length of the read);
    /// `None` when the read should go through the pool.
    fn events_after(&self, after: i64, limit: u32) -> Option<Vec<StoredEvent>>;

    /// Wakes `changed` whenever another connection (of this process or
    /// another) has committed, until `stop`.
    async fn watch_commits(&self, changed: Arc<Notify>, stop: CancellationToken);
}

/// A value type a driver both writes and reads.
pub(super) trait Stored<Db: Database>:
    for<'q> Encode<'q, Db> + for<'r> Decode<'r, Db> + Type<Db> + Send + Sync + 'static
{
}

impl<Db: Database, T> Stored<Db> for T where
    T: for<'q> Encode<'q, Db> + for<'r> Decode<'r, Db> + Type<Db> + Send + Sync + 'static
{
}

/// A value bound to a statement's `$n`, in the order of the slice.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    Text(&'a str),
    Bool(bool),
    Int(i64),
    Uuid(Uuid),
    OptionalUuid(Option<Uuid>),
    OptionalBool(Option<bool>),
    OptionalText(Option<&'a str>),
    Uuids(&'a [Uuid]),
    Time(DateTime<Utc>),
}

/// Running statements and reading columns, written once for every
/// [`Dialect`] whose driver handles the plain types (the bounds live on the
/// one implementation below, so code generic over `Engine` needs none).
#[async_trait]
pub(super) trait Engine: Dialect {
    /// Runs a statement; returns how many rows it changed.
    async fn execute(
        conn: &mut Conn<Self>,
        statement: &Sql,
        params: &[Param<'_>],
    ) -> Result<u64, StorageError>;

    /// Runs a statement; returns every row it yields.
    async fn fetch(
        conn: &mut Conn<Self>,
        statement: &Sql,
        params: &[Param<'_>],
    ) -> Result<Vec<DbRow<Self>>, StorageError>;

    fn text(row: &DbRow<Self>, column: &str) -> Result<String, StorageError>;
    fn flag(row: &DbRow<Self>, column: &str) -> Result<bool, StorageError>;
    fn bytes(row: &DbRow<Self>, column: &str) -> Result<Vec<u8>, StorageError>;
    /// A `BIGINT` column, or an aggregate count.
    fn bigint(row: &DbRow<Self>, column: &str) -> Result<i64, StorageError>;
    /// An `INTEGER` column.
    fn integer(row: &DbRow<Self>, column: &str) -> Result<i64, StorageError>;
    fn uuid(row: &DbRow<Self>, column: &str) -> Result<Uuid, StorageError>;
    fn time(row: &DbRow<Self>, column: &str) -> Result<DateTime<Utc>, StorageError>;
    fn optional_time(
        row: &DbRow<Self>,
        column: &str,
    ) -> Result<Option<DateTime<Utc>>, StorageError>;

    /// `row`, for the mappings in `rows`.
    fn row(row: &DbRow<Self>) -> Cols<'_, Self>
    where
        Self: Sized,
    {
        Cols(row)
    }
}

/// A row of a dialect's driver, read through [`Engine`]'s column readers.
pub(super) struct Cols<'r, D: Dialect>(&'r DbRow<D>);

impl<D: Engine> Columns for Cols<'_, D> {
    fn text(&self, column: &str) -> Result<String, StorageError> {
        D::text(self.0, column)
    }

    fn flag(&self, column: &str) -> Result<bool, StorageError> {
        D::flag(self.0, column)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, StorageError> {
        D::bytes(self.0, column)
    }

    fn bigint(&self, column: &str) -> Result<i64, StorageError> {
        D::bigint(self.0, column)
    }

    fn integer(&self, column: &str) -> Result<i64, StorageError> {
        D::integer(self.0, column)
    }

    fn uuid(&self, column: &str) -> Result<Uuid, StorageError> {
        D::uuid(self.0, column)
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>, StorageError> {
        D::time(self.0, column)
    }

    fn optional_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
        D::optional_time(self.0, column)
    }
}

#[async_trait]
impl<D> Engine for D
where
    D: Dialect,
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: IntoArguments<'q, D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<D::Uuid>: Encode<'q, D::Db>,
    for<'q> Option<bool>: Encode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Vec<u8>: Decode<'r, D::Db> + Type<D::Db>,
    for<'a> &'a str: ColumnIndex<DbRow<D>>,
{
    async fn execute(
        conn: &mut Conn<D>,
        statement: &Sql,
        params: &[Param<'_>],
    ) -> Result<u64, StorageError> {
        let done = query::<D>(statement, params).execute(conn).await?;
        Ok(D::rows_affected(&done))
    }

    async fn fetch(
        conn: &mut Conn<D>,
        statement: &Sql,
        params: &[Param<'_>],
    ) -> Result<Vec<DbRow<D>>, StorageError> {
        Ok(query::<D>(statement, params).fetch_all(conn).await?)
    }

    fn text(row: &DbRow<D>, column: &str) -> Result<String, StorageError> {
        Ok(row.try_get(column)?)
    }

    fn flag(row: &DbRow<D>, column: &str) -> Result<bool, StorageError> {
        Ok(row.try_get(column)?)
    }

    fn bytes(row: &DbRow<D>, column: &str) -> Result<Vec<u8>, StorageError> {
        Ok(row.try_get(column)?)
    }

    fn bigint(row: &DbRow<D>, column: &str) -> Result<i64, StorageError> {
        Ok(row.try_get(column)?)
    }

    fn integer(row: &DbRow<D>, column: &str) -> Result<i64, StorageError> {
        Ok(row.try_get::<D::Integer, _>(column)?.into())
    }

    fn uuid(row: &DbRow<D>, column: &str) -> Result<Uuid, StorageError> {
        D::load_uuid(row.try_get(column)?).ok_or_else(|| not_a_uuid(column))
    }

    fn time(row: &DbRow<D>, column: &str) -> Result<DateTime<Utc>, StorageError> {
        D::load_time(row.try_get(column)?).ok_or_else(|| out_of_range(column))
    }

    fn optional_time(row: &DbRow<D>, column: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
        row.try_get::<Option<D::Time>, _>(column)?
            .map(|stored| D::load_time(stored).ok_or_else(|| out_of_range(column)))
            .transpose()
    }
}

pub(super) fn not_a_uuid(column: &str) -> StorageError {
    StorageError::Corrupt(format!("{column} is not a UUID"))
}

pub(super) fn out_of_range(column: &str) -> StorageError {
    StorageError::Corrupt(format!("{column} out of range"))
}

/// `statement` in `D`'s dialect with `params` bound the way `D` stores them.
fn query<'q, D>(statement: &Sql, params: &[Param<'q>]) -> Query<'q, D::Db, Args<'q, D>>
where
    D: Dialect,
    for<'a> &'a str: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> bool: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> i64: Encode<'a, D::Db> + Type<D::Db>,
    for<'a> Option<D::Uuid>: Encode<'a, D::Db>,
    for<'a> Option<bool>: Encode<'a, D::Db>,
    for<'a> Option<&'a str>: Encode<'a, D::Db>,
{
    params.iter().fold(
        sqlx::query(D::pick(statement)),
        |query, param| match *param {
            Param::Text(v) => query.bind(v),
            Param::Bool(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
            Param::Uuid(v) => query.bind(D::store_uuid(v)),
            Param::OptionalUuid(v) => query.bind(v.map(D::store_uuid)),
            Param::OptionalBool(v) => query.bind(v),
            Param::OptionalText(v) => query.bind(v),
            Param::Uuids(v) => query.bind(D::store_uuids(v)),
            Param::Time(v) => query.bind(D::store_time(v)),
        },
    )
}
