//! SQLite storage: the embedded default, one file, WAL mode.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::Row;
use uuid::Uuid;

use super::{
    ClaimedMessage, DeadLetter, MailFailure, OutboxMessage, OutboxStatus, Storage, StorageError,
};
use crate::auth::PasswordHash;
use crate::domain::Account;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const ACCOUNT_COLUMNS: &str = "id, email, username, first_name, last_name, phone_number, \
     address, verified, term_and_condition, created_from, created_at, updated_at";
const OUTBOX_COLUMNS: &str =
    "id, account_id, kind, recipient, subject, text_body, html_body, created_at, attempts";

pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    /// A pool that connects on first use.
    pub fn open(url: &str, pool: super::PoolSettings) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Writers queue on the database lock instead of failing at once.
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(pool.max_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect_lazy_with(options);
        Ok(SqliteStorage { pool })
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, StorageError> {
    let v: i64 = row.try_get(column)?;
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| StorageError::Corrupt(format!("{column} out of range")))
}

fn optional_time(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>, StorageError> {
    let v: Option<i64> = row.try_get(column)?;
    v.map(|v| {
        DateTime::from_timestamp_micros(v)
            .ok_or_else(|| StorageError::Corrupt(format!("{column} out of range")))
    })
    .transpose()
}

fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid, StorageError> {
    let v: String = row.try_get(column)?;
    Uuid::parse_str(&v).map_err(|_| StorageError::Corrupt(format!("{column} is not a UUID")))
}

fn account(row: &SqliteRow) -> Result<Account, StorageError> {
    Ok(Account {
        id: uuid(row, "id")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        phone_number: row.try_get("phone_number")?,
        address: row.try_get("address")?,
        verified: row.try_get("verified")?,
        term_and_condition: row.try_get("term_and_condition")?,
        created_from: row.try_get("created_from")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn claimed(row: &SqliteRow) -> Result<ClaimedMessage, StorageError> {
    let attempts: i64 = row.try_get("attempts")?;
    Ok(ClaimedMessage {
        message: OutboxMessage {
            id: uuid(row, "id")?,
            account_id: uuid(row, "account_id")?,
            kind: super::mail_kind(row.try_get("kind")?)?,
            recipient: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            text_body: row.try_get("text_body")?,
            html_body: row.try_get("html_body")?,
            created_at: time(row, "created_at")?,
        },
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

async fn insert_mail(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    mail: &OutboxMessage,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO email_outbox (id, account_id, kind, recipient, subject, text_body, \
         html_body, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )
    .bind(mail.id.to_string())
    .bind(mail.account_id.to_string())
    .bind(mail.kind.as_str())
    .bind(&mail.recipient)
    .bind(&mail.subject)
    .bind(&mail.text_body)
    .bind(&mail.html_body)
    .bind(micros(mail.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn migrate(&self) -> Result<(), StorageError> {
        // On a connection of its own, closed afterwards: a migration that
        // fails part-way leaves the migrator's session lock behind, and a
        // pooled connection would keep holding it.
        let mut conn = self.pool.acquire().await?.detach();
        let result = MIGRATOR.run_direct(&mut conn).await;
        let _ = sqlx::Connection::close(conn).await;
        result?;
        Ok(())
    }

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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .bind(account.id.to_string())
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
        .bind(micros(account.created_at))
        .bind(micros(account.updated_at))
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut tx, mail).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn account_by_id(&self, id: Uuid) -> Result<Account, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"
        ))
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?;
        account(&row)
    }

    async fn account_by_email(&self, email: &str) -> Result<Account, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = ?1"
        ))
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        account(&row)
    }

    async fn mark_verified(&self, id: Uuid, now: DateTime<Utc>) -> Result<Account, StorageError> {
        let updated = sqlx::query(&format!(
            "UPDATE accounts SET verified = 1, updated_at = ?2 \
             WHERE id = ?1 AND verified = 0 RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(micros(now))
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
        claim: Uuid,
    ) -> Result<Vec<ClaimedMessage>, StorageError> {
        // One statement: SQLite takes the write lock before reading, so two
        // workers can never claim the same row.
        let rows = sqlx::query(&format!(
            "UPDATE email_outbox SET locked_until = ?2, attempts = attempts + 1, claim_token = ?4, \
                 last_attempt_at = ?1, first_attempt_at = COALESCE(first_attempt_at, ?1) \
             WHERE id IN (SELECT id FROM email_outbox \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 \
                   AND (locked_until IS NULL OR locked_until <= ?1) \
                 ORDER BY next_attempt_at LIMIT ?3) \
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(micros(now))
        .bind(micros(lease_until))
        .bind(i64::from(limit))
        .bind(claim.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(claimed).collect()
    }

    async fn mark_mail_sent(
        &self,
        ids: &[Uuid],
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "UPDATE email_outbox SET status = 'sent', sent_at = ?, locked_until = NULL, \
             claim_token = NULL, last_error = NULL \
             WHERE claim_token = ? AND status = 'pending' AND id IN ({placeholders})"
        );
        let mut query = sqlx::query(&sql).bind(micros(now)).bind(claim.to_string());
        for id in ids {
            query = query.bind(id.to_string());
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    async fn reschedule_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE email_outbox SET next_attempt_at = ?2, locked_until = NULL, claim_token = NULL, \
             last_error = ?3 WHERE id = ?1 AND claim_token = ?4 AND status = 'pending'",
        )
        .bind(id.to_string())
        .bind(micros(next_attempt_at))
        .bind(error)
        .bind(claim.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_mail(
        &self,
        id: Uuid,
        claim: Uuid,
        now: DateTime<Utc>,
        failure: &MailFailure<'_>,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE email_outbox SET status = 'failed', locked_until = NULL, claim_token = NULL, \
             last_error = ?2 WHERE id = ?1 AND claim_token = ?3 AND status = 'pending'",
        )
        .bind(id.to_string())
        .bind(failure.error)
        .bind(claim.to_string())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO failed_email_tasks (id, outbox_id, recipient, subject, error_kind, \
                 error, attempts, first_attempt_at, last_attempt_at, failed_at) \
                 SELECT ?1, id, recipient, subject, ?3, ?4, attempts, first_attempt_at, \
                 last_attempt_at, ?5 FROM email_outbox WHERE id = ?2",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(id.to_string())
            .bind(failure.kind)
            .bind(failure.error)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_mail(&self, ids: &[Uuid], claim: Uuid) -> Result<u64, StorageError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "UPDATE email_outbox SET locked_until = NULL, claim_token = NULL, \
             attempts = MAX(attempts - 1, 0) \
             WHERE claim_token = ? AND status = 'pending' AND id IN ({placeholders})"
        );
        let mut query = sqlx::query(&sql).bind(claim.to_string());
        for id in ids {
            query = query.bind(id.to_string());
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    async fn queue_mail(&self, mail: &OutboxMessage) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        insert_mail(&mut tx, mail).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn request_resend(
        &self,
        email: &str,
        now: DateTime<Utc>,
        cooldown_start: DateTime<Utc>,
        mail: &OutboxMessage,
        deliver: bool,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let mut tx = self.pool.begin().await?;
        // Reset by SQLite itself when the transaction ends.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        // One atomic upsert: of two concurrent requests only one can win.
        let claimed = sqlx::query(
            "INSERT INTO resend_cooldowns (email, last_requested_at) VALUES (?1, ?2) \
             ON CONFLICT (email) DO UPDATE SET last_requested_at = excluded.last_requested_at \
             WHERE resend_cooldowns.last_requested_at <= ?3 RETURNING email",
        )
        .bind(email)
        .bind(micros(now))
        .bind(micros(cooldown_start))
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            let row =
                sqlx::query("SELECT last_requested_at FROM resend_cooldowns WHERE email = ?1")
                    .bind(email)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.rollback().await?;
            return Ok(Some(time(&row, "last_requested_at")?));
        }
        // The mail is written in every case and removed again when there is
        // nobody to send it to: the same statements and nearly the same work
        // for every address. Foreign keys are checked at commit in this
        // transaction, so a removed row (of an unknown address) is never checked.
        insert_mail(&mut tx, mail).await?;
        sqlx::query("DELETE FROM email_outbox WHERE id = ?1 AND NOT ?2")
            .bind(mail.id.to_string())
            .bind(deliver)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn prune_resend_cooldowns(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM resend_cooldowns WHERE last_requested_at < ?1")
            .bind(micros(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn check_schema(&self) -> Result<(), StorageError> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await?;
        let applied = match exists {
            None => None,
            Some(_) => Some(
                sqlx::query_as::<_, (i64, bool, Vec<u8>)>(super::APPLIED_MIGRATIONS)
                    .fetch_all(&self.pool)
                    .await?,
            ),
        };
        super::compare_schema(&MIGRATOR, applied)
    }

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "DELETE FROM email_outbox WHERE status = 'sent' AND sent_at < ?1 \
             AND id NOT IN (SELECT outbox_id FROM failed_email_tasks)",
        )
        .bind(micros(sent_before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<OutboxStatus, StorageError> {
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(status = 'pending'), 0) AS pending, \
               COALESCE(SUM(status = 'pending' AND locked_until > ?1), 0) AS in_flight, \
               COALESCE(SUM(status = 'sent'), 0) AS sent, \
               COALESCE(SUM(status = 'failed'), 0) AS failed, \
               MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest_pending \
             FROM email_outbox",
        )
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStatus {
            pending: row.try_get("pending")?,
            in_flight: row.try_get("in_flight")?,
            sent: row.try_get("sent")?,
            failed: row.try_get("failed")?,
            oldest_pending: optional_time(&row, "oldest_pending")?,
        })
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, outbox_id, recipient, subject, error_kind, error, attempts, \
             first_attempt_at, last_attempt_at, failed_at FROM failed_email_tasks \
             WHERE retried_at IS NULL ORDER BY failed_at DESC, id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    id: uuid(row, "id")?,
                    outbox_id: uuid(row, "outbox_id")?,
                    recipient: row.try_get("recipient")?,
                    subject: row.try_get("subject")?,
                    error_kind: row.try_get("error_kind")?,
                    error: row.try_get("error")?,
                    attempts: row.try_get("attempts")?,
                    first_attempt_at: optional_time(row, "first_attempt_at")?,
                    last_attempt_at: optional_time(row, "last_attempt_at")?,
                    failed_at: time(row, "failed_at")?,
                })
            })
            .collect()
    }

    async fn retry_dead_letters(
        &self,
        id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let id = id.map(|id| id.to_string());
        let mut tx = self.pool.begin().await?;
        let requeued: Vec<String> = sqlx::query_scalar(
            "UPDATE email_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?1, \
                 locked_until = NULL, claim_token = NULL, last_error = NULL, \
                 first_attempt_at = NULL, last_attempt_at = NULL \
             WHERE status = 'failed' AND id IN (SELECT outbox_id FROM failed_email_tasks \
                 WHERE retried_at IS NULL AND (?2 IS NULL OR id = ?2)) \
             RETURNING id",
        )
        .bind(micros(now))
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        // Only the dead letters whose message went back to the queue.
        for outbox_id in &requeued {
            sqlx::query(
                "UPDATE failed_email_tasks SET retried_at = ?1 \
                 WHERE retried_at IS NULL AND outbox_id = ?2 AND (?3 IS NULL OR id = ?3)",
            )
            .bind(micros(now))
            .bind(outbox_id)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(requeued.len() as u64)
    }
}
