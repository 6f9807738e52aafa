//! Every statement the storage runs, with its PostgreSQL and SQLite text side
//! by side (one text where the dialects agree; SQLite reads `$n` as well).
//!
//! Values whose representation differs (UUIDs, times, lists of UUIDs) are
//! bound and read by each backend's `Dialect`, so the texts differ only where
//! the SQL itself does.

/// Which of a statement's texts a backend runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Flavour {
    Postgres,
    Sqlite,
}

/// One statement in both dialects.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sql<T = &'static str> {
    pub postgres: T,
    pub sqlite: T,
}

impl<T: Copy> Sql<T> {
    pub(super) fn text(&self, flavour: Flavour) -> T {
        match flavour {
            Flavour::Postgres => self.postgres,
            Flavour::Sqlite => self.sqlite,
        }
    }
}

impl Sql {
    /// A statement both dialects spell the same way.
    const fn both(text: &'static str) -> Self {
        Sql {
            postgres: text,
            sqlite: text,
        }
    }
}

macro_rules! account_columns {
    () => {
        "id, email, username, first_name, last_name, phone_number, address, verified, \
         term_and_condition, created_from, locale, created_at, updated_at"
    };
}

macro_rules! outbox_columns {
    () => {
        "id, account_id, kind, recipient, subject, text_body, html_body, created_at, attempts, \
         locale"
    };
}

/// NOTIFY channel that tells every instance's worker that mail was queued.
pub(super) const MAIL_CHANNEL: &str = "email_outbox";

/// NOTIFY channel on which `account_events`' trigger announces new events.
pub(super) const EVENTS_CHANNEL: &str = "account_events";

pub(super) const PING: Sql = Sql::both("SELECT 1");

/// Wakes the workers of every instance (delivered at commit). A SQLite
/// database has one process; its workers are woken in-process.
pub(super) const NOTIFY_WORKERS: Sql<Option<&str>> = Sql {
    postgres: Some("SELECT pg_notify($1, '')"),
    sqlite: None,
};

/// Checks the outbox's account reference at commit instead of at each
/// statement, for the rest of the transaction. PostgreSQL's constraint is
/// declared deferred by migration 4; SQLite resets the pragma itself when the
/// transaction ends.
pub(super) const DEFER_FOREIGN_KEYS: Sql<Option<&str>> = Sql {
    postgres: None,
    sqlite: Some("PRAGMA defer_foreign_keys = ON"),
};

pub(super) const INSERT_ACCOUNT: Sql = Sql::both(
    "INSERT INTO accounts (id, email, username, password_hash, first_name, last_name, \
     phone_number, address, verified, term_and_condition, created_from, created_at, updated_at, \
     locale) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
);

pub(super) const ACCOUNT_BY_EMAIL: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE email = $1 AND deleted_at IS NULL"
));

/// The live account of one id: a lone look-up needs no list.
pub(super) const ACCOUNT_BY_ID: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE id = $1 AND deleted_at IS NULL"
));

