//! Statements on password hashes and the failed sign-ins behind the lockout.

use super::Sql;

pub(in crate::storage) const CREDENTIALS_BY_EMAIL: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    ", password_hash FROM accounts WHERE email = $1 AND deleted_at IS NULL"
));

/// Replaces a hash only if it is still the one that was checked.
pub(in crate::storage) const REPLACE_PASSWORD_HASH: Sql = Sql::both(
    "UPDATE accounts SET password_hash = $3 \
     WHERE id = $1 AND password_hash = $2 AND deleted_at IS NULL",
);

/// The conflict clause of a reservation ($1 address, $2 now, $3
/// LOGIN_MAX_FAILURES, $4 stale before): its WHERE makes the test and the
/// increment one step, so however many calls race, at most $3 get a row
/// back. `last_failed_at` is the last activity; `pending` checks under way.
macro_rules! reserve_on_conflict {
    () => {
        " ON CONFLICT (email) DO UPDATE SET \
           pending = CASE WHEN login_failures.last_failed_at < $4 THEN 1 \
                          ELSE login_failures.pending + 1 END, \
           last_failed_at = excluded.last_failed_at \
         WHERE (login_failures.locked_until IS NULL OR login_failures.locked_until <= $2) \
           AND login_failures.failures + CASE WHEN login_failures.last_failed_at < $4 THEN 0 \
                                              ELSE login_failures.pending END < $3 \
         RETURNING lockouts"
    };
}

/// Reserves a check (see `reserve_on_conflict!`).
pub(in crate::storage) const RESERVE_LOGIN_ATTEMPT: Sql = Sql::both(concat!(
    "INSERT INTO login_failures (email, failures, lockouts, locked_until, last_failed_at, pending) \
     VALUES ($1, 0, 0, NULL, $2, 1)",
    reserve_on_conflict!()
));

/// A reservation and, once it is held, the address's account and hash, in
/// one round trip: a sign-in shares the machine with argon2, and every
/// statement costs it CPU. The lockout on record (`held`) is read first, so
/// that a lockout that began since the caller's own read takes no row lock,
/// writes nothing and reads no account; `reserved` is decided by the upsert
/// alone. Its commit
/// does not wait for the WAL flush (`synchronous_commit` off for this
/// transaction alone): a reservation lost in a crash only lets one more
/// check through the limit, once, and every reservation counts as
/// abandoned a minute after it was made anyway; the failure or success that
/// settles it commits durably.
pub(in crate::storage) const RESERVE_AND_READ: Sql<Option<&str>> = Sql {
    postgres: Some(concat!(
        "WITH held AS (SELECT locked_until, lockouts FROM login_failures WHERE email = $1), \
         r AS (INSERT INTO login_failures \
             (email, failures, lockouts, locked_until, last_failed_at, pending) \
             SELECT $1, 0, 0, NULL::timestamptz, $2, 1 \
             WHERE NOT EXISTS (SELECT 1 FROM held WHERE locked_until > $2)",
        reserve_on_conflict!(),
        "), \
         v AS (SELECT EXISTS (SELECT 1 FROM r) AS reserved) \
         SELECT v.reserved, held.locked_until, COALESCE(held.lockouts, 0) AS lockouts, \
           a.id IS NOT NULL AS found, a.* \
         FROM v LEFT JOIN held ON TRUE \
           CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS quick \
           LEFT JOIN LATERAL (SELECT ",
        account_columns!(),
        ", password_hash FROM accounts \
             WHERE v.reserved AND email = $1 AND deleted_at IS NULL) AS a ON TRUE"
    )),
    sqlite: None,
};

pub(in crate::storage) const LOGIN_LOCK: Sql =
    Sql::both("SELECT locked_until, lockouts FROM login_failures WHERE email = $1");

/// Turns a reservation into a failure, atomically across instances.
pub(in crate::storage) const RECORD_LOGIN_FAILURE: Sql = Sql::both(
    "INSERT INTO login_failures (email, failures, lockouts, locked_until, last_failed_at, pending) \
     VALUES ($1, 1, 0, NULL, $2, 0) \
     ON CONFLICT (email) DO UPDATE SET failures = login_failures.failures + 1, \
       pending = CASE WHEN login_failures.pending > 0 THEN login_failures.pending - 1 ELSE 0 END, \
       last_failed_at = excluded.last_failed_at \
     RETURNING failures, lockouts",
);

/// Starts a lockout once; of two instances that both saw the threshold, the
/// second finds the failures reset and changes nothing.
pub(in crate::storage) const LOCK_LOGIN: Sql = Sql::both(
    "UPDATE login_failures SET failures = 0, lockouts = lockouts + 1, locked_until = $3 \
     WHERE email = $1 AND failures >= $2",
);

/// A new password or a deleted account: the address starts afresh.
pub(in crate::storage) const CLEAR_LOGIN_FAILURES: Sql =
    Sql::both("DELETE FROM login_failures WHERE email = $1");

/// A success when no other check is under way and no lockout runs: the
/// address starts afresh.
pub(in crate::storage) const CLEAR_SETTLED_LOGIN_FAILURES: Sql = Sql::both(
    "DELETE FROM login_failures WHERE email = $1 AND pending <= 1 \
     AND (locked_until IS NULL OR locked_until <= $2)",
);

/// A success beside other checks under way: only its reservation goes.
pub(in crate::storage) const RELEASE_LOGIN_ATTEMPT: Sql = Sql::both(
    "UPDATE login_failures SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END \
     WHERE email = $1",
);

pub(in crate::storage) const PRUNE_LOGIN_FAILURES: Sql = Sql::both(
    "DELETE FROM login_failures WHERE last_failed_at < $1 \
     AND (locked_until IS NULL OR locked_until < $1)",
);

pub(in crate::storage) const CREDENTIALS_BY_ID: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    ", password_hash FROM accounts WHERE id = $1 AND deleted_at IS NULL"
));

/// Sets a new password if the old hash and the address ($6) are still the
/// ones that were checked; `$5` also marks the account verified (a reset
/// proved the mailbox).
pub(in crate::storage) const REPLACE_PASSWORD: Sql = Sql::both(concat!(
    "UPDATE accounts SET password_hash = $3, updated_at = $4, \
     verified = CASE WHEN $5 THEN TRUE ELSE verified END \
     WHERE id = $1 AND password_hash = $2 AND email = $6 AND deleted_at IS NULL RETURNING ",
    account_columns!()
));

/// An account brought from another system: inserted unless its id or its
/// address is already there, and with no mail.
pub(in crate::storage) const IMPORT_ACCOUNT: Sql = Sql::both(
    "INSERT INTO accounts (id, email, username, password_hash, first_name, last_name, \
     phone_number, address, verified, term_and_condition, created_from, created_at, updated_at, \
     locale) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT DO NOTHING",
);
