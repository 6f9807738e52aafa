//! Sign-in sessions: signing in, rotating refresh tokens, signing out,
//! listing and revoking sessions, and the online access-token check.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::error::{Context, SessionError};
use super::{now, Accounts, Lookup, ServiceError};
use crate::auth::{
    AccessClaims, AccessTokenError, AccessTokens, RefreshTokens, PASSWORD_AND_CODE, PASSWORD_ONLY,
};
use crate::config::SessionPolicy;
use crate::domain::{Account, ClientInfo, Email, Session, SessionEnd};
use crate::storage::{Ending, Liveness, Refresh, Refreshed, Rotation, StorageError};

/// What sessions are made of: their tokens and policy.
#[derive(Clone)]
pub struct Sessions {
    pub access: Arc<AccessTokens>,
    pub refresh: RefreshTokens,
    pub policy: SessionPolicy,
}

/// The tokens a sign-in or a refresh answers.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
}

/// A started session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub session: Session,
    pub tokens: SessionTokens,
}

impl Sessions {
    fn live_at(&self, now: DateTime<Utc>) -> Liveness {
        Liveness::at(now, self.policy.idle_timeout, self.policy.max_lifetime)
    }

    /// When `session` ends unless refreshed.
    pub fn expires_at(&self, session: &Session) -> DateTime<Utc> {
        session.expires_at(self.policy.idle_timeout, self.policy.max_lifetime)
    }

