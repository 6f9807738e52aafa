//! Rows mapped to the storage's types, once for every backend.

use crate::domain::Account;
use crate::mail::MailKind;

use super::dialect::{DbRow, Engine};
use super::{
    ClaimedMessage, DeadLetter, EventPosition, OutboxMessage, OutboxStatus, StorageError,
    StoredEvent,
};

/// A row of `sql::account_columns!()`.
pub(super) fn account<D: Engine>(row: &DbRow<D>) -> Result<Account, StorageError> {
    Ok(Account {
        id: D::uuid(row, "id")?,
        email: D::text(row, "email")?,
        username: D::text(row, "username")?,
        first_name: D::text(row, "first_name")?,
        last_name: D::text(row, "last_name")?,
        phone_number: D::text(row, "phone_number")?,
        address: D::text(row, "address")?,
        verified: D::flag(row, "verified")?,
        term_and_condition: D::flag(row, "term_and_condition")?,
        created_from: D::text(row, "created_from")?,
        locale: D::text(row, "locale")?,
        created_at: D::time(row, "created_at")?,
        updated_at: D::time(row, "updated_at")?,
    })
}

/// A row of `sql::outbox_columns!()`.
pub(super) fn claimed<D: Engine>(row: &DbRow<D>) -> Result<ClaimedMessage, StorageError> {
    let kind: MailKind = D::text(row, "kind")?
        .parse()
        .map_err(|e| StorageError::Corrupt(format!("kind: {e}")))?;
    Ok(ClaimedMessage {
        message: OutboxMessage {
            id: D::uuid(row, "id")?,
            account_id: D::uuid(row, "account_id")?,
            kind,
            recipient: D::text(row, "recipient")?,
            subject: D::text(row, "subject")?,
            text_body: D::text(row, "text_body")?,
            html_body: D::text(row, "html_body")?,
            created_at: D::time(row, "created_at")?,
            locale: D::text(row, "locale")?,
        },
        // Never negative (releases stop at zero); a count past u32 can
        // only mean "exhausted", so it saturates.
        attempts: u32::try_from(D::integer(row, "attempts")?.max(0)).unwrap_or(u32::MAX),
    })
}

/// A row of `sql::DEAD_LETTERS`.
pub(super) fn dead_letter<D: Engine>(row: &DbRow<D>) -> Result<DeadLetter, StorageError> {
    Ok(DeadLetter {
        id: D::uuid(row, "id")?,
        outbox_id: D::uuid(row, "outbox_id")?,
        recipient: D::text(row, "recipient")?,
        subject: D::text(row, "subject")?,
        error_kind: D::text(row, "error_kind")?,
        error: D::text(row, "error")?,
        attempts: D::integer(row, "attempts")?,
        first_attempt_at: D::optional_time(row, "first_attempt_at")?,
        last_attempt_at: D::optional_time(row, "last_attempt_at")?,
        failed_at: D::time(row, "failed_at")?,
    })
}

/// The row of `sql::OUTBOX_STATUS`.
pub(super) fn outbox_status<D: Engine>(row: &DbRow<D>) -> Result<OutboxStatus, StorageError> {
    Ok(OutboxStatus {
        pending: D::bigint(row, "pending")?,
        in_flight: D::bigint(row, "in_flight")?,
        sent: D::bigint(row, "sent")?,
        failed: D::bigint(row, "failed")?,
        oldest_pending: D::optional_time(row, "oldest_pending")?,
    })
}

/// A row of `sql::APPLIED_MIGRATIONS`: version, success, checksum.
pub(super) fn applied_migration<D: Engine>(
    row: &DbRow<D>,
) -> Result<(i64, bool, Vec<u8>), StorageError> {
    Ok((
        D::bigint(row, "version")?,
        D::flag(row, "success")?,
        D::bytes(row, "checksum")?,
    ))
}

/// A row of `sql::READ_EVENTS`.
pub(super) fn event<D: Engine>(row: &DbRow<D>) -> Result<StoredEvent, StorageError> {
    let xid = D::text(row, "position_xid")?
        .parse()
        .map_err(|_| StorageError::Corrupt("xid is not a transaction id".into()))?;
    Ok(StoredEvent {
        position: EventPosition {
            xid,
            seq: D::bigint(row, "seq")?,
        },
        kind: D::integer(row, "type")?,
        account_id: D::uuid(row, "account_id")?,
        occurred_at: D::time(row, "occurred_at")?,
    })
}
