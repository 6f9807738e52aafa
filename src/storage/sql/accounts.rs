//! Statements on accounts: registration, look-ups, verification, profile
//! and address changes, erasure and listing.

use super::Sql;

pub(in crate::storage) const INSERT_ACCOUNT: Sql = Sql::both(
    "INSERT INTO accounts (id, email, username, password_hash, first_name, last_name, \
     phone_number, address, verified, term_and_condition, created_from, created_at, updated_at, \
     locale) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
);

pub(in crate::storage) const ACCOUNT_BY_EMAIL: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE email = $1 AND deleted_at IS NULL"
));

/// The live account of one id: a lone look-up needs no list.
pub(in crate::storage) const ACCOUNT_BY_ID: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE id = $1 AND deleted_at IS NULL"
));

/// Every row of a list of ids; missing ids are simply absent. On SQLite the
/// list drives the loop (`CROSS JOIN` fixes the order), one index look-up per
/// id: `id IN (SELECT …)` would first copy the list into a temporary b-tree,
/// which costs more than the look-ups themselves.
pub(in crate::storage) const ACCOUNTS_BY_IDS: Sql = Sql {
    postgres: concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE id = ANY($1) AND deleted_at IS NULL"
    ),
    sqlite: concat!(
        "SELECT ",
        account_columns!(),
        " FROM (SELECT value AS wanted FROM json_each($1)) CROSS JOIN accounts \
         WHERE id = wanted AND deleted_at IS NULL"
    ),
};

/// Verifies a list of live accounts in one statement and returns every one
/// that exists, verified already or just now; `updated_at` moves, and an
/// `ACCOUNT_VERIFIED` event is written, only for rows that change.
/// PostgreSQL: the rows are locked first (`FOR UPDATE` reads the latest
/// committed version), so of concurrent confirmations of one account exactly
/// one sees it unverified and writes the event; each caller reads a
/// committed `verified = true`. SQLite: [`VERIFIED_EVENTS`] runs first in
/// the same transaction, under the one write lock.
pub(in crate::storage) const MARK_VERIFIED: Sql = Sql {
    postgres: concat!(
        "WITH old AS (SELECT id, verified AS was FROM accounts \
             WHERE id = ANY($1) AND deleted_at IS NULL FOR UPDATE), \
         changed AS (UPDATE accounts a SET verified = TRUE, \
             updated_at = CASE WHEN old.was THEN a.updated_at ELSE $2 END \
             FROM old WHERE a.id = old.id RETURNING a.*, old.was), \
         events AS (INSERT INTO account_events (type, account_id, occurred_at) \
             SELECT 2, id, $2 FROM changed WHERE NOT was ORDER BY id) \
         SELECT ",
        account_columns!(),
        " FROM changed"
    ),
    sqlite: concat!(
        "UPDATE accounts SET verified = 1, \
         updated_at = CASE WHEN verified THEN updated_at ELSE $2 END \
         WHERE id IN (SELECT value FROM json_each($1)) AND deleted_at IS NULL RETURNING ",
        account_columns!()
    ),
};

/// SQLite's `ACCOUNT_VERIFIED` events, written before [`MARK_VERIFIED`] in
/// its transaction; PostgreSQL writes them in that statement.
pub(in crate::storage) const VERIFIED_EVENTS: Sql<Option<&str>> = Sql {
    postgres: None,
    sqlite: Some(
        "INSERT INTO account_events (type, account_id, occurred_at) \
         SELECT 2, id, $2 FROM accounts WHERE id IN (SELECT value FROM json_each($1)) \
         AND NOT verified AND deleted_at IS NULL ORDER BY id",
    ),
};

/// One atomic upsert: of two concurrent requests only one can win.
pub(in crate::storage) const CLAIM_RESEND_COOLDOWN: Sql = Sql::both(
    "INSERT INTO resend_cooldowns (email, last_requested_at) VALUES ($1, $2) \
     ON CONFLICT (email) DO UPDATE SET last_requested_at = excluded.last_requested_at \
     WHERE resend_cooldowns.last_requested_at <= $3 RETURNING email",
);

pub(in crate::storage) const LAST_RESEND_REQUEST: Sql =
    Sql::both("SELECT last_requested_at FROM resend_cooldowns WHERE email = $1");

/// Removes the mail just written unless `$2` (deliver) is set.
pub(in crate::storage) const DROP_UNDELIVERED_MAIL: Sql =
    Sql::both("DELETE FROM email_outbox WHERE id = $1 AND NOT $2");

pub(in crate::storage) const PRUNE_RESEND_COOLDOWNS: Sql =
    Sql::both("DELETE FROM resend_cooldowns WHERE last_requested_at < $1");

