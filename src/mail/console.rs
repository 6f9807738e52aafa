//! Writes whole messages to standard output, for local development.

use std::io::Write;

use async_trait::async_trait;
use lettre::Message;
use uuid::Uuid;

use super::{DispatchError, MailDispatcher};

/// Prints each message to stdout, not to the log: the message carries the
/// confirmation token, and logs must never hold one.
pub struct ConsoleDispatcher;

#[async_trait]
impl MailDispatcher for ConsoleDispatcher {
    async fn send(&self, outbox_id: Uuid, message: &Message) -> Result<(), DispatchError> {
        let formatted = message.formatted();
        let mut out = std::io::stdout().lock();
        let separator = "-".repeat(79);
        writeln!(out, "{separator}\n[mail {outbox_id}]")
            .and_then(|()| out.write_all(&formatted))
            .and_then(|()| writeln!(out, "\n{separator}"))
            .and_then(|()| out.flush())
            .map_err(|e| DispatchError::Transient(e.into()))
    }
}