/// Every row of a list of ids; missing ids are simply absent. On SQLite the
/// list drives the loop (`CROSS JOIN` fixes the order), one index look-up per
/// id: `id IN (SELECT …)` would first copy the list into a temporary b-tree,
/// which costs more than the look-ups themselves.
pub(super) const ACCOUNTS_BY_IDS: Sql = Sql {
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
pub(super) const MARK_VERIFIED: Sql = Sql {
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
pub(super) const VERIFIED_EVENTS: Sql<Option<&str>> = Sql {
    postgres: None,
    sqlite: Some(
        "INSERT INTO account_events (type, account_id, occurred_at) \
         SELECT 2, id, $2 FROM accounts WHERE id IN (SELECT value FROM json_each($1)) \
         AND NOT verified AND deleted_at IS NULL ORDER BY id",
    ),
};

pub(super) const INSERT_MAIL: Sql = Sql::both(
    "INSERT INTO email_outbox (id, account_id, kind, recipient, subject, text_body, \
     html_body, next_attempt_at, created_at, locale) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
);

/// Claims due mail: `$lock` ends the subquery that picks the rows.
macro_rules! claim_mail {
    ($lock:literal) => {
        concat!(
            "UPDATE email_outbox SET locked_until = $2, attempts = attempts + 1, \
                 claim_token = $4, last_attempt_at = $1, \
                 first_attempt_at = COALESCE(first_attempt_at, $1) \
             WHERE id IN (SELECT id FROM email_outbox \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                   AND (locked_until IS NULL OR locked_until <= $1) \
                   AND (kind = 'account_deleted' OR EXISTS (SELECT 1 FROM accounts a \
                        WHERE a.id = email_outbox.account_id AND a.deleted_at IS NULL)) \
                 ORDER BY next_attempt_at LIMIT $3",
            $lock,
            ") RETURNING ",
            outbox_columns!()
        )
    };
}

/// Mail of a deleted account is never claimed (but its goodbye notice): a
/// deletion deletes the account's mail, and this catches any queued by a
/// call that raced it.
///
/// PostgreSQL: SKIP LOCKED lets workers of several instances claim disjoint
/// rows concurrently instead of queueing on each other's row locks. SQLite:
/// one statement takes the write lock before reading, so two workers can
/// never claim the same row.
pub(super) const CLAIM_MAIL: Sql = Sql {
    postgres: claim_mail!(" FOR UPDATE SKIP LOCKED"),
    sqlite: claim_mail!(""),
};

/// `$1` is a list of ids: an array in PostgreSQL, a JSON array in SQLite.
pub(super) const MARK_MAIL_SENT: Sql = Sql {
    postgres: "UPDATE email_outbox SET status = 'sent', sent_at = $2, locked_until = NULL, \
               claim_token = NULL, last_error = NULL \
               WHERE id = ANY($1) AND claim_token = $3 AND status = 'pending'",
    sqlite: "UPDATE email_outbox SET status = 'sent', sent_at = $2, locked_until = NULL, \
             claim_token = NULL, last_error = NULL \
             WHERE id IN (SELECT value FROM json_each($1)) AND claim_token = $3 \
             AND status = 'pending'",
};

pub(super) const RESCHEDULE_MAIL: Sql = Sql::both(
    "UPDATE email_outbox SET next_attempt_at = $2, locked_until = NULL, claim_token = NULL, \
     last_error = $3 WHERE id = $1 AND claim_token = $4 AND status = 'pending'",
);

pub(super) const MARK_MAIL_FAILED: Sql = Sql::both(
    "UPDATE email_outbox SET status = 'failed', locked_until = NULL, claim_token = NULL, \
     last_error = $2 WHERE id = $1 AND claim_token = $3 AND status = 'pending'",
);

pub(super) const INSERT_DEAD_LETTER: Sql = Sql::both(
    "INSERT INTO failed_email_tasks (id, outbox_id, recipient, subject, error_kind, \
     error, attempts, first_attempt_at, last_attempt_at, failed_at) \
     SELECT $1, id, recipient, subject, $3, $4, attempts, first_attempt_at, \
     last_attempt_at, $5 FROM email_outbox WHERE id = $2",
);

/// `$1` is a list of ids, as in [`MARK_MAIL_SENT`].
pub(super) const RELEASE_MAIL: Sql = Sql {
    postgres: "UPDATE email_outbox SET locked_until = NULL, claim_token = NULL, \
               attempts = GREATEST(attempts - 1, 0) \
               WHERE id = ANY($1) AND claim_token = $2 AND status = 'pending'",
    sqlite: "UPDATE email_outbox SET locked_until = NULL, claim_token = NULL, \
             attempts = MAX(attempts - 1, 0) \
             WHERE id IN (SELECT value FROM json_each($1)) AND claim_token = $2 \
             AND status = 'pending'",
};

/// One atomic upsert: of two concurrent requests only one can win.
pub(super) const CLAIM_RESEND_COOLDOWN: Sql = Sql::both(
    "INSERT INTO resend_cooldowns (email, last_requested_at) VALUES ($1, $2) \
     ON CONFLICT (email) DO UPDATE SET last_requested_at = excluded.last_requested_at \
     WHERE resend_cooldowns.last_requested_at <= $3 RETURNING email",
);

pub(super) const LAST_RESEND_REQUEST: Sql =
    Sql::both("SELECT last_requested_at FROM resend_cooldowns WHERE email = $1");

/// Removes the mail just written unless `$2` (deliver) is set.
pub(super) const DROP_UNDELIVERED_MAIL: Sql =
    Sql::both("DELETE FROM email_outbox WHERE id = $1 AND NOT $2");

pub(super) const PRUNE_RESEND_COOLDOWNS: Sql =
    Sql::both("DELETE FROM resend_cooldowns WHERE last_requested_at < $1");

pub(super) const PRUNE_SENT: Sql = Sql::both(
    "DELETE FROM email_outbox WHERE status = 'sent' AND sent_at < $1 \
     AND id NOT IN (SELECT outbox_id FROM failed_email_tasks)",
);

/// One row when the migrations table exists, none otherwise.
pub(super) const MIGRATIONS_TABLE: Sql = Sql {
    postgres: "SELECT 1 AS present WHERE to_regclass('_sqlx_migrations') IS NOT NULL",
    sqlite: "SELECT 1 AS present FROM sqlite_master \
             WHERE type = 'table' AND name = '_sqlx_migrations'",
};

/// The migrations applied to a database.
pub(super) const APPLIED_MIGRATIONS: Sql =
    Sql::both("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version");

/// When the next pending message can be claimed: its retry is due and any
/// claim on it has lapsed.
pub(super) const NEXT_MAIL_DUE: Sql = Sql {
    postgres: "SELECT MIN(GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at))) \
               AS due FROM email_outbox WHERE status = 'pending'",
    sqlite: "SELECT MIN(MAX(next_attempt_at, COALESCE(locked_until, next_attempt_at))) \
             AS due FROM email_outbox WHERE status = 'pending'",
};

pub(super) const OUTBOX_STATUS: Sql = Sql {
    postgres: "SELECT \
                 COUNT(*) FILTER (WHERE status = 'pending') AS pending, \
                 COUNT(*) FILTER (WHERE status = 'pending' AND locked_until > $1) AS in_flight, \
                 COUNT(*) FILTER (WHERE status = 'sent') AS sent, \
                 COUNT(*) FILTER (WHERE status = 'failed') AS failed, \
                 MIN(created_at) FILTER (WHERE status = 'pending') AS oldest_pending \
               FROM email_outbox",
    sqlite: "SELECT \
               COALESCE(SUM(status = 'pending'), 0) AS pending, \
               COALESCE(SUM(status = 'pending' AND locked_until > $1), 0) AS in_flight, \
               COALESCE(SUM(status = 'sent'), 0) AS sent, \
               COALESCE(SUM(status = 'failed'), 0) AS failed, \
               MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest_pending \
             FROM email_outbox",
};

pub(super) const DEAD_LETTERS: Sql = Sql::both(
    "SELECT id, outbox_id, recipient, subject, error_kind, error, attempts, \
     first_attempt_at, last_attempt_at, failed_at FROM failed_email_tasks \
     WHERE retried_at IS NULL ORDER BY failed_at DESC, id DESC LIMIT $1",
);

/// `$2` is one dead letter's id, or NULL for all of them.
pub(super) const REQUEUE_DEAD_LETTERS: Sql = Sql {
    postgres: "UPDATE email_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, \
                   locked_until = NULL, claim_token = NULL, last_error = NULL, \
                   first_attempt_at = NULL, last_attempt_at = NULL \
               WHERE status = 'failed' AND id IN (SELECT outbox_id FROM failed_email_tasks \
                   WHERE retried_at IS NULL AND ($2::uuid IS NULL OR id = $2)) \
               RETURNING id",
    sqlite: "UPDATE email_outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, \
                 locked_until = NULL, claim_token = NULL, last_error = NULL, \
                 first_attempt_at = NULL, last_attempt_at = NULL \
             WHERE status = 'failed' AND id IN (SELECT outbox_id FROM failed_email_tasks \
                 WHERE retried_at IS NULL AND ($2 IS NULL OR id = $2)) \
             RETURNING id",
};

/// Marks the dead letters whose message went back to the queue: `$2` is the
/// list of requeued outbox ids, `$3` as in [`REQUEUE_DEAD_LETTERS`].
pub(super) const MARK_DEAD_LETTERS_RETRIED: Sql = Sql {
    postgres: "UPDATE failed_email_tasks SET retried_at = $1 \
               WHERE retried_at IS NULL AND outbox_id = ANY($2) \
               AND ($3::uuid IS NULL OR id = $3)",
    sqlite: "UPDATE failed_email_tasks SET retried_at = $1 \
             WHERE retried_at IS NULL AND outbox_id IN (SELECT value FROM json_each($2)) \
             AND ($3 IS NULL OR id = $3)",
};

/// Takes one call from a GCRA bucket in one statement, so that every
/// instance sees one bucket: $1 key, $2 now, $3 interval between calls,
/// $4 capacity (interval × burst), all in microseconds. The SET expressions
/// read the row as it was; `allowed` says whether the call fit.
pub(super) const TAKE_FROM_BUCKET: Sql = Sql::both(
    "INSERT INTO rate_limit_buckets (key, tat, allowed) VALUES ($1, $2 + $3, TRUE) \
     ON CONFLICT (key) DO UPDATE SET \
       allowed = (CASE WHEN rate_limit_buckets.tat > $2 THEN rate_limit_buckets.tat ELSE $2 END) + $3 - $2 <= $4, \
       tat = CASE \
         WHEN (CASE WHEN rate_limit_buckets.tat > $2 THEN rate_limit_buckets.tat ELSE $2 END) + $3 - $2 <= $4 \
         THEN (CASE WHEN rate_limit_buckets.tat > $2 THEN rate_limit_buckets.tat ELSE $2 END) + $3 \
         ELSE rate_limit_buckets.tat END \
     RETURNING allowed, tat",
);

/// Buckets that are full again hold nothing worth keeping.
pub(super) const PRUNE_BUCKETS: Sql = Sql::both("DELETE FROM rate_limit_buckets WHERE tat <= $1");

pub(super) const CREDENTIALS_BY_EMAIL: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    ", password_hash FROM accounts WHERE email = $1 AND deleted_at IS NULL"
));

