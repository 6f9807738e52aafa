//! Reads on SQLite through read-only connections of their own: look-ups of
//! accounts by id, and batches of the event log.
//!
//! Through sqlx, each statement crosses to its connection's own thread and
//! back, each row crosses again, and every column value is copied on the
//! way: for a point read by primary key that costs more than SQLite's
//! search, and for a batch of events more than reading it. These
//! connections answer such reads directly instead. WAL mode lets them read
//! the latest committed state beside the writer, and a read that cannot be
//! answered at once (a busy or missing file, a malformed row) is left to the
//! pooled connections, which wait, retry and report errors as every other
//! statement does. Rows are mapped by [`rows::account`], as the pool's are.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use super::dialect::{not_a_uuid, out_of_range};
use super::rows::{self, Columns};
use super::{sqlite_values, StorageError, StoredEvent};
use crate::domain::Account;

/// Idle connections kept: look-ups run on the async worker threads and
/// event reads are few at once (the event feed bounds them), so no more
/// than this ever read together.
const KEPT: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database file of `options`; `None` for an in-memory
    /// database, which only the pool's own connections can see.
    pub(super) fn of(options: &sqlx::sqlite::SqliteConnectOptions) -> Option<Readers> {
        let path = options.get_filename();
        let name = path.to_string_lossy();
        if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
            return None;
        }
        Some(Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The database file these connections read.
    pub(super) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The accounts `statement` (which selects `sql::account_columns!()`
    /// and takes `param` as its one parameter) returns, or `None` when this read could not be
    /// answered here, for any reason, and should go through the pool.
    pub(super) fn accounts(&self, statement: &str, param: &str) -> Option<Vec<Account>> {
        self.with(|conn| read(conn, statement, [param], |row| rows::account(row)))
    }

    /// The events `statement` (`sql::READ_EVENTS`, whose SQLite text reads
    /// the sequence `$2` and the limit `$3`, and only checks that `$1` and
    /// `$4` are given) returns; `None` as for [`Readers::accounts`].
    pub(super) fn events(
        &self,
        statement: &str,
        after: i64,
        limit: u32,
    ) -> Option<Vec<StoredEvent>> {
        let params: [(&str, &dyn rusqlite::ToSql); 4] =
            [("$1", &"0"), ("$2", &after), ("$3", &limit), ("$4", &"0")];
        self.with(|conn| read(conn, statement, params.as_slice(), |row| rows::event(row)))
    }

    /// Runs `read` on an idle connection (or a new one), which is kept for
    /// the next read.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Option<T>) -> Option<T> {
        let conn = self.take()?;
        let read = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < KEPT {
            idle.push(conn);
        }
        read
    }

    fn take(&self) -> Option<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Some(conn),
            None => self.open().ok(),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait on the async thread: a busy database is the pool's to
        // wait for.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.execute_batch("PRAGMA mmap_size = 268435456")?;
        Ok(conn)
    }
}

/// Runs a statement and maps its rows; `None` on any failure, a malformed
/// row included, so that the pool's read reports it.
fn read<T>(
    conn: &Connection,
    statement: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&InOrder<'_, '_>) -> Result<T, StorageError>,
) -> Option<Vec<T>> {
    let mut statement = conn.prepare_cached(statement).ok()?;
    let mut found = statement.query(params).ok()?;
    let mut mapped = Vec::new();
    while let Some(row) = found.next().ok()? {
        mapped.push(map(&InOrder::new(row)).ok()?);
    }
    Some(mapped)
}

/// A row read by rusqlite, decoded as the pool's rows are. A failure to
/// read a column becomes `Corrupt`, which the caller never reports: it reads
/// through the pool instead.
///
/// rusqlite finds a column by name by asking SQLite for the name of every
/// column before it, which on a look-up by id took about one in twenty of
/// the service's profile samples. Rows are mapped in the order the
/// statement selects, so the column after the last one read is tried first,
/// and is nearly always the one.
struct InOrder<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: Cell<usize>,
}

impl<'r, 's> InOrder<'r, 's> {
    fn new(row: &'r rusqlite::Row<'s>) -> InOrder<'r, 's> {
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
        sqlite_values::load_uuid(self.get(column)?).ok_or_else(|| not_a_uuid(column))
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>, StorageError> {
        sqlite_values::load_time(self.get(column)?).ok_or_else(|| out_of_range(column))
    }

    fn optional_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.get::<Option<i64>>(column)?
            .map(|stored| sqlite_values::load_time(stored).ok_or_else(|| out_of_range(column)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
