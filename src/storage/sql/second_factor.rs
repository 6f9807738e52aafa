//! Statements on TOTP secrets, recovery codes and sign-in challenges.

use super::Sql;

pub(in crate::storage) const SECOND_FACTOR: Sql = Sql::both(
    "SELECT sealed_secret, enabled_at, last_step FROM second_factors WHERE account_id = $1",
);

/// Stores a pending secret unless one is enabled; no row changed then.
pub(in crate::storage) const START_SECOND_FACTOR: Sql = Sql::both(
    "INSERT INTO second_factors (account_id, sealed_secret, started_at) VALUES ($1, $2, $3) \
     ON CONFLICT (account_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
       started_at = excluded.started_at, last_step = 0 \
     WHERE second_factors.enabled_at IS NULL",
);

pub(in crate::storage) const ENABLE_SECOND_FACTOR: Sql = Sql::both(
    "UPDATE second_factors SET enabled_at = $2, last_step = $3 \
     WHERE account_id = $1 AND enabled_at IS NULL",
);

pub(in crate::storage) const DELETE_SECOND_FACTOR: Sql =
    Sql::both("DELETE FROM second_factors WHERE account_id = $1 AND enabled_at IS NOT NULL");

/// Sets the account's flag; the changed account.
pub(in crate::storage) const SET_TOTP_ENABLED: Sql = Sql::both(concat!(
    "UPDATE accounts SET totp_enabled = $2, updated_at = $3 \
     WHERE id = $1 AND deleted_at IS NULL RETURNING ",
    account_columns!()
));

pub(in crate::storage) const DELETE_ANY_SECOND_FACTOR: Sql =
    Sql::both("DELETE FROM second_factors WHERE account_id = $1");

pub(in crate::storage) const DELETE_CHALLENGES: Sql =
    Sql::both("DELETE FROM sign_in_challenges WHERE account_id = $1");

pub(in crate::storage) const USE_TOTP_STEP: Sql = Sql::both(
    "UPDATE second_factors SET last_step = $2 \
     WHERE account_id = $1 AND enabled_at IS NOT NULL AND last_step < $2",
);

pub(in crate::storage) const RESEAL_SECOND_FACTOR: Sql = Sql::both(
    "UPDATE second_factors SET sealed_secret = $3 WHERE account_id = $1 AND sealed_secret = $2",
);

pub(in crate::storage) const USE_RECOVERY_CODE: Sql = Sql::both(
    "UPDATE recovery_codes SET used_at = $4 \
     WHERE account_id = $1 AND code_hash IN ($2, $3) AND used_at IS NULL",
);

pub(in crate::storage) const UNUSED_RECOVERY_CODES: Sql = Sql::both(
    "SELECT COUNT(*) AS unused FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL",
);

pub(in crate::storage) const DELETE_RECOVERY_CODES: Sql =
    Sql::both("DELETE FROM recovery_codes WHERE account_id = $1");

pub(in crate::storage) const INSERT_RECOVERY_CODE: Sql =
    Sql::both("INSERT INTO recovery_codes (code_hash, account_id, created_at) VALUES ($1, $2, $3)");

pub(in crate::storage) const INSERT_CHALLENGE: Sql = Sql::both(
    "INSERT INTO sign_in_challenges (challenge_hash, account_id, binding, expires_at) \
     VALUES ($1, $2, $3, $4)",
);

pub(in crate::storage) const CHALLENGE: Sql = Sql::both(
    "SELECT account_id, binding, expires_at, used_at FROM sign_in_challenges \
     WHERE challenge_hash IN ($1, $2)",
);

pub(in crate::storage) const USE_CHALLENGE: Sql = Sql::both(
    "UPDATE sign_in_challenges SET used_at = $3 \
     WHERE challenge_hash IN ($1, $2) AND used_at IS NULL",
);

/// Gives back a challenge claimed at $3, and only that claim.
pub(in crate::storage) const RELEASE_CHALLENGE: Sql = Sql::both(
    "UPDATE sign_in_challenges SET used_at = NULL \
     WHERE challenge_hash IN ($1, $2) AND used_at = $3",
);

pub(in crate::storage) const PRUNE_CHALLENGES: Sql =
    Sql::both("DELETE FROM sign_in_challenges WHERE expires_at < $1");
