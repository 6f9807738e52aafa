//! Whether a database holds exactly this binary's migrations, checked
//! without changing anything, with what an operator should do otherwise.

use super::StorageError;

/// Compares the migrations applied to a database (version, success,
/// checksum, in version order; `None` when it has no migrations table) with
/// a binary's.
pub(super) fn compare_schema(
    migrator: &sqlx::migrate::Migrator,
    applied: Option<Vec<(i64, bool, Vec<u8>)>>,
) -> Result<(), StorageError> {
    let run_migrate = "run `account-service migrate` first";
    let newer =
        "was it migrated by a newer release? Run this binary's own release, or the newer one";
    let Some(applied) = applied else {
        return Err(StorageError::Schema(format!(
            "the database has no schema yet; {run_migrate}"
        )));
    };
    let known: std::collections::HashMap<i64, &[u8]> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    for (version, success, checksum) in &applied {
        if !success {
            return Err(sqlx::migrate::MigrateError::Dirty(*version).into());
        }
        match known.get(version) {
            None => {
                return Err(StorageError::Schema(format!(
                "the database has migration {version}, which this binary does not know ({newer})"
            )))
            }
            Some(k) if *k != checksum.as_slice() => {
                return Err(StorageError::Schema(format!(
                    "migration {version} as applied to the database differs from this binary's"
                )))
            }
            Some(_) => {}
        }
    }
    let pending = known.len().saturating_sub(applied.len());
    if pending > 0 {
        return Err(StorageError::Schema(format!(
            "the database schema is older than this binary ({pending} migration(s) pending); {run_migrate}"
        )));
    }
    Ok(())
}
