//! Persistence: the storage traits by concern, their types and errors, and
//! `open`, which picks the backend a database URL names.

mod accounts;
mod backend;
mod batch;
mod credentials;
mod dialect;
mod error;
mod events;
mod hooks;
mod lifecycle;
mod limits;
mod media;
mod outbox;
mod postgres;
mod rows;
mod schema;
mod second_factor;
mod sessions;
mod sql;
mod sqlite;
mod sqlite_commits;
mod sqlite_reads;
mod sqlite_values;

use std::sync::Arc;

use crate::config::{DatabaseKind, DatabaseUrl};

use backend::SqlStorage;

pub use accounts::{only, AccountStore, CodeTry};
pub use batch::Batcher;
pub use credentials::{CredentialStore, LoginReservation, PasswordReplacement};
pub use error::{is_unavailable_code, StorageError};
pub use events::{EventBatch, EventPosition, EventStore, StoredEvent};
pub use hooks::CommitHooks;
pub use lifecycle::Lifecycle;
pub use limits::LimitStore;
pub use media::{Blobs, DeletionOutcome, ImageSwitch, MediaDeletion, MediaRecordStore};
pub use outbox::{
    ClaimedMessage, DeadLetter, MailFailure, Operations, OutboxMessage, OutboxStatus, OutboxStore,
};
pub use second_factor::{
    SecondFactorChange, SecondFactorStore, StoredChallenge, StoredSecondFactor,
};
pub use sessions::{
    Ending, Liveness, Refresh, Refreshed, Rotated, Rotation, SessionState, SessionStore,
};

pub use crate::config::PoolSettings;
pub use crate::domain::AccountFilter;

/// Declares [`Storage`], everything the service stores, once from the list
/// of store traits: the trait and its blanket implementation take the same
/// list.
macro_rules! storage_of {
    ($($store:ident),+) => {
        /// Everything the service stores. Implementations translate driver
        /// errors into [`StorageError`] by error kind, never by message text.
        pub trait Storage: $($store +)+ {}

        impl<T> Storage for T where T: $($store +)+ ?Sized {}
    };
}

storage_of!(
    Lifecycle,
    AccountStore,
    CredentialStore,
    OutboxStore,
    Operations,
    LimitStore,
    EventStore,
    SessionStore,
    SecondFactorStore,
    MediaRecordStore
);

/// Opens the backend that `database_url` names without contacting it yet:
/// connections are made on first use, so the service can start while the
/// database is down. Call [`Lifecycle::migrate`] before serving, and
/// [`Lifecycle::set_commit_hooks`] to have commits wake whoever waits for
/// mail or events.
pub fn open(
    database_url: &DatabaseUrl,
    pool: PoolSettings,
) -> Result<Arc<dyn Storage>, StorageError> {
    let url = database_url.expose();
    Ok(match database_url.kind {
        DatabaseKind::Sqlite => Arc::new(SqlStorage::<sqlite::Sqlite>::open(url, pool)?),
        DatabaseKind::Postgres => Arc::new(SqlStorage::<postgres::Postgres>::open(url, pool)?),
    })
}