/// Replaces a hash only if it is still the one that was checked.
pub(super) const REPLACE_PASSWORD_HASH: Sql = Sql::both(
    "UPDATE accounts SET password_hash = $3 \
     WHERE id = $1 AND password_hash = $2 AND deleted_at IS NULL",
);

/// Reserves a check ($1 address, $2 now, $3 LOGIN_MAX_FAILURES, $4 stale
/// before): the conflict clause's WHERE makes the test and the increment one
/// step, so however many calls race, at most $3 get a row back.
/// `last_failed_at` is the last activity; `pending` checks under way.
pub(super) const RESERVE_LOGIN_ATTEMPT: Sql = Sql::both(
    "INSERT INTO login_failures (email, failures, lockouts, locked_until, last_failed_at, pending) \
     VALUES ($1, 0, 0, NULL, $2, 1) \
     ON CONFLICT (email) DO UPDATE SET \
       pending = CASE WHEN login_failures.last_failed_at < $4 THEN 1 \
                      ELSE login_failures.pending + 1 END, \
       last_failed_at = excluded.last_failed_at \
     WHERE (login_failures.locked_until IS NULL OR login_failures.locked_until <= $2) \
       AND login_failures.failures + CASE WHEN login_failures.last_failed_at < $4 THEN 0 \
                                          ELSE login_failures.pending END < $3 \
     RETURNING lockouts",
);

