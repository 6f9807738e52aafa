//! Every statement the storage runs, with its PostgreSQL and SQLite text side
//! by side (one text where the dialects agree; SQLite reads `$n` as well),
//! one file per concern; here, what they share and the schema checks.
//!
//! Values whose representation differs (UUIDs, times, lists of UUIDs) are
//! bound and read by each backend's `Dialect`, so the texts differ only where
//! the SQL itself does.

/// Which of a statement's texts a backend runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Flavour {
    Postgres,
    Sqlite,
}

/// One statement in both dialects.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sql<T = &'static str> {
    pub postgres: T,
    pub sqlite: T,
}

impl<T: Copy> Sql<T> {
    pub(super) fn text(&self, flavour: Flavour) -> T {
        match flavour {
            Flavour::Postgres => self.postgres,
            Flavour::Sqlite => self.sqlite,
        }
    }
}

impl Sql {
    /// A statement both dialects spell the same way.
    pub(super) const fn both(text: &'static str) -> Self {
        Sql {
            postgres: text,
            sqlite: text,
        }
    }
}

macro_rules! account_columns {
    () => {
        "id, email, username, first_name, last_name, phone_number, address, verified, \
         term_and_condition, created_from, locale, created_at, updated_at, totp_enabled, image, \
         image_thumbnail"
    };
}

macro_rules! outbox_columns {
    () => {
        "id, account_id, kind, recipient, subject, text_body, html_body, created_at, attempts, \
         locale, traceparent"
    };
}

// The statements by concern. Declared after the column lists above, which
// their texts use.
mod accounts;
mod codes;
mod credentials;
mod events;
mod limits;
mod media;
mod operations;
mod outbox;
mod second_factor;
mod sessions;

pub(super) use accounts::*;
pub(super) use codes::*;
pub(super) use credentials::*;
pub(super) use events::*;
pub(super) use limits::*;
pub(super) use media::*;
pub(super) use operations::*;
pub(super) use outbox::*;
pub(super) use second_factor::*;
pub(super) use sessions::*;

/// NOTIFY channel that tells every instance's worker that mail was queued.
pub(super) const MAIL_CHANNEL: &str = "email_outbox";

/// NOTIFY channel on which `account_events`' trigger announces new events.
pub(super) const EVENTS_CHANNEL: &str = "account_events";

pub(super) const PING: Sql = Sql::both("SELECT 1");

/// Wakes the workers of every instance (delivered at commit). A SQLite
/// database has one process; its workers are woken in-process.
pub(super) const NOTIFY_WORKERS: Sql<Option<&str>> = Sql {
    postgres: Some("SELECT pg_notify($1, '')"),
    sqlite: None,
};

/// Checks the outbox's account reference at commit instead of at each
/// statement, for the rest of the transaction. PostgreSQL's constraint is
/// declared deferred by migration 4; SQLite resets the pragma itself when the
/// transaction ends.
pub(super) const DEFER_FOREIGN_KEYS: Sql<Option<&str>> = Sql {
    postgres: None,
    sqlite: Some("PRAGMA defer_foreign_keys = ON"),
};

/// One row when the migrations table exists, none otherwise.
pub(super) const MIGRATIONS_TABLE: Sql = Sql {
    postgres: "SELECT 1 AS present WHERE to_regclass('_sqlx_migrations') IS NOT NULL",
    sqlite: "SELECT 1 AS present FROM sqlite_master \
             WHERE type = 'table' AND name = '_sqlx_migrations'",
};

/// The migrations applied to a database.
pub(super) const APPLIED_MIGRATIONS: Sql =
    Sql::both("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version");
