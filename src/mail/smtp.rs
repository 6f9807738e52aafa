//! Delivers through an SMTP server with lettre's pooled async transport.

use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{DispatchError, MailDispatcher, OutgoingMail};

pub struct SmtpDispatcher {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Bounds a whole attempt; lettre's own timeout bounds each network operation.
    timeout: Duration,
}

impl SmtpDispatcher {
    /// `url` in lettre's form: `smtp://user:pass@host:587?tls=required`,
    /// `smtps://host`, or plain `smtp://host:port` for a local relay.
    /// `timeout` bounds each network operation of an attempt.
    pub fn from_url(
        url: &str,
        timeout: Duration,
        pool_size: u32,
    ) -> Result<Self, lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(pool_size))
            .build();
        Ok(SmtpDispatcher { transport, timeout })
    }
}

#[async_trait]
impl MailDispatcher for SmtpDispatcher {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DispatchError> {
        let attempt = tokio::time::timeout(self.timeout, self.transport.send(mail.message.clone()));
        let Ok(result) = attempt.await else {
            return Err(DispatchError::Transient(anyhow::anyhow!(
                "SMTP attempt timed out after {:?}",
                self.timeout
            )));
        };
        match result {
            Ok(_) => Ok(()),
            // 5xx: the server refused this message for good.
            Err(e) if e.is_permanent() => Err(DispatchError::Permanent(e.into())),
            // 4xx, timeouts, refused or dropped connections, TLS trouble:
            // another attempt may succeed.
            Err(e) => Err(DispatchError::Transient(e.into())),
        }
    }
}