pub(super) const LOGIN_LOCK: Sql =
    Sql::both("SELECT locked_until, lockouts FROM login_failures WHERE email = $1");

/// Turns a reservation into a failure, atomically across instances.
pub(super) const RECORD_LOGIN_FAILURE: Sql = Sql::both(
    "INSERT INTO login_failures (email, failures, lockouts, locked_until, last_failed_at, pending) \
     VALUES ($1, 1, 0, NULL, $2, 0) \
     ON CONFLICT (email) DO UPDATE SET failures = login_failures.failures + 1, \
       pending = CASE WHEN login_failures.pending > 0 THEN login_failures.pending - 1 ELSE 0 END, \
       last_failed_at = excluded.last_failed_at \
     RETURNING failures, lockouts",
);

/// Starts a lockout once; of two instances that both saw the threshold, the
/// second finds the failures reset and changes nothing.
pub(super) const LOCK_LOGIN: Sql = Sql::both(
    "UPDATE login_failures SET failures = 0, lockouts = lockouts + 1, locked_until = $3 \
     WHERE email = $1 AND failures >= $2",
);

/// A new password or a deleted account: the address starts afresh.
pub(super) const CLEAR_LOGIN_FAILURES: Sql =
    Sql::both("DELETE FROM login_failures WHERE email = $1");

/// A success when no other check is under way and no lockout runs: the
/// address starts afresh.
pub(super) const CLEAR_SETTLED_LOGIN_FAILURES: Sql = Sql::both(
    "DELETE FROM login_failures WHERE email = $1 AND pending <= 1 \
     AND (locked_until IS NULL OR locked_until <= $2)",
);

/// A success beside other checks under way: only its reservation goes.
pub(super) const RELEASE_LOGIN_ATTEMPT: Sql = Sql::both(
    "UPDATE login_failures SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END \
     WHERE email = $1",
);

pub(super) const PRUNE_LOGIN_FAILURES: Sql = Sql::both(
    "DELETE FROM login_failures WHERE last_failed_at < $1 \
     AND (locked_until IS NULL OR locked_until < $1)",
);

