//! [`CredentialStore`] over a dialect: stored hashes, their replacement,
//! imports, and the failed sign-ins behind the lockout.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::writes::{account_params, insert_event, insert_mail, lock_verified};
use super::{end_account_sessions, first, SqlStorage};
use crate::auth::PasswordHash;
use crate::domain::{Account, EventType, SessionEnd};
use crate::storage::dialect::{DbRow, Engine, Param};
use crate::storage::sql::{self, Sql};
use crate::storage::{rows, CredentialStore, LoginReservation, PasswordReplacement, StorageError};

#[async_trait]
impl<D: Engine> CredentialStore for SqlStorage<D> {
    async fn credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(Account, String)>, StorageError> {
        let rows = self
            .fetch(&sql::CREDENTIALS_BY_EMAIL, &[Param::Text(email)])
            .await?;
        credentials::<D>(&rows)
    }

    async fn import_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let params = account_params(account, password_hash);
        let mut tx = self.begin().await?;
        if D::execute(&mut tx, &sql::IMPORT_ACCOUNT, &params).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Stamped when it was imported (its `updated_at`), not with the
        // registration date it brings: events are pruned by their time.
        insert_event::<D>(
            &mut tx,
            EventType::AccountRegistered,
            account.id,
            account.updated_at,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn credentials_by_id(&self, id: Uuid) -> Result<Option<(Account, String)>, StorageError> {
        let rows = self
            .fetch(&sql::CREDENTIALS_BY_ID, &[Param::Uuid(id)])
            .await?;
        credentials::<D>(&rows)
    }

    async fn replace_password(
        &self,
        change: &PasswordReplacement<'_>,
    ) -> Result<Option<Account>, StorageError> {
        let (id, email) = (change.account.id, change.account.email.as_str());
        let (now, verify) = (change.now, change.verify);
        let mut tx = self.begin().await?;
        let was_verified = if verify {
            lock_verified::<D>(&mut tx, id).await?
        } else {
            None
        };
        let params = [
            Param::Uuid(id),
            Param::Text(change.old),
            Param::Text(change.new.expose()),
            Param::Time(now),
            Param::Bool(verify),
            Param::Text(email),
        ];
        let rows = D::fetch(&mut tx, &sql::REPLACE_PASSWORD, &params).await?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(None);
        };
        let account = rows::account(&D::row(row))?;
        D::execute(
            &mut tx,
            &sql::CLEAR_LOGIN_FAILURES,
            &[Param::Text(&account.email)],
        )
        .await?;
        insert_mail::<D>(&mut tx, change.notice).await?;
        insert_event::<D>(&mut tx, EventType::PasswordChanged, id, now).await?;
        let why = SessionEnd::PasswordChanged;
        end_account_sessions::<D>(&mut tx, id, change.keep_session, why, now).await?;
        if was_verified == Some(false) && account.verified {
            insert_event::<D>(&mut tx, EventType::AccountVerified, id, now).await?;
        }
        tx.commit().await?;
        Ok(Some(account))
    }

