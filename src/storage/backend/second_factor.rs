//! [`SecondFactorStore`] over a dialect: turning two-step sign-in on and
//! off in one transaction with its notice and event, and codes used once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::writes::{insert_event, insert_mail, lock_verified};
use super::SqlStorage;
use crate::domain::{Account, EventType};
use crate::storage::dialect::{Engine, Param};
use crate::storage::sql;
use crate::storage::{
    rows, OutboxMessage, SecondFactorChange, SecondFactorStore, StorageError, StoredChallenge,
    StoredSecondFactor,
};

/// The two hashes a look-up binds: under the current key and the previous
/// one (the current again when there is none).
fn either<'a>(hashes: &'a [String]) -> Option<[Param<'a>; 2]> {
    let current = hashes.first()?;
    let previous = hashes.get(1).unwrap_or(current);
    Some([Param::Text(current), Param::Text(previous)])
}

#[async_trait]
impl<D: Engine> SecondFactorStore for SqlStorage<D> {
    async fn second_factor(
        &self,
        account_id: Uuid,
    ) -> Result<Option<StoredSecondFactor>, StorageError> {
        let rows = self
            .fetch(&sql::SECOND_FACTOR, &[Param::Uuid(account_id)])
            .await?;
        rows.first()
            .map(|row| {
                Ok(StoredSecondFactor {
                    sealed_secret: D::text(row, "sealed_secret")?,
                    enabled: D::optional_time(row, "enabled_at")?.is_some(),
                    last_step: D::bigint(row, "last_step")?,
                })
            })
            .transpose()
    }

    async fn start_second_factor(
        &self,
        account_id: Uuid,
        sealed_secret: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let params = [
            Param::Uuid(account_id),
            Param::Text(sealed_secret),
            Param::Time(now),
        ];
        Ok(self.execute(&sql::START_SECOND_FACTOR, &params).await? == 1)
    }