/// Whether a live account is verified, locking its row until the
/// transaction ends (PostgreSQL), so that exactly one change records that
/// it became verified.
pub(in crate::storage) const LOCK_VERIFIED: Sql = Sql {
    postgres: "SELECT verified FROM accounts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    sqlite: "SELECT verified FROM accounts WHERE id = $1 AND deleted_at IS NULL",
};

/// Changes the masked profile fields ($2, $4, … say which) of a live
/// account, only if one of them differs; no row when nothing changes.
pub(in crate::storage) const UPDATE_PROFILE: Sql = Sql::both(concat!(
    "UPDATE accounts SET \
       username = CASE WHEN $2 THEN $3 ELSE username END, \
       first_name = CASE WHEN $4 THEN $5 ELSE first_name END, \
       last_name = CASE WHEN $6 THEN $7 ELSE last_name END, \
       phone_number = CASE WHEN $8 THEN $9 ELSE phone_number END, \
       address = CASE WHEN $10 THEN $11 ELSE address END, \
       locale = CASE WHEN $12 THEN $13 ELSE locale END, \
       updated_at = $14 \
     WHERE id = $1 AND deleted_at IS NULL AND ( \
       ($2 AND username <> $3) OR ($4 AND first_name <> $5) OR ($6 AND last_name <> $7) \
       OR ($8 AND phone_number <> $9) OR ($10 AND address <> $11) OR ($12 AND locale <> $13)) \
     RETURNING ",
    account_columns!()
));

/// Moves a live account from address $2 to $3 and marks it verified; no row
/// when it no longer has $2 or its password hash is no longer $5 (a reset or
/// change since the link was issued). The unique index decides a race for $3.
pub(in crate::storage) const CHANGE_EMAIL: Sql = Sql::both(concat!(
    "UPDATE accounts SET email = $3, verified = TRUE, updated_at = $4 \
     WHERE id = $1 AND email = $2 AND password_hash = $5 AND deleted_at IS NULL RETURNING ",
    account_columns!()
));

/// Erases a live account's personal data, if its hash is still $3 (any
/// hash when $3 is NULL), and keeps the row as a tombstone.
pub(in crate::storage) const ERASE_ACCOUNT: Sql = Sql {
    postgres: "UPDATE accounts SET email = '', username = '', first_name = '', last_name = '', \
                 phone_number = '', address = '', password_hash = '', verified = FALSE, \
                 created_from = '', locale = '', image = '', image_thumbnail = '', deleted_at = $2, updated_at = $2 \
               WHERE id = $1 AND ($3::text IS NULL OR password_hash = $3) AND deleted_at IS NULL",
    sqlite: "UPDATE accounts SET email = '', username = '', first_name = '', last_name = '', \
               phone_number = '', address = '', password_hash = '', verified = FALSE, \
               created_from = '', locale = '', image = '', image_thumbnail = '', deleted_at = $2, updated_at = $2 \
             WHERE id = $1 AND ($3 IS NULL OR password_hash = $3) AND deleted_at IS NULL",
};

/// The dead letters of an account's mail, which hold its address.
pub(in crate::storage) const DELETE_ACCOUNT_DEAD_LETTERS: Sql = Sql::both(
    "DELETE FROM failed_email_tasks \
     WHERE outbox_id IN (SELECT id FROM email_outbox WHERE account_id = $1)",
);

/// Every outbox row of an account: pending mail is cancelled, and sent mail
/// kept for the retention holds personal data.
pub(in crate::storage) const DELETE_ACCOUNT_MAIL: Sql =
    Sql::both("DELETE FROM email_outbox WHERE account_id = $1");

/// The cooldowns and failure counts kept under an erased address.
pub(in crate::storage) const DELETE_ADDRESS_STATE: Sql =
    Sql::both("DELETE FROM resend_cooldowns WHERE email = $1 OR email = 'password-reset:' || $1");

pub(in crate::storage) const IS_TOMBSTONE: Sql =
    Sql::both("SELECT 1 AS present FROM accounts WHERE id = $1 AND deleted_at IS NOT NULL");

/// A page of live accounts after id $1 (none: from the start), in id order,
/// whose address starts with $2 and, unless $3 is NULL, whose `verified` is $3.
pub(in crate::storage) const LIST_ACCOUNTS: Sql = Sql {
    postgres: concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR id > $1) \
          AND substr(email, 1, length($2)) = $2 AND ($3::boolean IS NULL OR verified = $3) \
          ORDER BY id LIMIT $4"
    ),
    sqlite: concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE deleted_at IS NULL AND ($1 IS NULL OR id > $1) \
          AND substr(email, 1, length($2)) = $2 AND ($3 IS NULL OR verified = $3) \
          ORDER BY id LIMIT $4"
    ),
};
