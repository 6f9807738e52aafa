//! Look-ups of accounts by id on SQLite, read on the calling thread.
//!
//! Through sqlx, each statement crosses to its connection's own thread and
//! back, and every column value is copied on the way: for a point read by
//! primary key that costs more than SQLite's search. These read-only
//! connections answer such look-ups directly instead. WAL mode lets them read
//! the latest committed state beside the writer, and a read that cannot be
//! answered at once (a busy or missing file, a malformed row) is left to the
//! pooled connections, which wait, retry and report errors as every other
//! statement does.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row};
use uuid::Uuid;

use super::sql;
use crate::domain::Account;

/// Idle connections kept; look-ups run on the async worker threads, so no
/// more than those ever read at once.
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

    /// The live accounts among `ids` (each at most once), or `None` when this
    /// read could not be answered here and should go through the pool.
    pub(super) fn accounts_by_ids(&self, ids: &[Uuid]) -> Option<Vec<Account>> {
        let conn = self.take()?;
        let read = match ids {
            [id] => read(&conn, sql::ACCOUNT_BY_ID.sqlite, &id.to_string()),
            _ => read(
                &conn,
                sql::ACCOUNTS_BY_IDS.sqlite,
                &super::sqlite::uuid_list(ids),
            ),
        };
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < KEPT {
            idle.push(conn);
        }
        read.ok()?
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

/// Runs a look-up statement; `Ok(None)` when a row is malformed, so that
/// the pool's read reports it.
fn read(conn: &Connection, statement: &str, param: &str) -> rusqlite::Result<Option<Vec<Account>>> {
    let mut statement = conn.prepare_cached(statement)?;
    let mut rows = statement.query([param])?;
    let mut accounts = Vec::new();
    while let Some(row) = rows.next()? {
        match account(row)? {
            Some(account) => accounts.push(account),
            None => return Ok(None),
        }
    }
    Ok(Some(accounts))
}

/// A row of `sql::account_columns!()`, in the SQLite dialect's encoding
/// (UUID text, Unix microseconds, 0/1 flags). Columns are taken by position,
/// in the order of that list.
fn account(row: &Row<'_>) -> rusqlite::Result<Option<Account>> {
    let time = |column: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(DateTime::from_timestamp_micros(row.get(column)?))
    };
    let id: String = row.get(0)?;
    let (Ok(id), Some(created_at), Some(updated_at)) = (Uuid::parse_str(&id), time(11)?, time(12)?)
    else {
        return Ok(None);
    };
    Ok(Some(Account {
        id,
        email: row.get(1)?,
        username: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        phone_number: row.get(5)?,
        address: row.get(6)?,
        verified: row.get(7)?,
        term_and_condition: row.get(8)?,
        created_from: row.get(9)?,
        locale: row.get(10)?,
        created_at,
        updated_at,
    }))
}
