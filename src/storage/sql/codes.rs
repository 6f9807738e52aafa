//! Statements on confirmation codes and the tries counted on them.

use super::Sql;

/// Stores the code of an account's newest confirmation mail, replacing the
/// one before (and its count of wrong tries), only when $4 is set: the same
/// statement runs for every address.
pub(in crate::storage) const STORE_CODE: Sql = Sql::both(
    "INSERT INTO confirmation_codes (account_id, code_hmac, expires_at, failures) \
     SELECT $1, $2, $3, 0 WHERE $4 \
     ON CONFLICT (account_id) DO UPDATE SET code_hmac = excluded.code_hmac, \
       expires_at = excluded.expires_at, failures = 0",
);

/// Counts a try at the code of the live account with address $1, unless
/// it is burned. Without such a code, the stand-in row of the nil id ($3)
/// is written instead (its count stays 0), so that every try writes one
/// row: that row comes back, and means "no code to try".
pub(in crate::storage) const TRY_CODE: Sql = Sql::both(
    "UPDATE confirmation_codes \
     SET failures = CASE WHEN account_id = $3 THEN 0 ELSE failures + 1 END \
     WHERE account_id = COALESCE( \
       (SELECT c.account_id FROM confirmation_codes c JOIN accounts a ON a.id = c.account_id \
        WHERE a.email = $1 AND a.deleted_at IS NULL AND c.failures < $2), $3) \
     RETURNING account_id, code_hmac, expires_at",
);

/// Counts a try at a code per address ($1), known or not: $2 is 1 when the
/// address had no code to count it on, else 0, so that every address
/// writes the same row and an unknown one burns after as many wrong tries
/// as a real code.
pub(in crate::storage) const COUNT_ADDRESS_CODE_TRY: Sql = Sql::both(
    "INSERT INTO code_tries (email, failures, last_tried_at) VALUES ($1, $2, $3) \
     ON CONFLICT (email) DO UPDATE SET failures = code_tries.failures + excluded.failures, \
       last_tried_at = excluded.last_tried_at \
     RETURNING failures",
);

pub(in crate::storage) const PRUNE_CODE_TRIES: Sql =
    Sql::both("DELETE FROM code_tries WHERE last_tried_at < $1");

/// The wrong tries counted on the code of the live account with address $1.
pub(in crate::storage) const CODE_FAILURES: Sql = Sql::both(
    "SELECT c.failures FROM confirmation_codes c JOIN accounts a ON a.id = c.account_id \
     WHERE a.email = $1 AND a.deleted_at IS NULL",
);

/// A try that was the right code does not count as a wrong one.
pub(in crate::storage) const REFUND_CODE_TRY: Sql = Sql::both(
    "UPDATE confirmation_codes SET failures = failures - 1 WHERE account_id = $1 AND failures > 0",
);

pub(in crate::storage) const DELETE_ACCOUNT_CODE: Sql =
    Sql::both("DELETE FROM confirmation_codes WHERE account_id = $1");
