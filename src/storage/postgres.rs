//! PostgreSQL storage: the production backend, shared by every instance.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use uuid::Uuid;

use super::{ClaimedMessage, MailFailure, OutboxMessage, Storage, StorageError};
use crate::auth::PasswordHash;
use crate::domain::Account;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const ACCOUNT_COLUMNS: &str = "id, email, username, first_name, last_name, phone_number, \
     address, verified, term_and_condition, created_from, created_at, updated_at";
const OUTBOX_COLUMNS: &str =
    "id, account_id, kind, recipient, subject, text_body, html_body, created_at, attempts";

pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStorage { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn account(row: &PgRow) -> Result<Account, StorageError> {
    Ok(Account {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        phone_number: row.try_get("phone_number")?,
        address: row.try_get("address")?,
        verified: row.try_get("verified")?,
        term_and_condition: row.try_get("term_and_condition")?,
        created_from: row.try_get("created_from")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn claimed(row: &PgRow) -> Result<ClaimedMessage, StorageError> {
    let attempts: i32 = row.try_get("attempts")?;
    Ok(ClaimedMessage {
        message: OutboxMessage {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            kind: row.try_get("kind")?,
            recipient: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            text_body: row.try_get("text_body")?,
            html_body: row.try_get("html_body")?,
            created_at: row.try_get("created_at")?,
        },
        attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_account(
        &self,
        account: &Account,
        password_hash: &PasswordHash,
        mail: &OutboxMessage,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, email, username, password_hash, first_name, last_name, \
             phone_number, address, verified, term_and_condition, created_from, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(account.id)
        .bind(&account.email)
        .bind(&account.username)
        .bind(password_hash.expose())
        .bind(&account.first_name)
        .bind(&account.last_name)
        .bind(&account.phone_number)
        .bind(&account.address)
        .bind(account.verified)
        .bind(account.term_and_condition)
        .bind(&account.created_from)
        .bind(account.created_at)
        .bind(account.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO email_outbox (id, account_id, kind, recipient, subject, text_body, \
             html_body, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(mail.id)
        .bind(mail.account_id)
        .bind(&mail.kind)
        .bind(&mail.recipient)
        .bind(&mail.subject)
        .bind(&mail.text_body)
        .bind(&mail.html_body)
        .bind(mail.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn account_by_id(&self, id: Uuid) -> Result<Account, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        account(&row)
    }

    async fn account_by_email(&self, email: &str) -> Result<Account, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"
        ))
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        account(&row)
    }

    async fn mark_verified(&self, id: Uuid, now: DateTime<Utc>) -> Result<Account, StorageError> {
        let updated = sqlx::query(&format!(
            "UPDATE accounts SET verified = TRUE, updated_at = $2 \
             WHERE id = $1 AND NOT verified RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match updated {
            Some(row) => account(&row),
            None => self.account_by_id(id).await,
        }
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StorageError> {
        // SKIP LOCKED lets workers of several instances claim disjoint rows
        // concurrently instead of queueing on each other's row locks.
        let rows = sqlx::query(&format!(
            "UPDATE email_outbox SET locked_until = $2, attempts = attempts + 1, \
                 last_attempt_at = $1, first_attempt_at = COALESCE(first_attempt_at, $1) \
             WHERE id IN (SELECT id FROM email_outbox \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                   AND (locked_until IS NULL OR locked_until <= $1) \
                 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(claimed).collect()
    }

    async fn mark_mail_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE email_outbox SET status = 'sent', sent_at = $2, locked_until = NULL, \
             last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reschedule_mail(
        &self,
        id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE email_outbox SET next_attempt_at = $2, locked_until = NULL, last_error = $3 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_mail(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        failure: &MailFailure<'_>,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE email_outbox SET status = 'failed', locked_until = NULL, last_error = $2 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(failure.error)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO failed_email_tasks (id, outbox_id, recipient, subject, error_kind, \
                 error, attempts, first_attempt_at, last_attempt_at, failed_at) \
                 SELECT $1, id, recipient, subject, $3, $4, attempts, first_attempt_at, \
                 last_attempt_at, $5 FROM email_outbox WHERE id = $2",
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(failure.kind)
            .bind(failure.error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
