//! Sessions and their refresh tokens: sign-in, rotation with reuse
//! detection, sign-out and revocation, and their pruning.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StorageError;
use crate::domain::{Session, SessionEnd};

/// Which sessions are live at `now`: not ended, used since `used_after`
/// (the idle timeout) and started since `created_after` (the lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Liveness {
    pub now: DateTime<Utc>,
    pub used_after: DateTime<Utc>,
    pub created_after: DateTime<Utc>,
}

impl Liveness {
    /// The sessions live at `now` under an idle timeout and a lifetime.
    pub fn at(now: DateTime<Utc>, idle: Duration, lifetime: Duration) -> Liveness {
        let before = |d: Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Liveness {
            now,
            used_after: before(idle),
            created_after: before(lifetime),
        }
    }

    pub fn holds(&self, session: &Session) -> bool {
        session.last_used_at > self.used_after && session.created_at > self.created_after
    }
}

/// A refresh, as the service asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Refresh<'a> {
    /// The keyed hashes of the presented token, under every key.
    pub presented: &'a [String],
    /// The hash of the token that succeeds it: stored when the presented
    /// token is current, answered again within the reuse interval while it
    /// is still the current one.
    pub successor: &'a str,
    pub live: Liveness,
    /// How long after its rotation a token still answers its successor.
    pub reuse_interval: Duration,
}

/// The common refresh, of a token that is still current, as one of a batch:
/// concurrent refreshes on one instance are sent to the database together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rotation {
    /// The presented token's keyed hash under the current key.
    pub current: String,
    /// Under the previous key (the current hash again when there is none).
    pub previous: String,
    /// The successor's hash.
    pub successor: String,
    pub live: Liveness,
}

/// A rotation that was made: the session, whose current token is now the
/// successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub rotation: Rotation,
    pub session: Session,
}

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// The session, whose current token is now the successor.
    Rotated(Session),
    /// A rotated-out token came back after the reuse interval: the session
    /// has just been ended.
    Reused,
    /// The session expired (it is ended now if it was not yet).
    Expired,
    /// Unknown token, or its session ended for another reason.
    Invalid,
}

/// The state of one session, for checks of its access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub session: Session,
    pub ended: bool,
}

/// What ending one session of an account found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Ended,
    AlreadyEnded,
    NotFound,
}

/// Sessions and refresh tokens.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session of a live account with its first refresh token
    /// and a SESSION_STARTED event, and ends the least recently used of the
    /// sessions `live` holds beyond `per_account` (one SESSION_ENDED each),
    /// in one transaction. With `settles`, the successful password check of
    /// that address which earned the session is given back, as
    /// [`CredentialStore::release_login_attempt`] with failures forgotten
    /// would: in the same transaction, or after it when nothing was stored
    /// (all but a commit that failed, which may have been made). `false`
    /// when the account is not live (nothing stored).
    ///
    /// [`CredentialStore::release_login_attempt`]: super::CredentialStore::release_login_attempt
    async fn start_session(
        &self,
        session: &Session,
        token_hash: &str,
        per_account: u32,
        live: Liveness,
        settles: Option<&str>,
    ) -> Result<bool, StorageError>;

    /// Rotates each presented token that is current and whose session is
    /// live, in one statement (PostgreSQL) or one transaction (SQLite), and
    /// returns those rotated. Any other (a token already rotated, unknown,
    /// or of an ended or expired session) is left as it is, for
    /// [`SessionStore::refresh_session`] to answer.
    async fn rotate_current(&self, batch: &[Rotation]) -> Result<Vec<Rotated>, StorageError>;

    /// Rotates, repeats or refuses a refresh token, under the session's lock.
    async fn refresh_session(&self, refresh: &Refresh<'_>) -> Result<Refreshed, StorageError>;

    /// Ends the session of a refresh token (any of its tokens). Unknown
    /// tokens and ended sessions change nothing.
    async fn sign_out(&self, presented: &[String], now: DateTime<Utc>) -> Result<(), StorageError>;

    /// The sessions of `ids` that exist, and whether each ended, in one
    /// statement: concurrent verifications are read as one batch.
    async fn session_states(&self, ids: &[Uuid]) -> Result<Vec<SessionState>, StorageError>;

    /// The live sessions of an account, newest first.
    async fn live_sessions(
        &self,
        account_id: Uuid,
        live: Liveness,
    ) -> Result<Vec<Session>, StorageError>;

    /// Ends one session of an account.
    async fn end_session(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        why: SessionEnd,
        now: DateTime<Utc>,
    ) -> Result<Ending, StorageError>;

    /// Ends every session of an account but `except`, and returns how many
    /// of them `live` held: those that had expired already end as expired,
    /// and are not counted.
    async fn end_sessions(
        &self,
        account_id: Uuid,
        except: Option<Uuid>,
        why: SessionEnd,
        live: Liveness,
    ) -> Result<u64, StorageError>;

    /// Ends the sessions that expired (one SESSION_ENDED each).
    async fn end_expired_sessions(&self, live: Liveness) -> Result<u64, StorageError>;

    /// Deletes sessions ended before `before`, with their refresh tokens. A
    /// live session keeps every token it was given: an old one presented
    /// again is reuse however long ago it was rotated out.
    async fn prune_sessions(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}