    async fn replace_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &PasswordHash,
    ) -> Result<bool, StorageError> {
        let params = [Param::Uuid(id), Param::Text(old), Param::Text(new.expose())];
        Ok(self.execute(&sql::REPLACE_PASSWORD_HASH, &params).await? == 1)
    }

    async fn reserve_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        stale_before: DateTime<Utc>,
    ) -> Result<LoginReservation, StorageError> {
        // A running lockout is refused on a read: a flood at a locked
        // address then takes no row lock and writes nothing. The read only
        // ever refuses; a reservation is decided by the upsert alone.
        if let Some(refused) = self.login_lock(email).await? {
            if refused_until(refused).is_some_and(|until| until > now) {
                return Ok(refused);
            }
        }
        let params = [
            Param::Text(email),
            Param::Time(now),
            Param::Int(i64::from(max_failures)),
            Param::Time(stale_before),
        ];
        if !self
            .fetch(&sql::RESERVE_LOGIN_ATTEMPT, &params)
            .await?
            .is_empty()
        {
            return Ok(LoginReservation::Reserved);
        }
        // Gone between the two statements (pruned): nothing holds it.
        Ok(self
            .login_lock(email)
            .await?
            .unwrap_or(LoginReservation::Refused {
                locked_until: None,
                lockouts: 0,
            }))
    }

    async fn reserve_and_read(
        &self,
        email: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        stale_before: DateTime<Utc>,
    ) -> Result<(LoginReservation, Option<(Account, String)>), StorageError> {
        let Some(statement) = D::pick(&sql::RESERVE_AND_READ) else {
            let reservation = self
                .reserve_login_attempt(email, now, max_failures, stale_before)
                .await?;
            if reservation != LoginReservation::Reserved {
                return Ok((reservation, None));
            }
            return match self.credentials_by_email(email).await {
                Ok(found) => Ok((reservation, found)),
                Err(e) => Err(self.give_back(email, now, e).await),
            };
        };
        // A running lockout is refused on a plain read first, as
        // `reserve_login_attempt` refuses it: a flood at a locked address
        // then runs nothing that could write, which costs PostgreSQL about
        // half as much as the statement below.
        if let Some(refused) = self.login_lock(email).await? {
            if refused_until(refused).is_some_and(|until| until > now) {
                return Ok((refused, None));
            }
        }
        let params = [
            Param::Text(email),
            Param::Time(now),
            Param::Int(i64::from(max_failures)),
            Param::Time(stale_before),
        ];
        // One statement: it fails whole, and then holds nothing.
        let row = first(self.fetch(&Sql::both(statement), &params).await?)?;
        if D::flag(&row, "reserved")? {
            let found = || -> Result<_, StorageError> {
                if !D::flag(&row, "found")? {
                    return Ok(None);
                }
                Ok(Some((
                    rows::account(&D::row(&row))?,
                    D::text(&row, "password_hash")?,
                )))
            };
            return match found() {
                Ok(found) => Ok((LoginReservation::Reserved, found)),
                Err(e) => Err(self.give_back(email, now, e).await),
            };
        }
        let refused = LoginReservation::Refused {
            locked_until: D::optional_time(&row, "locked_until")?,
            lockouts: D::integer(&row, "lockouts")?,
        };
        if refused_until(refused).is_some_and(|until| until > now) {
            return Ok((refused, None));
        }
        // Refused by the upsert: what holds the address now, as the two
        // statements would have read it.
        let now_held = self
            .login_lock(email)
            .await?
            .unwrap_or(LoginReservation::Refused {
                locked_until: None,
                lockouts: 0,
            });
        Ok((now_held, None))
    }

    async fn record_login_failure(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), StorageError> {
        let row = first(
            self.fetch(
                &sql::RECORD_LOGIN_FAILURE,
                &[Param::Text(email), Param::Time(now)],
            )
            .await?,
        )?;
        Ok((D::integer(&row, "failures")?, D::integer(&row, "lockouts")?))
    }

    async fn lock_login(
        &self,
        email: &str,
        max_failures: u32,
        until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let params = [
            Param::Text(email),
            Param::Int(i64::from(max_failures)),
            Param::Time(until),
        ];
        self.execute(&sql::LOCK_LOGIN, &params).await?;
        Ok(())
    }

    async fn release_login_attempt(
        &self,
        email: &str,
        now: DateTime<Utc>,
        forget_failures: bool,
    ) -> Result<(), StorageError> {
        let params = [Param::Text(email), Param::Time(now)];
        if !forget_failures
            || self
                .execute(&sql::CLEAR_SETTLED_LOGIN_FAILURES, &params)
                .await?
                == 0
        {
            self.execute(&sql::RELEASE_LOGIN_ATTEMPT, &[Param::Text(email)])
                .await?;
        }
        Ok(())
    }

    async fn prune_login_failures(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let failures = self
            .execute(&sql::PRUNE_LOGIN_FAILURES, &[Param::Time(before)])
            .await?;
        let code_tries = self
            .execute(&sql::PRUNE_CODE_TRIES, &[Param::Time(before)])
            .await?;
        Ok(failures + code_tries)
    }
}

/// The account and password hash of the first row of a credentials look-up.
fn credentials<D: Engine>(rows: &[DbRow<D>]) -> Result<Option<(Account, String)>, StorageError> {
    rows.first()
        .map(|row| Ok((rows::account(&D::row(row))?, D::text(row, "password_hash")?)))
        .transpose()
}

impl<D: Engine> SqlStorage<D> {
    /// The lockout on record for `email`, as a refusal; `None` without a row.
    async fn login_lock(&self, email: &str) -> Result<Option<LoginReservation>, StorageError> {
        let rows = self.fetch(&sql::LOGIN_LOCK, &[Param::Text(email)]).await?;
        rows.first()
            .map(|row| {
                Ok(LoginReservation::Refused {
                    locked_until: D::optional_time(row, "locked_until")?,
                    lockouts: D::integer(row, "lockouts")?,
                })
            })
            .transpose()
    }
}

fn refused_until(refused: LoginReservation) -> Option<DateTime<Utc>> {
    match refused {
        LoginReservation::Refused { locked_until, .. } => locked_until,
        LoginReservation::Reserved => None,
    }
}

impl<D: Engine> SqlStorage<D> {
    /// Gives back a reservation that `error` left unused, and returns the
    /// error.
    async fn give_back(
        &self,
        email: &str,
        now: DateTime<Utc>,
        error: StorageError,
    ) -> StorageError {
        if let Err(release) = self.release_login_attempt(email, now, false).await {
            tracing::warn!(error = %release, "a password check's reservation was not given back");
        }
        error
    }
}