    fn tokens(
        &self,
        session: &Session,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<SessionTokens, ServiceError> {
        let amr = if session.two_step {
            PASSWORD_AND_CODE
        } else {
            PASSWORD_ONLY
        };
        let access = self
            .access
            .issue_for(session.account_id, session.id, session.created_at, amr, now)
            .map_err(ServiceError::Unexpected)?;
        Ok(SessionTokens {
            access_token: access.token,
            access_token_expires_at: access.expires_at,
            refresh_token,
            refresh_token_expires_at: self.expires_at(session),
        })
    }

    /// The stored form of a refresh token's keyed hash.
    fn stored(&self, token: &str) -> String {
        hex(&self.refresh.stored_hash(token))
    }

    /// The stored forms of a presented token's hashes under every key;
    /// `None` when it is not a refresh token at all.
    fn presented(&self, token: &str) -> Option<Vec<String>> {
        self.refresh
            .lookup_hashes(token)
            .map(|hashes| hashes.iter().map(hex).collect())
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Accounts {
    /// When `session` ends unless refreshed.
    pub fn session_expires_at(&self, session: &Session) -> DateTime<Utc> {
        match &self.sessions {
            Some(sessions) => sessions.expires_at(session),
            None => session.created_at,
        }
    }

    fn sessions(&self) -> Result<&Sessions, ServiceError> {
        self.sessions
            .as_ref()
            .ok_or_else(|| ServiceError::Unexpected(anyhow::anyhow!("sessions are not configured")))
    }

    /// Signs a shopper in: CheckPassword's check (its answers, lockout,
    /// timing and hash upgrades), then a new session with its tokens.
    #[tracing::instrument(name = "sign_in", skip_all)]
    pub async fn sign_in(
        &self,
        email: &Email,
        password: SecretString,
        client: ClientInfo,
    ) -> Result<SignedIn, ServiceError> {
        self.sessions()?;
        let now = Utc::now();
        let matched = self.match_password(email, password, now).await?;
        // The common case gives its check back in the transaction that
        // starts the session: two round trips and a commit fewer beside
        // argon2 on the same cores.
        if matched.settles_plainly() {
            let settles = Some(email.as_str());
            return self
                .start_session(matched.account, client, false, settles)
                .await;
        }
        let account = self.settle_check(email.as_str(), now, matched).await?;
        self.start_session(account, client, false, None).await
    }

    /// Starts a session of an account whose sign-in just succeeded, with
    /// `two_step` when a second factor completed it. With `settles`, the
    /// password check of that address is still reserved, and storage gives
    /// it back, with the session or without one.
    pub(super) async fn start_session(
        &self,
        account: Account,
        client: ClientInfo,
        two_step: bool,
        settles: Option<&str>,
    ) -> Result<SignedIn, ServiceError> {
        let sessions = self.sessions()?;
        let now = now();
        let session = Session {
            id: Uuid::now_v7(),
            account_id: account.id,
            created_at: now,
            last_used_at: now,
            user_agent: client.user_agent,
            ip_address: client.ip_address,
            two_step,
        };
        let refresh_token = sessions.refresh.generate();
        let started = self
            .storage
            .start_session(
                &session,
                &sessions.stored(&refresh_token),
                sessions.policy.per_account,
                sessions.live_at(now),
                settles,
            )
            .await
            .context("starting the session")?;
        if !started {
            // Deleted between the password check and now.
            return Err(ServiceError::InvalidCredentials);
        }
        let tokens = sessions.tokens(&session, refresh_token, now)?;
        tracing::info!(account_id = %account.id, session_id = %session.id, "signed in");
        Ok(SignedIn {
            account,
            session,
            tokens,
        })
    }

    /// Rotates a refresh token. The presented token's successor is derived
    /// from it under the server key, so every concurrent refresh of it, on
    /// any instance, answers the same new token.
    #[tracing::instrument(name = "refresh_session", skip_all)]
    pub async fn refresh_session(
        &self,
        token: &str,
    ) -> Result<(Session, SessionTokens), ServiceError> {
        let sessions = self.sessions()?;
        let Some(presented) = sessions.presented(token) else {
            return Err(ServiceError::Session(SessionError::RefreshTokenInvalid));
        };
        let Some(current) = presented.first() else {
            return Err(ServiceError::Session(SessionError::RefreshTokenInvalid));
        };
        let next = sessions.refresh.successor(token);
        let successor = sessions.stored(&next);
        let now = now();
        let live = sessions.live_at(now);
        // The common case, a current token of a live session, goes out with
        // the other refreshes under way on this instance as one statement;
        // anything else is answered under the session's lock below.
        let rotation = Rotation {
            current: current.clone(),
            previous: presented.get(1).unwrap_or(current).clone(),
            successor: successor.clone(),
            live,
        };
        match self.rotations.call(rotation).await {
            Ok(rotated) => {
                let tokens = sessions.tokens(&rotated.session, next, now)?;
                return Ok((rotated.session, tokens));
            }
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e).context("refreshing the session"),
        }
        let refresh = Refresh {
            presented: &presented,
            successor: &successor,
            live,
            reuse_interval: sessions.policy.reuse_interval,
        };
        match self
            .storage
            .refresh_session(&refresh)
            .await
            .context("refreshing the session")?
        {
            Refreshed::Rotated(session) => {
                let tokens = sessions.tokens(&session, next, now)?;
                Ok((session, tokens))
            }
            Refreshed::Reused => {
                tracing::warn!("a rotated-out refresh token was presented again: session ended");
                Err(ServiceError::Session(SessionError::RefreshTokenReused))
            }
            Refreshed::Expired => Err(ServiceError::Session(SessionError::SessionExpired)),
            Refreshed::Invalid => Err(ServiceError::Session(SessionError::RefreshTokenInvalid)),
        }
    }

    /// Ends the session of a refresh token; unknown tokens change nothing.
    #[tracing::instrument(name = "sign_out", skip_all)]
    pub async fn sign_out(&self, token: &str) -> Result<(), ServiceError> {
        let sessions = self.sessions()?;
        let Some(presented) = sessions.presented(token) else {
            return Ok(());
        };
        self.storage
            .sign_out(&presented, now())
            .await
            .context("signing out")
    }

    /// Verifies an access token and that its session is still live.
    #[tracing::instrument(name = "verify_access_token", skip_all)]
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, ServiceError> {
        let sessions = self.sessions()?;
        let now = now();
        let claims = sessions.access.verify(token, now).map_err(|e| {
            ServiceError::Session(match e {
                AccessTokenError::Invalid => SessionError::AccessTokenInvalid,
                AccessTokenError::Expired => SessionError::AccessTokenExpired,
            })
        })?;
        // Batched: under load, concurrent checks share one statement.
        let state = match self.session_reads.call(claims.session_id).await {
            Ok(state) => Some(state),
            Err(StorageError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let live = sessions.live_at(now);
        match state {
            Some(state)
                if !state.ended
                    && state.session.account_id == claims.account_id
                    && live.holds(&state.session) =>
            {
                Ok(claims)
            }
            _ => Err(ServiceError::Session(SessionError::SessionRevoked)),
        }
    }

    /// The live sessions of an account, newest first.
    pub async fn list_sessions(&self, account_id: Uuid) -> Result<Vec<Session>, ServiceError> {
        let sessions = self.sessions()?;
        self.get(Lookup::Id(account_id)).await?;
        self.storage
            .live_sessions(account_id, sessions.live_at(now()))
            .await
            .context("listing sessions")
    }

    /// Ends one session of an account; ending an ended one again succeeds.
    #[tracing::instrument(name = "revoke_session", skip_all)]
    pub async fn revoke_session(
        &self,
        account_id: Uuid,
        session_id: Uuid,
    ) -> Result<(), ServiceError> {
        self.sessions()?;
        // First: a deleted account's sessions stay on record, ended, for a
        // day, and naming one must still answer that the account is gone.
        self.get(Lookup::Id(account_id)).await?;
        let ending = self
            .storage
            .end_session(account_id, session_id, SessionEnd::Revoked, now())
            .await
            .context("revoking the session")?;
        match ending {
            Ending::Ended | Ending::AlreadyEnded => Ok(()),
            Ending::NotFound => Err(ServiceError::SessionNotFound),
        }
    }

    /// Ends every live session of an account but `except`; returns how many.
    #[tracing::instrument(name = "revoke_all_sessions", skip_all)]
    pub async fn revoke_all_sessions(
        &self,
        account_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, ServiceError> {
        let sessions = self.sessions()?;
        self.get(Lookup::Id(account_id)).await?;
        self.storage
            .end_sessions(
                account_id,
                except,
                SessionEnd::Revoked,
                sessions.live_at(now()),
            )
            .await
            .context("revoking sessions")
    }
}
