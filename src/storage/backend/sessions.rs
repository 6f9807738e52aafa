//! [`SessionStore`] over a dialect: each change of a session in one
//! transaction with its event.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::writes::{current_traceparent, insert_session_event, lock_verified, WriteTx};
use super::SqlStorage;
use crate::domain::{EventType, Session, SessionEnd};
use crate::storage::dialect::{DbRow, Engine, Param};
use crate::storage::sql::{self, Sql};
use crate::storage::{
    rows, CredentialStore, Ending, Liveness, Refresh, Refreshed, Rotated, Rotation, SessionState,
    SessionStore, StorageError,
};

/// The two hashes a look-up by token binds: under the current key and the
/// previous one (the current again when there is none).
fn token_params(presented: &[String]) -> Option<[Param<'_>; 2]> {
    let current = presented.first()?;
    let previous = presented.get(1).unwrap_or(current);
    Some([Param::Text(current), Param::Text(previous)])
}

/// Runs an UPDATE … RETURNING id, account_id that ends sessions, and writes
/// one SESSION_ENDED event per session it ended. Returns how many.
async fn end_with_events<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    statement: &Sql,
    params: &[Param<'_>],
    now: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let ended = D::fetch(tx, statement, params).await?;
    for row in &ended {
        let session = D::uuid(row, "id")?;
        let account = D::uuid(row, "account_id")?;
        insert_session_event::<D>(tx, EventType::SessionEnded, account, Some(session), now).await?;
    }
    Ok(ended.len() as u64)
}

/// A row of `sql::LOCK_SESSION` or `sql::SESSION_STATE`: the session, and
/// why it ended (`None` while it has not).
fn session_and_end<D: Engine>(row: &DbRow<D>) -> Result<(Session, Option<String>), StorageError> {
    let session = rows::session(&D::row(row))?;
    let ended = D::optional_time(row, "ended_at")?;
    Ok((
        session,
        ended.map(|_| D::text(row, "end_reason")).transpose()?,
    ))
}

/// A row of `sql::SESSION_STATES`.
fn state_of<D: Engine>(row: &DbRow<D>) -> Result<SessionState, StorageError> {
    let (session, end) = session_and_end::<D>(row)?;
    Ok(SessionState {
        session,
        ended: end.is_some(),
    })
}

/// Gives back the password check of `address` with its failures forgotten,
/// as `release_login_attempt` with `forget_failures` does. It runs under
/// the account's row lock, taken by an earlier statement: a sign-in of the
/// same account that settled before it has committed, so this statement's
/// snapshot holds what that one left.
async fn settle_check<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    address: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let params = [Param::Text(address), Param::Time(now)];
    if D::execute(tx, &sql::CLEAR_SETTLED_LOGIN_FAILURES, &params).await? == 0 {
        D::execute(tx, &sql::RELEASE_LOGIN_ATTEMPT, &[Param::Text(address)]).await?;
    }
    Ok(())
}

impl<D: Engine> SqlStorage<D> {
    /// The writes of `start_session`, ready to commit; `None` when the
    /// account is not live (rolled back).
    async fn write_session(
        &self,
        session: &Session,
        token_hash: &str,
        per_account: u32,
        live: Liveness,
        settles: Option<&str>,
    ) -> Result<Option<WriteTx<'_, D::Db>>, StorageError> {
        let now = session.created_at;
        let mut tx = self.begin().await?;
        // The account's row lock also queues concurrent sign-ins of one
        // account, so the limit below counts every one of them.
        if lock_verified::<D>(&mut tx, session.account_id)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let params = [
            Param::Uuid(session.id),
            Param::Uuid(session.account_id),
            Param::Time(session.created_at),
            Param::Time(session.last_used_at),
            Param::Text(&session.user_agent),
            Param::Text(&session.ip_address),
            Param::Bool(session.two_step),
        ];
        if let Some(statement) = D::pick(&sql::START_SESSION) {
            // One round trip instead of four or more: sign-ins share the
            // machine with argon2, and every statement costs it CPU.
            let traceparent = current_traceparent();
            let all = [
                params.as_slice(),
                &[
                    Param::Text(token_hash),
                    Param::Int(EventType::SessionStarted.number()),
                    Param::Text(&traceparent),
                    Param::Int(i64::from(per_account)),
                    Param::Int(EventType::SessionEnded.number()),
                    Param::Time(live.used_after),
                    Param::Time(live.created_after),
                    Param::OptionalText(settles),
                ],
            ]
            .concat();
            D::fetch(&mut tx, &Sql::both(statement), &all).await?;
            tx.wrote_events();
            return Ok(Some(tx));
        }
        if let Some(address) = settles {
            settle_check::<D>(&mut tx, address, now).await?;
        }
        D::execute(&mut tx, &sql::INSERT_SESSION, &params).await?;
        let token = [
            Param::Text(token_hash),
            Param::Uuid(session.id),
            Param::Time(now),
        ];
        D::execute(&mut tx, &sql::INSERT_REFRESH_TOKEN, &token).await?;
        insert_session_event::<D>(
            &mut tx,
            EventType::SessionStarted,
            session.account_id,
            Some(session.id),
            now,
        )
        .await?;
        let evict = [
            Param::Uuid(session.account_id),
            Param::Int(i64::from(per_account)),
            Param::Time(now),
            Param::Time(live.used_after),
            Param::Time(live.created_after),
        ];
        end_with_events::<D>(&mut tx, &sql::EVICT_SESSIONS, &evict, now).await?;
        Ok(Some(tx))
    }
}

