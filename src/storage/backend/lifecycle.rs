//! [`Lifecycle`] over a dialect: migrations, the schema check, pings, the
//! commit hooks and shutdown.

use async_trait::async_trait;

use super::SqlStorage;
use crate::storage::dialect::Engine;
use crate::storage::schema::compare_schema;
use crate::storage::sql;
use crate::storage::{rows, CommitHooks, Lifecycle, StorageError};

#[async_trait]
impl<D: Engine> Lifecycle for SqlStorage<D> {
    async fn migrate(&self) -> Result<(), StorageError> {
        // On a connection of its own, closed afterwards: a migration that
        // fails part-way leaves the migrator's session lock behind, and a
        // pooled connection would keep holding it.
        let mut conn = self.pool.acquire().await?.detach();
        let result = D::MIGRATOR.run_direct(&mut conn).await;
        let _ = sqlx::Connection::close(conn).await;
        result?;
        Ok(())
    }

    async fn check_schema(&self) -> Result<(), StorageError> {
        let applied = if self.fetch(&sql::MIGRATIONS_TABLE, &[]).await?.is_empty() {
            None
        } else {
            let rows = self.fetch(&sql::APPLIED_MIGRATIONS, &[]).await?;
            Some(
                rows.iter()
                    .map(|row| rows::applied_migration(&D::row(row)))
                    .collect::<Result<_, _>>()?,
            )
        };
        compare_schema(&D::MIGRATOR, applied)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.execute(&sql::PING, &[]).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn set_commit_hooks(&self, hooks: CommitHooks) {
        *self.hooks.write().unwrap_or_else(|p| p.into_inner()) = hooks;
    }
}