    async fn enable_second_factor(
        &self,
        change: &SecondFactorChange<'_>,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<Option<Account>, StorageError> {
        let (id, now) = (change.account_id, change.now);
        let mut tx = self.begin().await?;
        // The account's row lock queues this behind a concurrent change.
        let enabled = lock_verified::<D>(&mut tx, id).await?.is_some()
            && D::execute(
                &mut tx,
                &sql::ENABLE_SECOND_FACTOR,
                &[Param::Uuid(id), Param::Time(now), Param::Int(step)],
            )
            .await?
                == 1;
        if !enabled {
            tx.rollback().await?;
            return Ok(None);
        }
        D::execute(&mut tx, &sql::DELETE_RECOVERY_CODES, &[Param::Uuid(id)]).await?;
        for hash in recovery_hashes {
            let params = [Param::Text(hash), Param::Uuid(id), Param::Time(now)];
            D::execute(&mut tx, &sql::INSERT_RECOVERY_CODE, &params).await?;
        }
        let account = set_flag::<D>(&mut tx, id, true, now).await?;
        insert_mail::<D>(&mut tx, change.notice).await?;
        insert_event::<D>(&mut tx, EventType::SecondFactorChanged, id, now).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn disable_second_factor(
        &self,
        change: &SecondFactorChange<'_>,
    ) -> Result<Option<Account>, StorageError> {
        let (id, now) = (change.account_id, change.now);
        let mut tx = self.begin().await?;
        let removed = lock_verified::<D>(&mut tx, id).await?.is_some()
            && D::execute(&mut tx, &sql::DELETE_SECOND_FACTOR, &[Param::Uuid(id)]).await? == 1;
        if !removed {
            tx.rollback().await?;
            return Ok(None);
        }
        D::execute(&mut tx, &sql::DELETE_RECOVERY_CODES, &[Param::Uuid(id)]).await?;
        let account = set_flag::<D>(&mut tx, id, false, now).await?;
        insert_mail::<D>(&mut tx, change.notice).await?;
        insert_event::<D>(&mut tx, EventType::SecondFactorChanged, id, now).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn use_totp_step(&self, account_id: Uuid, step: i64) -> Result<bool, StorageError> {
        let params = [Param::Uuid(account_id), Param::Int(step)];
        Ok(self.execute(&sql::USE_TOTP_STEP, &params).await? == 1)
    }

    async fn reseal_second_factor(
        &self,
        account_id: Uuid,
        old: &str,
        new: &str,
    ) -> Result<(), StorageError> {
        let params = [Param::Uuid(account_id), Param::Text(old), Param::Text(new)];
        self.execute(&sql::RESEAL_SECOND_FACTOR, &params).await?;
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        account_id: Uuid,
        hashes: &[String],
        notice: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let Some([current, previous]) = either(hashes) else {
            return Ok(false);
        };
        let params = [Param::Uuid(account_id), current, previous, Param::Time(now)];
        let mut tx = self.begin().await?;
        if D::execute(&mut tx, &sql::USE_RECOVERY_CODE, &params).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_mail::<D>(&mut tx, notice).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn unused_recovery_codes(&self, account_id: Uuid) -> Result<u64, StorageError> {
        let rows = self
            .fetch(&sql::UNUSED_RECOVERY_CODES, &[Param::Uuid(account_id)])
            .await?;
        let unused = match rows.first() {
            Some(row) => D::bigint(row, "unused")?,
            None => 0,
        };
        Ok(u64::try_from(unused).unwrap_or(0))
    }

    async fn replace_recovery_codes(
        &self,
        account_id: Uuid,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        D::execute(
            &mut tx,
            &sql::DELETE_RECOVERY_CODES,
            &[Param::Uuid(account_id)],
        )
        .await?;
        for hash in hashes {
            let params = [Param::Text(hash), Param::Uuid(account_id), Param::Time(now)];
            D::execute(&mut tx, &sql::INSERT_RECOVERY_CODE, &params).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_challenge(
        &self,
        hash: &str,
        challenge: &StoredChallenge,
    ) -> Result<(), StorageError> {
        let params = [
            Param::Text(hash),
            Param::Uuid(challenge.account_id),
            Param::Text(&challenge.binding),
            Param::Time(challenge.expires_at),
        ];
        self.execute(&sql::INSERT_CHALLENGE, &params).await?;
        Ok(())
    }

    async fn challenge(&self, hashes: &[String]) -> Result<Option<StoredChallenge>, StorageError> {
        let Some(params) = either(hashes) else {
            return Ok(None);
        };
        let rows = self.fetch(&sql::CHALLENGE, &params).await?;
        rows.first()
            .map(|row| {
                Ok(StoredChallenge {
                    account_id: D::uuid(row, "account_id")?,
                    binding: D::text(row, "binding")?,
                    expires_at: D::time(row, "expires_at")?,
                    used: D::optional_time(row, "used_at")?.is_some(),
                })
            })
            .transpose()
    }

    async fn use_challenge(
        &self,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let Some([current, previous]) = either(hashes) else {
            return Ok(false);
        };
        let params = [current, previous, Param::Time(now)];
        Ok(self.execute(&sql::USE_CHALLENGE, &params).await? == 1)
    }

    async fn release_challenge(
        &self,
        hashes: &[String],
        used_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let Some([current, previous]) = either(hashes) else {
            return Ok(());
        };
        let params = [current, previous, Param::Time(used_at)];
        self.execute(&sql::RELEASE_CHALLENGE, &params).await?;
        Ok(())
    }

    async fn prune_challenges(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        self.execute(&sql::PRUNE_CHALLENGES, &[Param::Time(before)])
            .await
    }
}

/// Sets the account's `totp_enabled`; the account as it is now.
async fn set_flag<D: Engine>(
    tx: &mut super::writes::WriteTx<'_, D::Db>,
    id: Uuid,
    on: bool,
    now: DateTime<Utc>,
) -> Result<Option<Account>, StorageError> {
    let params = [Param::Uuid(id), Param::Bool(on), Param::Time(now)];
    let rows = D::fetch(tx, &sql::SET_TOTP_ENABLED, &params).await?;
    rows.first()
        .map(|row| rows::account(&D::row(row)))
        .transpose()
}