#[async_trait]
impl<D: Engine> SessionStore for SqlStorage<D> {
    async fn start_session(
        &self,
        session: &Session,
        token_hash: &str,
        per_account: u32,
        live: Liveness,
        settles: Option<&str>,
    ) -> Result<bool, StorageError> {
        let written = self
            .write_session(session, token_hash, per_account, live, settles)
            .await;
        let not_stored = match written {
            Ok(Some(tx)) => {
                // A commit that fails may still have been made: the check is
                // not given back twice, and goes stale if it was not made.
                tx.commit().await?;
                return Ok(true);
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        // Nothing was stored, the check's release with it: the password did
        // match, so its failures go as a success's do.
        if let Some(address) = settles {
            if let Err(e) = self
                .release_login_attempt(address, session.created_at, true)
                .await
            {
                tracing::warn!(error = %e, "a password check's reservation was not given back");
            }
        }
        not_stored
    }

    async fn rotate_current(&self, batch: &[Rotation]) -> Result<Vec<Rotated>, StorageError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(statement) = D::pick(&sql::ROTATE_CURRENT_TOKENS) {
            let rows = self
                .fetch(
                    &Sql::both(statement),
                    &[Param::Text(&rotations_json(batch)?)],
                )
                .await?;
            let mut rotated = Vec::with_capacity(rows.len());
            for row in &rows {
                let current = D::text(row, "cur")?;
                let session = rows::session(&D::row(row))?;
                // A token presented twice in one batch was rotated once;
                // both requests get the session.
                rotated.extend(
                    batch
                        .iter()
                        .filter(|r| r.current == current)
                        .map(|r| Rotated {
                            rotation: r.clone(),
                            session: session.clone(),
                        }),
                );
            }
            return Ok(rotated);
        }
        // One transaction for the batch: one commit (one sync of the file)
        // instead of one per refresh.
        let mut tx = self.begin().await?;
        let mut rotated: Vec<Rotated> = Vec::with_capacity(batch.len());
        for rotation in batch {
            if let Some(done) = rotated
                .iter()
                .find(|r| r.rotation.current == rotation.current)
            {
                let session = done.session.clone();
                rotated.push(Rotated {
                    rotation: rotation.clone(),
                    session,
                });
                continue;
            }
            let hashes = [
                Param::Text(&rotation.current),
                Param::Text(&rotation.previous),
            ];
            let tokens = D::fetch(&mut tx, &sql::LOCK_REFRESH_TOKEN, &hashes).await?;
            let Some(token) = tokens.first() else {
                continue;
            };
            if D::optional_time(token, "rotated_at")?.is_some() {
                continue;
            }
            let session_id = D::uuid(token, "session_id")?;
            let rows = D::fetch(&mut tx, &sql::LOCK_SESSION, &[Param::Uuid(session_id)]).await?;
            let Some(row) = rows.first() else {
                continue;
            };
            let (mut session, end) = session_and_end::<D>(row)?;
            if end.is_some() || !rotation.live.holds(&session) {
                continue;
            }
            let now = rotation.live.now;
            rotate::<D>(&mut tx, hashes, &rotation.successor, session_id, now).await?;
            session.last_used_at = now;
            rotated.push(Rotated {
                rotation: rotation.clone(),
                session,
            });
        }
        tx.commit().await?;
        Ok(rotated)
    }

    async fn refresh_session(&self, refresh: &Refresh<'_>) -> Result<Refreshed, StorageError> {
        let Some(hashes) = token_params(refresh.presented) else {
            return Ok(Refreshed::Invalid);
        };
        let successor = refresh.successor;
        let now = refresh.live.now;
        let mut tx = self.begin().await?;
        let tokens = D::fetch(&mut tx, &sql::LOCK_REFRESH_TOKEN, &hashes).await?;
        let Some(token) = tokens.first() else {
            tx.rollback().await?;
            return Ok(Refreshed::Invalid);
        };
        let session_id = D::uuid(token, "session_id")?;
        let rotated_at = D::optional_time(token, "rotated_at")?;
        let rows = D::fetch(&mut tx, &sql::LOCK_SESSION, &[Param::Uuid(session_id)]).await?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(Refreshed::Invalid);
        };
        let (mut session, end) = session_and_end::<D>(row)?;
        if let Some(reason) = end {
            tx.rollback().await?;
            return Ok(if reason == SessionEnd::Expired.as_str() {
                Refreshed::Expired
            } else {
                Refreshed::Invalid
            });
        }
        let ending = if !refresh.live.holds(&session) {
            Some((SessionEnd::Expired, Refreshed::Expired))
        } else {
            match rotated_at {
                None => None,
                Some(at) if within(at, refresh.reuse_interval, now) => {
                    // A concurrent or retried refresh converges on the
                    // successor, while that is still the current token. A
                    // token rotated out twice can only come from a copy of
                    // it: reuse, however recent.
                    let current = D::fetch(
                        &mut tx,
                        &sql::CURRENT_REFRESH_TOKEN,
                        &[Param::Uuid(session_id)],
                    )
                    .await?;
                    let current = match current.first() {
                        Some(row) => Some(D::text(row, "token_hash")?),
                        None => None,
                    };
                    if current.as_deref() == Some(successor) {
                        tx.rollback().await?;
                        return Ok(Refreshed::Rotated(session));
                    }
                    Some((SessionEnd::Reused, Refreshed::Reused))
                }
                Some(_) => Some((SessionEnd::Reused, Refreshed::Reused)),
            }
        };
        if let Some((why, answer)) = ending {
            let params = [
                Param::Uuid(session_id),
                Param::Time(now),
                Param::Text(why.as_str()),
            ];
            end_with_events::<D>(&mut tx, &sql::END_SESSION, &params, now).await?;
            tx.commit().await?;
            return Ok(answer);
        }
        rotate::<D>(&mut tx, hashes, successor, session_id, now).await?;
        tx.commit().await?;
        session.last_used_at = now;
        Ok(Refreshed::Rotated(session))
    }

