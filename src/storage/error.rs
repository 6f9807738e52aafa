//! What can go wrong in storage, told apart by error kind at the driver's
//! edge: conflicts, missing rows, an unreachable database, a schema to fix.

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique key (the e-mail address) is already taken.
    #[error("a row with the same unique key already exists")]
    Conflict,
    #[error("no matching row")]
    NotFound,
    /// The database cannot be reached; worth retrying later.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database has not been reached (and migrated) since start-up.
    #[error("the database has not been reached yet")]
    NotReady,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("a stored value is malformed: {0}")]
    Corrupt(String),
    /// The database's schema does not match this binary's migrations: not
    /// worth retrying, an operator must act.
    #[error("{0}")]
    Schema(String),
}

/// Whether a database error code means the server is going away, starting
/// or out of connections (worth retrying elsewhere or later), rather than a
/// problem with the statement. PostgreSQL: SQLSTATE class 08 (connection
/// exception), 57P (operator intervention: shutdown, crash, starting up) and
/// 53300 (too many connections). SQLite: the database stayed locked by
/// another writer past the busy timeout (primary codes 5 and 6).
pub fn is_unavailable_code(postgres: bool, code: &str) -> bool {
    if postgres {
        code.starts_with("08") || code.starts_with("57P") || code == "53300"
    } else {
        code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StorageError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StorageError::Conflict,
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|code| {
                    let postgres = db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some();
                    is_unavailable_code(postgres, &code)
                }) =>
            {
                StorageError::Unavailable(e)
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e),
            other => StorageError::Database(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            // The database going away mid-migration is worth waiting for;
            // a migration its SQL cannot apply is not.
            sqlx::migrate::MigrateError::ExecuteMigration(inner, v) => match inner.into() {
                e @ StorageError::Unavailable(_) => e,
                e => StorageError::Schema(format!(
                    "migration {v} cannot be applied: {}",
                    crate::telemetry::error_chain(&e)
                )),
            },
            sqlx::migrate::MigrateError::VersionMissing(v) => StorageError::Schema(format!(
                "the database has migration {v}, which this binary does not know \
                 (was it migrated by a newer release?)"
            )),
            sqlx::migrate::MigrateError::VersionMismatch(v) => StorageError::Schema(format!(
                "migration {v} as applied to the database differs from this binary's"
            )),
            sqlx::migrate::MigrateError::Dirty(v) => StorageError::Schema(format!(
                "migration {v} failed part-way; repair the database before starting"
            )),
            other => StorageError::Database(sqlx::Error::Migrate(Box::new(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_unavailable_code;

    #[test]
    fn codes_that_mean_try_again() {
        for code in [
            "08000", "08003", "08006", "08P01", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(is_unavailable_code(true, code), "{code}");
        }
        for code in ["23505", "22021", "53100", "57014", "42P01", "40001"] {
            assert!(!is_unavailable_code(true, code), "{code}");
        }
        // SQLite: BUSY, LOCKED and their extended codes (BUSY_SNAPSHOT = 517).
        for code in ["5", "6", "261", "517", "262"] {
            assert!(is_unavailable_code(false, code), "{code}");
        }
        for code in ["1", "19", "2067", "08006"] {
            assert!(!is_unavailable_code(false, code), "{code}");
        }
    }
}
