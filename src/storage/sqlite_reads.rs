//! Look-ups of accounts by id on SQLite, read on the calling thread.
//!
//! Through sqlx, each statement crosses to its connection's own thread and
//! back, and every column value is copied on the way: for a point read by
//! primary key that costs more than SQLite's search. These read-only
//! connections answer such look-ups directly instead. WAL mode lets them read
//! the latest committed state beside the writer, and a read that cannot be
//! answered at once (a busy or missing file, a malformed row) is left to the
//! pooled connections, which wait, retry and report errors as every other
//! statement does. Rows are mapped by [`rows::account`], as the pool's are.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::rows;
use super::sqlite::InOrder;
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

    /// The accounts `statement` (which selects `sql::account_columns!()`
    /// and takes `param` as its one parameter) returns, or `None` when this read could not be
    /// answered here, for any reason, and should go through the pool.
    pub(super) fn accounts(&self, statement: &str, param: &str) -> Option<Vec<Account>> {
        let conn = self.take()?;
        let read = read(&conn, statement, param);
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

/// Runs a look-up statement; `None` on any failure, a malformed row
/// included, so that the pool's read reports it.
fn read(conn: &Connection, statement: &str, param: &str) -> Option<Vec<Account>> {
    let mut statement = conn.prepare_cached(statement).ok()?;
    let mut found = statement.query([param]).ok()?;
    let mut accounts = Vec::new();
    while let Some(row) = found.next().ok()? {
        accounts.push(rows::account(&InOrder::new(row)).ok()?);
    }
    Some(accounts)
}
