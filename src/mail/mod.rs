//! Outgoing mail: composing messages, the dispatchers that deliver them, and
//! the outbox worker that drives delivery.

mod compose;
mod console;
mod file;
mod kind;
mod smtp;
mod worker;

use async_trait::async_trait;
use lettre::Message;
use uuid::Uuid;

pub use compose::MailComposer;
pub use console::ConsoleDispatcher;
pub use file::FileDispatcher;
pub use kind::{MailKind, UnknownMailKind};
pub use smtp::SmtpDispatcher;
pub use worker::{DeliveryWorker, ExecutionOutcome, RetryPolicy, BATCH, SEND_SLOTS};

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

/// A composed message, ready for a dispatcher.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The outbox row this message comes from.
    pub outbox_id: Uuid,
    /// The RFC 5322 message as it goes on the wire.
    pub message: Message,
    /// The plain-text body, undecoded, for dispatchers that show it to a person.
    pub text_body: String,
}

/// Hands a composed message to whatever delivers it.
#[async_trait]
pub trait MailDispatcher: Send + Sync + 'static {
    /// Delivers `mail`. May be called again for the same outbox row after a
    /// failure or a crash.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DispatchError>;
}