pub(super) const CREDENTIALS_BY_ID: Sql = Sql::both(concat!(
    "SELECT ",
    account_columns!(),
    ", password_hash FROM accounts WHERE id = $1 AND deleted_at IS NULL"
));

/// Sets a new password if the old hash and the address ($6) are still the
/// ones that were checked; `$5` also marks the account verified (a reset
/// proved the mailbox).
pub(super) const REPLACE_PASSWORD: Sql = Sql::both(concat!(
    "UPDATE accounts SET password_hash = $3, updated_at = $4, \
     verified = CASE WHEN $5 THEN TRUE ELSE verified END \
     WHERE id = $1 AND password_hash = $2 AND email = $6 AND deleted_at IS NULL RETURNING ",
    account_columns!()
));

/// Whether a live account is verified, locking its row until the
/// transaction ends (PostgreSQL), so that exactly one change records that
/// it became verified.
pub(super) const LOCK_VERIFIED: Sql = Sql {
    postgres: "SELECT verified FROM accounts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    sqlite: "SELECT verified FROM accounts WHERE id = $1 AND deleted_at IS NULL",
};

/// An account brought from another system: inserted unless its id or its
/// address is already there, and with no mail.
pub(super) const IMPORT_ACCOUNT: Sql = Sql::both(
    "INSERT INTO accounts (id, email, username, password_hash, first_name, last_name, \
     phone_number, address, verified, term_and_condition, created_from, created_at, updated_at, \
     locale) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT DO NOTHING",
);

/// Records one change to an account; PostgreSQL stamps it with the writing
/// transaction's id (the column's default), and its trigger wakes every
/// instance's event streams at commit.
pub(super) const INSERT_EVENT: Sql =
    Sql::both("INSERT INTO account_events (type, account_id, occurred_at) VALUES ($1, $2, $3)");

/// The visibility horizon: the oldest transaction still running, below
/// which every transaction has ended (so every event there is final), and
/// whether committed events already wait above it.
pub(super) const EVENT_HORIZON: Sql<Option<&str>> = Sql {
    postgres: Some(
        "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon) \
         SELECT h.horizon::text AS horizon, \
           EXISTS (SELECT 1 FROM account_events WHERE xid >= h.horizon) AS held FROM h",
    ),
    sqlite: None,
};

/// Events after the position ($1 transaction id as text, $2 sequence) and
/// below the horizon ($4, as text), in log order (by the `xid8` column: the
/// text is only how it is read out), at most $3. SQLite's
/// sequence is its commit order: it has no horizon.
pub(super) const READ_EVENTS: Sql = Sql {
    postgres: "SELECT e.xid::text AS position_xid, e.seq, e.type, e.account_id, e.occurred_at \
               FROM account_events e \
               WHERE (e.xid, e.seq) > ($1::text::xid8, $2) AND e.xid < $4::text::xid8 \
               ORDER BY e.xid, e.seq LIMIT $3",
    sqlite: "SELECT '0' AS position_xid, seq, type, account_id, occurred_at FROM account_events \
             WHERE $1 IS NOT NULL AND $4 IS NOT NULL AND seq > $2 ORDER BY seq LIMIT $3",
};

pub(super) const PRUNE_EVENTS: Sql = Sql::both("DELETE FROM account_events WHERE occurred_at < $1");

