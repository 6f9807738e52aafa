//! Rows mapped to the storage's types, once for every backend and driver.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Account, MailKind, ProfileImage, Session};

use super::{
    ClaimedMessage, DeadLetter, EventPosition, OutboxMessage, OutboxStatus, StorageError,
    StoredEvent,
};

/// A row read by column name, decoded the way its backend stores values:
/// what every mapping below reads, whichever driver returned the row (sqlx
/// for every statement, rusqlite for SQLite's look-ups by id).
pub(super) trait Columns {
    fn text(&self, column: &str) -> Result<String, StorageError>;
    fn flag(&self, column: &str) -> Result<bool, StorageError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StorageError>;
    /// A `BIGINT` column, or an aggregate count.
    fn bigint(&self, column: &str) -> Result<i64, StorageError>;
    /// An `INTEGER` column.
    fn integer(&self, column: &str) -> Result<i64, StorageError>;
    fn uuid(&self, column: &str) -> Result<Uuid, StorageError>;
    fn time(&self, column: &str) -> Result<DateTime<Utc>, StorageError>;
    fn optional_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StorageError>;
}

/// A row of `sql::account_columns!()`.
pub(super) fn account(row: &(impl Columns + ?Sized)) -> Result<Account, StorageError> {
    Ok(Account {
        id: row.uuid("id")?,
        email: row.text("email")?,
        username: row.text("username")?,
        first_name: row.text("first_name")?,
        last_name: row.text("last_name")?,
        phone_number: row.text("phone_number")?,
        address: row.text("address")?,
        verified: row.flag("verified")?,
        term_and_condition: row.flag("term_and_condition")?,
        created_from: row.text("created_from")?,
        locale: row.text("locale")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        totp_enabled: row.flag("totp_enabled")?,
        image: ProfileImage::from_keys(row.text("image")?, row.text("image_thumbnail")?),
    })
}

/// A row of `sql::outbox_columns!()`.
pub(super) fn claimed(row: &(impl Columns + ?Sized)) -> Result<ClaimedMessage, StorageError> {
    let kind: MailKind = row
        .text("kind")?
        .parse()
        .map_err(|e| StorageError::Corrupt(format!("kind: {e}")))?;
    Ok(ClaimedMessage {
        message: OutboxMessage {
            id: row.uuid("id")?,
            account_id: row.uuid("account_id")?,
            kind,
            recipient: row.text("recipient")?,
            subject: row.text("subject")?,
            text_body: row.text("text_body")?,
            html_body: row.text("html_body")?,
            created_at: row.time("created_at")?,
            locale: row.text("locale")?,
        },
        // Never negative (releases stop at zero); a count past u32 can
        // only mean "exhausted", so it saturates.
        attempts: u32::try_from(row.integer("attempts")?.max(0)).unwrap_or(u32::MAX),
        traceparent: row.text("traceparent")?,
    })
}

/// A row of `sql::DEAD_LETTERS`.
pub(super) fn dead_letter(row: &(impl Columns + ?Sized)) -> Result<DeadLetter, StorageError> {
    Ok(DeadLetter {
        id: row.uuid("id")?,
        outbox_id: row.uuid("outbox_id")?,
        recipient: row.text("recipient")?,
        subject: row.text("subject")?,
        error_kind: row.text("error_kind")?,
        error: row.text("error")?,
        attempts: row.integer("attempts")?,
        first_attempt_at: row.optional_time("first_attempt_at")?,
        last_attempt_at: row.optional_time("last_attempt_at")?,
        failed_at: row.time("failed_at")?,
    })
}

/// The row of `sql::OUTBOX_STATUS`.
pub(super) fn outbox_status(row: &(impl Columns + ?Sized)) -> Result<OutboxStatus, StorageError> {
    Ok(OutboxStatus {
        pending: row.bigint("pending")?,
        in_flight: row.bigint("in_flight")?,
        sent: row.bigint("sent")?,
        failed: row.bigint("failed")?,
        oldest_pending: row.optional_time("oldest_pending")?,
    })
}

/// A row of `sql::APPLIED_MIGRATIONS`: version, success, checksum.
pub(super) fn applied_migration(
    row: &(impl Columns + ?Sized),
) -> Result<(i64, bool, Vec<u8>), StorageError> {
    Ok((
        row.bigint("version")?,
        row.flag("success")?,
        row.bytes("checksum")?,
    ))
}

/// A row of `sql::READ_EVENTS`.
pub(super) fn event(row: &(impl Columns + ?Sized)) -> Result<StoredEvent, StorageError> {
    let xid = row
        .text("position_xid")?
        .parse()
        .map_err(|_| StorageError::Corrupt("xid is not a transaction id".into()))?;
    Ok(StoredEvent {
        position: EventPosition {
            xid,
            seq: row.bigint("seq")?,
        },
        kind: row.integer("type")?,
        account_id: row.uuid("account_id")?,
        occurred_at: row.time("occurred_at")?,
        session_id: match row.text("session")?.as_str() {
            "" => None,
            text => Some(
                Uuid::parse_str(text)
                    .map_err(|_| StorageError::Corrupt("session_id is not a UUID".into()))?,
            ),
        },
        traceparent: row.text("traceparent")?,
    })
}

/// A row of `sql::session_columns!()`.
pub(super) fn session(row: &(impl Columns + ?Sized)) -> Result<Session, StorageError> {
    Ok(Session {
        id: row.uuid("id")?,
        account_id: row.uuid("account_id")?,
        created_at: row.time("created_at")?,
        last_used_at: row.time("last_used_at")?,
        user_agent: row.text("user_agent")?,
        ip_address: row.text("ip_address")?,
        two_step: row.flag("two_step")?,
    })
}
