//! Outgoing mail: composing messages, the dispatchers that deliver them, and
//! the outbox worker that drives delivery.

mod compose;
mod console;
mod due;
mod file;
mod i18n;
mod smtp;
mod worker;

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use lettre::Message;
use uuid::Uuid;

use crate::config::{EmailBackend, MailSettings};

pub use crate::domain::{MailKind, UnknownMailKind};
pub use compose::MailComposer;
pub use console::ConsoleDispatcher;
pub use file::FileDispatcher;
pub use i18n::{Catalogues, Fill, Rendered, Template, TemplateError};
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

/// SMTP connections kept open for the worker's concurrent sends.
const SMTP_POOL_SIZE: u32 = SEND_SLOTS as u32;

/// The dispatcher that EMAIL_BACKEND names.
pub fn dispatcher(settings: &MailSettings) -> anyhow::Result<Arc<dyn MailDispatcher>> {
    Ok(match (settings.email_backend, settings.smtp_url()) {
        (EmailBackend::Console, _) => Arc::new(ConsoleDispatcher),
        (EmailBackend::Smtp, Some(url)) => Arc::new(
            SmtpDispatcher::from_url(url.expose(), settings.smtp_timeout, SMTP_POOL_SIZE)
                // lettre's error names no credentials, but the URL is not repeated either.
                .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {e}"))?,
        ),
        (EmailBackend::Smtp, None) => anyhow::bail!("SMTP_URL must be set when EMAIL_BACKEND=smtp"),
        (EmailBackend::File, _) => {
            let dir = &settings.email_file_path;
            Arc::new(
                FileDispatcher::new(dir.clone())
                    .with_context(|| format!("cannot create EMAIL_FILE_PATH {}", dir.display()))?,
            )
        }
    })
}