/// Changes the masked profile fields ($2, $4, … say which) of a live
/// account, only if one of them differs; no row when nothing changes.
pub(super) const UPDATE_PROFILE: Sql = Sql::both(concat!(
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
pub(super) const CHANGE_EMAIL: Sql = Sql::both(concat!(
    "UPDATE accounts SET email = $3, verified = TRUE, updated_at = $4 \
     WHERE id = $1 AND email = $2 AND password_hash = $5 AND deleted_at IS NULL RETURNING ",
    account_columns!()
));

/// Erases a live account's personal data, if its hash is still $3 (any
/// hash when $3 is NULL), and keeps the row as a tombstone.
pub(super) const ERASE_ACCOUNT: Sql = Sql {
    postgres: "UPDATE accounts SET email = '', username = '', first_name = '', last_name = '', \
                 phone_number = '', address = '', password_hash = '', verified = FALSE, \
                 created_from = '', locale = '', deleted_at = $2, updated_at = $2 \
               WHERE id = $1 AND ($3::text IS NULL OR password_hash = $3) AND deleted_at IS NULL",
    sqlite: "UPDATE accounts SET email = '', username = '', first_name = '', last_name = '', \
               phone_number = '', address = '', password_hash = '', verified = FALSE, \
               created_from = '', locale = '', deleted_at = $2, updated_at = $2 \
             WHERE id = $1 AND ($3 IS NULL OR password_hash = $3) AND deleted_at IS NULL",
};

/// The mail of deleted accounts: delivered or failed (the goodbye notice,
/// once it went), or pending but never to be sent (queued by a call that
/// raced the deletion), with its dead letters: nothing of an erased account
/// is kept.
macro_rules! erased_mail {
    () => {
        "SELECT o.id FROM email_outbox o JOIN accounts a ON a.id = o.account_id \
         WHERE a.deleted_at IS NOT NULL \
           AND (o.status <> 'pending' OR o.kind <> 'account_deleted')"
    };
}

pub(super) const PRUNE_ERASED_DEAD_LETTERS: Sql = Sql::both(concat!(
    "DELETE FROM failed_email_tasks WHERE outbox_id IN (",
    erased_mail!(),
    ")"
));

pub(super) const PRUNE_ERASED_MAIL: Sql = Sql::both(concat!(
    "DELETE FROM email_outbox WHERE id IN (",
    erased_mail!(),
    ")"
));

/// The dead letters of an account's mail, which hold its address.
pub(super) const DELETE_ACCOUNT_DEAD_LETTERS: Sql = Sql::both(
    "DELETE FROM failed_email_tasks \
     WHERE outbox_id IN (SELECT id FROM email_outbox WHERE account_id = $1)",
);

/// Every outbox row of an account: pending mail is cancelled, and sent mail
/// kept for the retention holds personal data.
pub(super) const DELETE_ACCOUNT_MAIL: Sql =
    Sql::both("DELETE FROM email_outbox WHERE account_id = $1");

/// The cooldowns and failure counts kept under an erased address.
pub(super) const DELETE_ADDRESS_STATE: Sql =
    Sql::both("DELETE FROM resend_cooldowns WHERE email = $1 OR email = 'password-reset:' || $1");

pub(super) const IS_TOMBSTONE: Sql =
    Sql::both("SELECT 1 AS present FROM accounts WHERE id = $1 AND deleted_at IS NOT NULL");

/// A page of live accounts after id $1 (none: from the start), in id order,
/// whose address starts with $2 and, unless $3 is NULL, whose `verified` is $3.
pub(super) const LIST_ACCOUNTS: Sql = Sql {
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

/// Stores the code of an account's newest confirmation mail, replacing the
/// one before (and its count of wrong tries), only when $4 is set: the same
/// statement runs for every address.
pub(super) const STORE_CODE: Sql = Sql::both(
    "INSERT INTO confirmation_codes (account_id, code_hmac, expires_at, failures) \
     SELECT $1, $2, $3, 0 WHERE $4 \
     ON CONFLICT (account_id) DO UPDATE SET code_hmac = excluded.code_hmac, \
       expires_at = excluded.expires_at, failures = 0",
);

/// Counts a try at the code of the live account with address $1, unless
/// it is burned. Without such a code, the stand-in row of the nil id ($3)
/// is written instead (its count stays 0), so that every try writes one
/// row: that row comes back, and means "no code to try".
pub(super) const TRY_CODE: Sql = Sql::both(
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
pub(super) const COUNT_ADDRESS_CODE_TRY: Sql = Sql::both(
    "INSERT INTO code_tries (email, failures, last_tried_at) VALUES ($1, $2, $3) \
     ON CONFLICT (email) DO UPDATE SET failures = code_tries.failures + excluded.failures, \
       last_tried_at = excluded.last_tried_at \
     RETURNING failures",
);

pub(super) const PRUNE_CODE_TRIES: Sql =
    Sql::both("DELETE FROM code_tries WHERE last_tried_at < $1");

/// The wrong tries counted on the code of the live account with address $1.
pub(super) const CODE_FAILURES: Sql = Sql::both(
    "SELECT c.failures FROM confirmation_codes c JOIN accounts a ON a.id = c.account_id \
     WHERE a.email = $1 AND a.deleted_at IS NULL",
);

/// A try that was the right code does not count as a wrong one.
pub(super) const REFUND_CODE_TRY: Sql = Sql::both(
    "UPDATE confirmation_codes SET failures = failures - 1 WHERE account_id = $1 AND failures > 0",
);

pub(super) const DELETE_ACCOUNT_CODE: Sql =
    Sql::both("DELETE FROM confirmation_codes WHERE account_id = $1");