    async fn sign_out(&self, presented: &[String], now: DateTime<Utc>) -> Result<(), StorageError> {
        let Some(hashes) = token_params(presented) else {
            return Ok(());
        };
        let rows = self.fetch(&sql::SESSION_OF_TOKEN, &hashes).await?;
        let Some(row) = rows.first() else {
            return Ok(());
        };
        let params = [
            Param::Uuid(D::uuid(row, "session_id")?),
            Param::Time(now),
            Param::Text(SessionEnd::SignedOut.as_str()),
        ];
        let mut tx = self.begin().await?;
        end_with_events::<D>(&mut tx, &sql::END_SESSION, &params, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_states(&self, ids: &[Uuid]) -> Result<Vec<SessionState>, StorageError> {
        let rows = self
            .fetch(&sql::SESSION_STATES, &[Param::Uuids(ids)])
            .await?;
        rows.iter().map(state_of::<D>).collect()
    }

    async fn live_sessions(
        &self,
        account_id: Uuid,
        live: Liveness,
    ) -> Result<Vec<Session>, StorageError> {
        let params = [
            Param::Uuid(account_id),
            Param::Time(live.used_after),
            Param::Time(live.created_after),
        ];
        let rows = self.fetch(&sql::LIVE_SESSIONS, &params).await?;
        rows.iter().map(|row| rows::session(&D::row(row))).collect()
    }

    async fn end_session(
        &self,
        account_id: Uuid,
        session_id: Uuid,
        why: SessionEnd,
        now: DateTime<Utc>,
    ) -> Result<Ending, StorageError> {
        let params = [
            Param::Uuid(account_id),
            Param::Uuid(session_id),
            Param::Time(now),
            Param::Text(why.as_str()),
        ];
        let mut tx = self.begin().await?;
        if end_with_events::<D>(&mut tx, &sql::END_ACCOUNT_SESSION, &params, now).await? > 0 {
            tx.commit().await?;
            return Ok(Ending::Ended);
        }
        let known = !D::fetch(&mut tx, &sql::ACCOUNT_HAS_SESSION, &params[..2])
            .await?
            .is_empty();
        tx.rollback().await?;
        Ok(if known {
            Ending::AlreadyEnded
        } else {
            Ending::NotFound
        })
    }

    async fn end_sessions(
        &self,
        account_id: Uuid,
        except: Option<Uuid>,
        why: SessionEnd,
        live: Liveness,
    ) -> Result<u64, StorageError> {
        let expired = [
            Param::Time(live.now),
            Param::Time(live.used_after),
            Param::Time(live.created_after),
            Param::Uuid(account_id),
        ];
        let mut tx = self.begin().await?;
        end_with_events::<D>(
            &mut tx,
            &sql::END_EXPIRED_ACCOUNT_SESSIONS,
            &expired,
            live.now,
        )
        .await?;
        let ended = end_account_sessions::<D>(&mut tx, account_id, except, why, live.now).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn end_expired_sessions(&self, live: Liveness) -> Result<u64, StorageError> {
        let params = [
            Param::Time(live.now),
            Param::Time(live.used_after),
            Param::Time(live.created_after),
        ];
        let mut tx = self.begin().await?;
        let ended =
            end_with_events::<D>(&mut tx, &sql::END_EXPIRED_SESSIONS, &params, live.now).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn prune_sessions(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_SESSIONS, &[Param::Time(before)])
            .await
    }
}

/// Ends every live session of an account but `except`, with their events,
/// in the caller's transaction: a password change, an address change and an
/// erasure end them in the transaction that makes the change.
pub(super) async fn end_account_sessions<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    account_id: Uuid,
    except: Option<Uuid>,
    why: SessionEnd,
    now: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let params = [
        Param::Uuid(account_id),
        Param::OptionalUuid(except),
        Param::Time(now),
        Param::Text(why.as_str()),
    ];
    end_with_events::<D>(tx, &sql::END_ACCOUNT_SESSIONS, &params, now).await
}

/// Rotates the current token of either hash to `successor` and touches its
/// session, in the caller's transaction (which holds both rows' locks).
async fn rotate<D: Engine>(
    tx: &mut WriteTx<'_, D::Db>,
    [current, previous]: [Param<'_>; 2],
    successor: &str,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let rotate = [current, previous, Param::Time(now)];
    D::execute(tx, &sql::ROTATE_REFRESH_TOKEN, &rotate).await?;
    let issue = [
        Param::Text(successor),
        Param::Uuid(session_id),
        Param::Time(now),
    ];
    D::execute(tx, &sql::INSERT_REFRESH_TOKEN, &issue).await?;
    let touch = [Param::Uuid(session_id), Param::Time(now)];
    D::execute(tx, &sql::TOUCH_SESSION, &touch).await?;
    Ok(())
}

/// A batch of rotations as `sql::ROTATE_CURRENT_TOKENS` reads it.
fn rotations_json(batch: &[Rotation]) -> Result<String, StorageError> {
    let items: Vec<serde_json::Value> = batch
        .iter()
        .map(|r| {
            serde_json::json!({
                "cur": r.current,
                "prev": r.previous,
                "succ": r.successor,
                "at": r.live.now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "used_after": r.live.used_after.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "created_after": r.live.created_after.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
        })
        .collect();
    serde_json::to_string(&items).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Whether a token rotated at `at` is still within the reuse interval.
fn within(at: DateTime<Utc>, interval: std::time::Duration, now: DateTime<Utc>) -> bool {
    chrono::Duration::from_std(interval)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .is_some_and(|until| now <= until)
}
