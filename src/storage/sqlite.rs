//! SQLite dialect: the embedded default, one file, WAL mode. Ids are stored
//! as UUID text and times as Unix microseconds.

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

use super::dialect::{ConnectOptions, Dialect, DirectAccess};
use super::sql::{self, Flavour};
use super::sqlite_reads::Readers;
use super::sqlite_values;
use super::{sqlite_commits, StorageError, StoredEvent};
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
        sqlite_values::load_uuid(stored)
    }

    fn store_uuids(ids: &[Uuid]) -> String {
        uuid_list(ids)
    }

    fn store_time(t: DateTime<Utc>) -> i64 {
        t.timestamp_micros()
    }

    fn load_time(stored: i64) -> Option<DateTime<Utc>> {
        sqlite_values::load_time(stored)
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

    fn events_after(&self, after: i64, limit: u32) -> Option<Vec<StoredEvent>> {
        self.events(sql::READ_EVENTS.sqlite, after, limit)
    }

    async fn watch_commits(&self, changed: Arc<Notify>, stop: CancellationToken) {
        sqlite_commits::watch(self.path(), changed, stop).await;
    }
}
