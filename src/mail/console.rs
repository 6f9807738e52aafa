//! Writes whole messages to standard output, for local development.

use std::io::Write;

use async_trait::async_trait;

use super::{DispatchError, MailDispatcher, OutgoingMail};

/// Prints each message's headers and plain-text body to stdout, where a
/// developer can click the link. Not to the log: the message carries the
/// confirmation token, and logs must never hold one.
pub struct ConsoleDispatcher;

#[async_trait]
impl MailDispatcher for ConsoleDispatcher {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DispatchError> {
        let headers = mail.message.headers().to_string();
        let separator = "-".repeat(79);
        let mut out = std::io::stdout().lock();
        write!(
            out,
            "{separator}\n{headers}\n{}\n(an HTML alternative part is sent along)\n{separator}\n",
            mail.text_body.trim_end()
        )
        .and_then(|()| out.flush())
        .map_err(|e| DispatchError::Transient(e.into()))
    }
}
