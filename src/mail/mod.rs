//! Outgoing mail: composing messages, the dispatchers that deliver them, and
//! the outbox worker that drives delivery.

mod compose;
mod console;
mod file;
mod worker;

use async_trait::async_trait;
use lettre::Message;
use uuid::Uuid;

pub use compose::MailComposer;
pub use console::ConsoleDispatcher;
pub use file::FileDispatcher;
pub use worker::{error_chain, DeliveryWorker, ExecutionOutcome, RetryPolicy};

/// Why a delivery attempt failed, which decides whether it is tried again.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Worth retrying: the server is down, busy or answered 4xx.
    #[error("temporary delivery failure")]
    Transient(#[source] anyhow::Error),
    /// Retrying cannot help: the server refused the message for good (5xx).
    #[error("permanent delivery failure")]
    Permanent(#[source] anyhow::Error),
}

/// Hands a composed message to whatever delivers it.
#[async_trait]
pub trait MailDispatcher: Send + Sync + 'static {
    /// Delivers `message`, the outbox row `outbox_id`. May be called again for
    /// the same row after a failure or a crash.
    async fn send(&self, outbox_id: Uuid, message: &Message) -> Result<(), DispatchError>;
}
