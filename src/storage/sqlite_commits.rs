//! Telling, on an SQLite file, that another connection has committed:
//! SQLite has no notification that crosses processes, so what another
//! process writes (an operator's `outbox retry`) is seen by polling
//! `PRAGMA data_version` on one connection of our own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the version is read. Each read takes microseconds and touches
/// only the WAL index in shared memory, so a mail queued by another process
/// waits half a second at most instead of a whole poll interval.
const EVERY: Duration = Duration::from_millis(500);

/// Wakes `changed` whenever the data version of `path` moves, which it does
/// when any other connection (the pool's included) commits, until `stop`.
pub(super) async fn watch(path: &Path, changed: Arc<Notify>, stop: CancellationToken) {
    let path = path.to_path_buf();
    let mut watcher = Watcher {
        conn: None,
        last: None,
        failing: false,
    };
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let path = path.clone();
        // Off the async threads: opening the file, rarely, does real I/O.
        let polled = tokio::task::spawn_blocking(move || {
            let moved = watcher.poll(&path);
            (watcher, moved)
        })
        .await;
        let Ok((back, moved)) = polled else {
            return;
        };
        watcher = back;
        if moved {
            changed.notify_one();
        }
    }
}

/// The connection whose data version is read, and the last version seen.
struct Watcher {
    conn: Option<Connection>,
    last: Option<i64>,
    /// Whether the last read failed, so that a failure is logged once.
    failing: bool,
}

impl Watcher {
    /// Reads the version; whether it moved since the last read. A new
    /// connection has a version of its own, so after a lost one anything
    /// may have been committed meanwhile and the answer is yes.
    fn poll(&mut self, path: &Path) -> bool {
        match self.read(path) {
            Ok(version) => {
                self.failing = false;
                let moved = self.last != Some(version) && self.last.is_some();
                self.last = Some(version);
                moved
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(error = %e, "cannot watch the database for other processes' commits; their mail waits for the poll");
                }
                self.conn = None;
                // Reported as moved once the version is read again.
                if self.last.is_some() {
                    self.last = Some(i64::MIN);
                }
                false
            }
        }
    }

    fn read(&mut self, path: &Path) -> rusqlite::Result<i64> {
        let conn = match &self.conn {
            Some(conn) => conn,
            None => self.conn.insert(open(path)?),
        };
        conn.query_row("PRAGMA data_version", [], |row| row.get(0))
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A busy file is read again at the next tick rather than waited for.
    conn.busy_timeout(Duration::ZERO)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_connections_commit_moves_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        let mut watcher = Watcher {
            conn: None,
            last: None,
            failing: false,
        };
        assert!(!watcher.poll(&path), "the first read is the baseline");
        assert!(!watcher.poll(&path));
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert!(watcher.poll(&path));
        assert!(!watcher.poll(&path));
        // Another connection's reads change nothing.
        writer
            .query_row("SELECT COUNT(*) FROM t", [], |_| Ok(()))
            .unwrap();
        assert!(!watcher.poll(&path));
    }
}
