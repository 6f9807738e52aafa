//! SQLite dialect: the embedded default, one file, WAL mode. Ids are stored
//! as UUID text and times as Unix microseconds.

use std::cell::Cell;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteQueryResult};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::dialect::{not_a_uuid, out_of_range, ConnectOptions, Dialect, DirectAccess};
use super::rows::Columns;
use super::sql::{self, Flavour};
use super::sqlite_reads::Readers;
use super::{sqlite_commits, StorageError};
use crate::domain::Account;

pub(super) struct Sqlite;

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;
    type Uuid = String;
    /// A JSON array of UUID texts, which statements read with `json_each`.
    type Uuids = String;
    type Time = i64;
    type Integer = i64;

    const FLAVOUR: Flavour = Flavour::Sqlite;
    const SINGLE_WRITER: bool = true;
    /// An open file has no server to lose it; a ping would be one more hop
    /// to the connection's thread on every statement.
    const PING_BEFORE_USE: bool = false;
    /// Takes the write lock at once: a transaction that read first could not
    /// take it later if another process wrote meanwhile (SQLITE_BUSY).
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

    fn connect_options(url: &str) -> Result<ConnectOptions<Self>, StorageError> {
        Ok(SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Writers queue on the database lock instead of failing at once.
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Pages are read straight from the OS page cache, shared by every
            // connection, instead of copied into each connection's own cache.
            .pragma("mmap_size", "268435456"))
    }

    fn direct(options: &SqliteConnectOptions) -> Option<Box<dyn DirectAccess>> {
        Some(Box::new(Readers::of(options)?))
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn store_uuid(id: Uuid) -> String {
        id.to_string()
    }

    fn load_uuid(stored: String) -> Option<Uuid> {
        Uuid::parse_str(&stored).ok()
    }

    fn store_uuids(ids: &[Uuid]) -> String {
        uuid_list(ids)
    }

    fn store_time(t: DateTime<Utc>) -> i64 {
        t.timestamp_micros()
    }

    fn load_time(stored: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(stored)
    }
}

/// A JSON array of UUID texts, as statements read it with `json_each`.
fn uuid_list(ids: &[Uuid]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// The database file, read on its own beside the pool.
#[async_trait]
impl DirectAccess for Readers {
    fn accounts_by_ids(&self, ids: &[Uuid]) -> Option<Vec<Account>> {
        match ids {
            [id] => self.accounts(sql::ACCOUNT_BY_ID.sqlite, &Sqlite::store_uuid(*id)),
            _ => self.accounts(sql::ACCOUNTS_BY_IDS.sqlite, &Sqlite::store_uuids(ids)),
        }
    }

    async fn watch_commits(&self, changed: Arc<Notify>, stop: CancellationToken) {
        sqlite_commits::watch(self.path(), changed, stop).await;
    }
}

/// A row read by rusqlite (the look-ups of `sqlite_reads`), decoded as the
/// pool's rows are. A failure to read a column becomes `Corrupt`, which the
/// caller never reports: it reads through the pool instead.
///
/// rusqlite finds a column by name by asking SQLite for the name of every
/// column before it, which on a look-up by id cost a tenth of the service's
/// time. Rows are mapped in the order the statement selects, so the column
/// after the last one read is tried first, and is nearly always the one.
pub(super) struct InOrder<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: Cell<usize>,
}

impl<'r, 's> InOrder<'r, 's> {
    pub(super) fn new(row: &'r rusqlite::Row<'s>) -> InOrder<'r, 's> {
        InOrder {
            row,
            next: Cell::new(0),
        }
    }

    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> Result<T, StorageError> {
        let statement: &rusqlite::Statement<'_> = self.row.as_ref();
        let hint = self.next.get();
        let index = if statement.column_name(hint).is_ok_and(|name| name == column) {
            hint
        } else {
            statement
                .column_index(column)
                .map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))?
        };
        self.next.set(index + 1);
        self.row
            .get(index)
            .map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
    }
}

impl Columns for InOrder<'_, '_> {
    fn text(&self, column: &str) -> Result<String, StorageError> {
        self.get(column)
    }

    fn flag(&self, column: &str) -> Result<bool, StorageError> {
        self.get(column)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, StorageError> {
        self.get(column)
    }

    fn bigint(&self, column: &str) -> Result<i64, StorageError> {
        self.get(column)
    }

    fn integer(&self, column: &str) -> Result<i64, StorageError> {
        self.get(column)
    }

    fn uuid(&self, column: &str) -> Result<Uuid, StorageError> {
        Sqlite::load_uuid(self.get(column)?).ok_or_else(|| not_a_uuid(column))
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>, StorageError> {
        Sqlite::load_time(self.get(column)?).ok_or_else(|| out_of_range(column))
    }

    fn optional_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.get::<Option<i64>>(column)?
            .map(|stored| Sqlite::load_time(stored).ok_or_else(|| out_of_range(column)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::rows::Columns;

    /// Reads columns `names` of the one row of `select` through [`InOrder`].
    fn read(select: &str, names: &[&str]) -> Vec<Result<i64, StorageError>> {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare(select).unwrap();
        let mut rows = statement.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        let row = InOrder::new(row);
        names.iter().map(|name| row.integer(name)).collect()
    }

    fn values(read: Vec<Result<i64, StorageError>>) -> Vec<i64> {
        read.into_iter().map(Result::unwrap).collect()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let select = "SELECT 1 AS a, 2 AS b, 3 AS c, 4 AS ab";
        assert_eq!(values(read(select, &["a", "b", "c", "ab"])), [1, 2, 3, 4]);
        assert_eq!(values(read(select, &["ab", "c", "b", "a"])), [4, 3, 2, 1]);
        assert_eq!(
            values(read(select, &["b", "ab", "a", "a", "c"])),
            [2, 4, 1, 1, 3]
        );
    }

    #[test]
    fn a_missing_column_is_corrupt_and_spoils_no_later_read() {
        let read = read("SELECT 1 AS a, 2 AS b", &["a", "nope", "b"]);
        assert!(matches!(&read[1], Err(StorageError::Corrupt(m)) if m.starts_with("nope:")));
        assert_eq!(read[0].as_ref().unwrap(), &1);
        assert_eq!(read[2].as_ref().unwrap(), &2);
    }
}
