//! Outgoing mail: composing messages, the dispatchers that deliver them, and
//! the outbox worker that drives delivery.

mod compose;
mod console;
mod file;
mod smtp;
mod worker;

use async_trait::async_trait;
use lettre::Message;
use uuid::Uuid;

pub use compose::MailComposer;
pub use console::ConsoleDispatcher;
pub use file::FileDispatcher;
pub use smtp::SmtpDispatcher;
pub use worker::{DeliveryWorker, ExecutionOutcome, RetryPolicy, BATCH, SEND_SLOTS};

/// What a mail is for. Stored in the outbox's `kind` column as
/// [`MailKind::as_str`], which rows already written depend on: the strings
/// must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// The first confirmation mail, sent on registration.
    Welcome,
    /// A fresh confirmation mail, asked for again.
    Confirmation,
    /// The notice sent when someone registers an address that has an account.
    AccountExists,
}

impl MailKind {
    pub const ALL: [MailKind; 3] = [
        MailKind::Welcome,
        MailKind::Confirmation,
        MailKind::AccountExists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Welcome => "welcome",
            MailKind::Confirmation => "confirmation",
            MailKind::AccountExists => "account_exists",
        }
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored mail kind this binary does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown mail kind {0:?}")]
pub struct UnknownMailKind(pub String);

impl std::str::FromStr for MailKind {
    type Err = UnknownMailKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MailKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownMailKind(s.to_owned()))
    }
}

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

#[cfg(test)]
mod tests {
    use super::MailKind;

    #[test]
    fn kinds_read_back_as_stored() {
        for kind in MailKind::ALL {
            assert_eq!(kind.as_str().parse::<MailKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!("resend".parse::<MailKind>().is_err());
    }
}
