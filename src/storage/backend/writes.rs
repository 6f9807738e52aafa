//! A write transaction, which runs the commit hooks of what it wrote once it
//! commits, and the statements that several writes share.

use std::sync::RwLock;

use chrono::{DateTime, Utc};
use sqlx::Transaction;
use uuid::Uuid;

use super::run_hooks;
use crate::auth::StoredCode;
use crate::domain::{Account, EventType};
use crate::storage::dialect::{Engine, Param};
use crate::storage::hooks::{CommitHooks, Wakes};
use crate::storage::sql::{self, Sql};
use crate::storage::{OutboxMessage, StorageError};

/// A write transaction, holding the writer's turn where there is one.
pub(super) struct WriteTx<'s, Db: sqlx::Database> {
    tx: Transaction<'static, Db>,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    hooks: &'s RwLock<CommitHooks>,
    /// What the commit announces: set by the statements below that queue
    /// mail or write events.
    wakes: Wakes,
}

impl<'s, Db: sqlx::Database> WriteTx<'s, Db> {
    pub(super) fn new(
        tx: Transaction<'static, Db>,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
        hooks: &'s RwLock<CommitHooks>,
    ) -> Self {
        WriteTx {
            tx,
            turn,
            hooks,
            wakes: Wakes::default(),
        }
    }

    /// Notes that the transaction wrote account events (in a statement of
    /// its caller's, rather than through [`insert_event`]).
    pub(super) fn wrote_events(&mut self) {
        self.wakes.events_written = true;
    }

    /// Commits, then wakes whoever waits for what was written.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        // The turn is given up first: whoever is woken may write at once.
        drop(self.turn);
        run_hooks(self.hooks, self.wakes);
        Ok(())
    }

    /// Rolls back; nothing is announced.
    pub(super) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<Db: sqlx::Database> std::ops::Deref for WriteTx<'_, Db> {
    type Target = Db::Connection;

    fn deref(&self) -> &Db::Connection {
        &self.tx
    }
}

impl<Db: sqlx::Database> std::ops::DerefMut for WriteTx<'_, Db> {
    fn deref_mut(&mut self) -> &mut Db::Connection {
        &mut self.tx
    }
}

/// Runs a statement that only some dialects need; a no-op in the others.
pub(super) async fn execute_if_needed<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    statement: &Sql<Option<&'static str>>,
    params: &[Param<'_>],
) -> Result<(), StorageError> {
    if let Some(text) = D::pick(statement) {
        D::execute(tx, &Sql::both(text), params).await?;
    }
    Ok(())
}

/// Wakes the delivery workers once the transaction commits: those of other
/// instances by notification (where the backend has one), this process's
/// through the commit hooks.
pub(super) async fn notify_workers<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
) -> Result<(), StorageError> {
    tx.wakes.mail_queued = true;
    execute_if_needed::<D>(tx, &sql::NOTIFY_WORKERS, &[Param::Text(sql::MAIL_CHANNEL)]).await
}

pub(super) async fn insert_mail_row<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    mail: &OutboxMessage,
) -> Result<(), StorageError> {
    let traceparent = current_traceparent();
    D::execute(
        tx,
        &sql::INSERT_MAIL,
        &[
            Param::Uuid(mail.id),
            Param::Uuid(mail.account_id),
            Param::Text(mail.kind.as_str()),
            Param::Text(&mail.recipient),
            Param::Text(&mail.subject),
            Param::Text(&mail.text_body),
            Param::Text(&mail.html_body),
            Param::Time(mail.created_at),
            Param::Text(&mail.locale),
            Param::Text(&traceparent),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts an outbox row and notifies the workers.
pub(super) async fn insert_mail<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    mail: &OutboxMessage,
) -> Result<(), StorageError> {
    insert_mail_row::<D>(tx, mail).await?;
    notify_workers::<D>(tx).await
}

/// Records a change to an account in the transaction that makes it.
/// The call making a write, for the spans of later work (a mail's
/// delivery, an event's sending) to link to; empty without an exporter.
pub(super) fn current_traceparent() -> String {
    crate::telemetry::traceparent(&crate::telemetry::span_context(&tracing::Span::current()))
        .unwrap_or_default()
}

pub(super) async fn insert_event<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    kind: EventType,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    insert_session_event::<D>(tx, kind, account_id, None, now).await
}

/// Records a change to an account, about one of its sessions when `session`
/// is set, in the transaction that makes it.
pub(super) async fn insert_session_event<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    kind: EventType,
    account_id: Uuid,
    session: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    D::execute(
        tx,
        &sql::INSERT_EVENT,
        &[
            Param::Int(kind.number()),
            Param::Uuid(account_id),
            Param::Time(now),
            Param::OptionalUuid(session),
            Param::Text(&current_traceparent()),
        ],
    )
    .await?;
    tx.wrote_events();
    Ok(())
}

/// Stores an account's newest confirmation code when `keep` is set (the
/// statement runs either way).
pub(super) async fn store_code<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    code: &StoredCode,
    keep: bool,
) -> Result<(), StorageError> {
    D::execute(
        tx,
        &sql::STORE_CODE,
        &[
            Param::Uuid(code.account_id),
            Param::Text(&code.hmac),
            Param::Time(code.expires_at),
            Param::Bool(keep),
        ],
    )
    .await?;
    Ok(())
}

/// Whether a live account is verified, its row locked for the rest of the
/// transaction; `None` when there is no live account.
pub(super) async fn lock_verified<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    id: Uuid,
) -> Result<Option<bool>, StorageError> {
    let rows = D::fetch(tx, &sql::LOCK_VERIFIED, &[Param::Uuid(id)]).await?;
    rows.first().map(|row| D::flag(row, "verified")).transpose()
}

/// The parameters of `sql::INSERT_ACCOUNT` and `sql::IMPORT_ACCOUNT`.
pub(super) fn account_params<'a>(account: &'a Account, password_hash: &'a str) -> [Param<'a>; 14] {
    [
        Param::Uuid(account.id),
        Param::Text(&account.email),
        Param::Text(&account.username),
        Param::Text(password_hash),
        Param::Text(&account.first_name),
        Param::Text(&account.last_name),
        Param::Text(&account.phone_number),
        Param::Text(&account.address),
        Param::Bool(account.verified),
        Param::Bool(account.term_and_condition),
        Param::Text(&account.created_from),
        Param::Time(account.created_at),
        Param::Time(account.updated_at),
        Param::Text(&account.locale),
    ]
}
