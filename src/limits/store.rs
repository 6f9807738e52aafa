//! Where the buckets live: what a bucket store is asked, and the keys it
//! is asked about.

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::client::ClientKey;
use crate::access::Caller;
use crate::domain::Email;
use crate::storage::StorageError;

/// Why a call was held back.
#[derive(Debug)]
pub enum LimitError {
    /// Over the limit: how long until a call would be allowed.
    Exceeded(Duration),
    /// The shared store could not be asked.
    Store(StorageError),
}

/// Which call a target address's bucket counts. Each call has its own, so
/// that using one up (wrong confirmation codes, say) never blocks another
/// (a password reset or a resent mail) for the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressBucket {
    Register,
    ConfirmCode,
    ResendConfirmation,
    PasswordReset,
    EmailChange,
}

impl AddressBucket {
    fn name(self) -> &'static str {
        match self {
            AddressBucket::Register => "register",
            AddressBucket::ConfirmCode => "confirm-code",
            AddressBucket::ResendConfirmation => "resend-confirmation",
            AddressBucket::PasswordReset => "password-reset",
            AddressBucket::EmailChange => "email-change",
        }
    }
}

/// A fixed-size digest of a call and a normalised address: the limiter never holds the
/// address itself, so a key costs the same whatever a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmailKey([u8; 16]);

impl EmailKey {
    pub fn of(bucket: AddressBucket, email: &Email) -> EmailKey {
        let mut hasher = Sha256::new();
        hasher.update(bucket.name().as_bytes());
        hasher.update([0]);
        hasher.update(email.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        EmailKey(key)
    }

    /// The digest in hex, as the shared store names its row.
    pub(super) fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One bucket a call is taken from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bucket<'a> {
    /// A client's, at the per-client rate.
    Client(ClientKey),
    /// A target address's for one call, at the per-address rate.
    Address(EmailKey),
    /// A caller's, at its requests_per_minute.
    Caller(&'a Caller),
}

/// Holds the buckets, each at the rate the store was built with (a
/// caller's at its own quota).
#[async_trait]
pub(super) trait BucketStore: Send + Sync + 'static {
    /// Takes one call from `bucket`; on refusal, how long until one is
    /// allowed. A bucket without a limit never refuses.
    async fn take(&self, bucket: Bucket<'_>) -> Result<(), LimitError>;

    /// Drops buckets that are full again, so memory (or the shared table)
    /// follows recent traffic rather than every address ever seen.
    async fn forget_idle(&self);

    /// Keys held in memory by the per-client and the per-address limiter.
    fn keys(&self) -> (usize, usize) {
        (0, 0)
    }
}
