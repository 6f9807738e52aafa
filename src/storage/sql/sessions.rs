//! Statements on sessions and their refresh tokens.

use super::Sql;

macro_rules! session_columns {
    () => {
        "id, account_id, created_at, last_used_at, user_agent, ip_address, two_step"
    };
}

pub(in crate::storage) const INSERT_SESSION: Sql = Sql::both(
    "INSERT INTO sessions (id, account_id, created_at, last_used_at, user_agent, ip_address, \
     two_step) VALUES ($1, $2, $3, $4, $5, $6, $7)",
);

pub(in crate::storage) const INSERT_REFRESH_TOKEN: Sql =
    Sql::both("INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)");

/// Ends an account's live sessions (used after $4, started after $5)
/// beyond the newest-used $2, returning their ids. An expired session that
/// housekeeping has not ended yet neither counts nor is evicted.
pub(in crate::storage) const EVICT_SESSIONS: Sql = Sql {
    postgres: "UPDATE sessions SET ended_at = $3, end_reason = 'evicted' WHERE id IN ( \
                 SELECT id FROM sessions WHERE account_id = $1 AND ended_at IS NULL \
                   AND last_used_at > $4 AND created_at > $5 \
                 ORDER BY last_used_at DESC, created_at DESC, id DESC OFFSET $2) \
               RETURNING id, account_id",
    sqlite: "UPDATE sessions SET ended_at = $3, end_reason = 'evicted' WHERE id IN ( \
               SELECT id FROM sessions WHERE account_id = $1 AND ended_at IS NULL \
                 AND last_used_at > $4 AND created_at > $5 \
               ORDER BY last_used_at DESC, created_at DESC, id DESC LIMIT -1 OFFSET $2) \
             RETURNING id, account_id",
};

/// The writes of a sign-in in one statement where the dialect can, once the
/// account's row is locked: the session ($1-$7), its refresh token ($8),
/// its SESSION_STARTED event ($9, with the traceparent $10), and the end of
/// the account's live sessions (used after $13, started after $14) beyond
/// the newest-used $11 - 1 (the new one is the newest, and not yet visible
/// to the statement's own reads), each with a SESSION_ENDED event ($12),
/// written after the STARTED one; and, unless $15 is NULL, the password
/// check of address $15 given back with its failures forgotten, as
/// `CLEAR_SETTLED_LOGIN_FAILURES` then `RELEASE_LOGIN_ATTEMPT` would (the
/// update reads `c`, so it does something only when the delete found
/// nothing to do). The rows answered are the evicted sessions. It runs
/// under the account's row lock, taken by an earlier statement of the
/// transaction, so its snapshot holds every session, and every release of
/// a check, that a concurrent sign-in of the account committed.
pub(in crate::storage) const START_SESSION: Sql<Option<&str>> = Sql {
    postgres: Some(
        "WITH c AS (DELETE FROM login_failures WHERE email = $15 AND pending <= 1 \
             AND (locked_until IS NULL OR locked_until <= $3) RETURNING email), \
         r AS (UPDATE login_failures \
             SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END \
             WHERE email = $15 AND NOT EXISTS (SELECT 1 FROM c)), \
         s AS (INSERT INTO sessions (id, account_id, created_at, last_used_at, user_agent, \
             ip_address, two_step) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, account_id), \
         t AS (INSERT INTO refresh_tokens (token_hash, session_id, issued_at) \
             SELECT $8, id, $3 FROM s), \
         x AS (UPDATE sessions SET ended_at = $3, end_reason = 'evicted' WHERE id IN ( \
             SELECT id FROM sessions WHERE account_id = $2 AND ended_at IS NULL \
               AND last_used_at > $13 AND created_at > $14 \
             ORDER BY last_used_at DESC, created_at DESC, id DESC OFFSET GREATEST($11 - 1, 0)) \
             RETURNING id, account_id), \
         e AS (INSERT INTO account_events (type, account_id, occurred_at, session_id, traceparent) \
             SELECT type, account_id, $3, id, $10 FROM ( \
               SELECT 0 AS ord, $9::bigint AS type, account_id, id FROM s \
               UNION ALL SELECT 1, $12::bigint, account_id, id FROM x) AS both_kinds \
             ORDER BY ord, id) \
         SELECT id FROM x",
    ),
    sqlite: None,
};

/// The common refresh of a batch of tokens in one statement where the
/// dialect can. $1 is a JSON array of the presented tokens' hashes (`cur`
/// under the current key, `prev` under the previous one), each successor's
/// hash (`succ`), and the moment with its liveness bounds (`at`,
/// `used_after`, `created_after`). Each token that is current and whose
/// session is live is rotated, its successor stored and its session
/// touched; the rows answered are those sessions, each with the `cur` it
/// was rotated for. The tokens' row locks are taken in one order, so two
/// batches (or instances) queue instead of deadlocking, and a concurrent
/// refresh of one token waits for it: PostgreSQL then re-reads
/// `rotated_at IS NULL` on the row's newest version, finds it rotated, and
/// leaves that token to the one-token path.
pub(in crate::storage) const ROTATE_CURRENT_TOKENS: Sql<Option<&str>> = Sql {
    postgres: Some(concat!(
        "WITH i AS (SELECT * FROM json_to_recordset($1::json) AS i(cur text, prev text, \
             succ text, at timestamptz, used_after timestamptz, created_after timestamptz)), \
         t AS (SELECT refresh_tokens.token_hash, refresh_tokens.session_id, i.cur, i.succ, \
             i.at, i.used_after, i.created_after \
             FROM i JOIN refresh_tokens ON refresh_tokens.token_hash IN (i.cur, i.prev) \
             WHERE refresh_tokens.rotated_at IS NULL \
             ORDER BY refresh_tokens.token_hash FOR UPDATE OF refresh_tokens), \
         s AS (UPDATE sessions SET last_used_at = t.at FROM t \
             WHERE sessions.id = t.session_id AND sessions.ended_at IS NULL \
             AND sessions.last_used_at > t.used_after AND sessions.created_at > t.created_after \
             RETURNING sessions.*, t.cur, t.token_hash AS rotated_hash, t.succ, t.at), \
         r AS (UPDATE refresh_tokens SET rotated_at = s.at FROM s \
             WHERE refresh_tokens.token_hash = s.rotated_hash), \
         n AS (INSERT INTO refresh_tokens (token_hash, session_id, issued_at) \
             SELECT succ, id, at FROM s) \
         SELECT cur, ",
        session_columns!(),
        " FROM s"
    )),
    sqlite: None,
};

/// The token of either hash, its row locked: concurrent refreshes of one
/// token queue here, and each reads the rotation the one before committed.
pub(in crate::storage) const LOCK_REFRESH_TOKEN: Sql = Sql {
    postgres: "SELECT session_id, rotated_at FROM refresh_tokens \
               WHERE token_hash IN ($1, $2) FOR UPDATE",
    sqlite: "SELECT session_id, rotated_at FROM refresh_tokens WHERE token_hash IN ($1, $2)",
};

/// The session of a token, read after the token's lock (so it is current),
/// and locked against a concurrent sign-out.
pub(in crate::storage) const LOCK_SESSION: Sql = Sql {
    postgres: concat!(
        "SELECT ",
        session_columns!(),
        ", ended_at, COALESCE(end_reason, '') AS end_reason FROM sessions WHERE id = $1 FOR UPDATE"
    ),
    sqlite: concat!(
        "SELECT ",
        session_columns!(),
        ", ended_at, COALESCE(end_reason, '') AS end_reason FROM sessions WHERE id = $1"
    ),
};

/// Sessions of a list of ids ($1), each with whether and why it ended.
pub(in crate::storage) const SESSION_STATES: Sql = Sql {
    postgres: concat!(
        "SELECT ",
        session_columns!(),
        ", ended_at, COALESCE(end_reason, '') AS end_reason FROM sessions WHERE id = ANY($1)"
    ),
    sqlite: concat!(
        "SELECT ",
        session_columns!(),
        ", ended_at, COALESCE(end_reason, '') AS end_reason FROM sessions \
         WHERE id IN (SELECT value FROM json_each($1))"
    ),
};

pub(in crate::storage) const ROTATE_REFRESH_TOKEN: Sql = Sql::both(
    "UPDATE refresh_tokens SET rotated_at = $3 WHERE token_hash IN ($1, $2) AND rotated_at IS NULL",
);

pub(in crate::storage) const TOUCH_SESSION: Sql =
    Sql::both("UPDATE sessions SET last_used_at = $2 WHERE id = $1");

/// The current token of a session.
pub(in crate::storage) const CURRENT_REFRESH_TOKEN: Sql =
    Sql::both("SELECT token_hash FROM refresh_tokens WHERE session_id = $1 AND rotated_at IS NULL");

pub(in crate::storage) const SESSION_OF_TOKEN: Sql =
    Sql::both("SELECT session_id FROM refresh_tokens WHERE token_hash IN ($1, $2)");

/// Ends one live session ($4 says why); returns its account.
pub(in crate::storage) const END_SESSION: Sql = Sql::both(
    "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL \
     RETURNING id, account_id",
);

/// Ends one live session of an account ($4 says why).
pub(in crate::storage) const END_ACCOUNT_SESSION: Sql = Sql::both(
    "UPDATE sessions SET ended_at = $3, end_reason = $4 \
     WHERE id = $2 AND account_id = $1 AND ended_at IS NULL RETURNING id, account_id",
);

pub(in crate::storage) const ACCOUNT_HAS_SESSION: Sql =
    Sql::both("SELECT 1 AS present FROM sessions WHERE id = $2 AND account_id = $1");

/// Ends every live session of an account but $2 (none when NULL).
pub(in crate::storage) const END_ACCOUNT_SESSIONS: Sql = Sql {
    postgres: "UPDATE sessions SET ended_at = $3, end_reason = $4 \
               WHERE account_id = $1 AND ended_at IS NULL AND ($2::uuid IS NULL OR id <> $2::uuid) \
               RETURNING id, account_id",
    sqlite: "UPDATE sessions SET ended_at = $3, end_reason = $4 \
             WHERE account_id = $1 AND ended_at IS NULL AND ($2 IS NULL OR id <> $2) \
             RETURNING id, account_id",
};

/// An account's live sessions, newest first.
pub(in crate::storage) const LIVE_SESSIONS: Sql = Sql::both(concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE account_id = $1 AND ended_at IS NULL \
      AND last_used_at > $2 AND created_at > $3 ORDER BY created_at DESC, id DESC"
));

/// Ends the sessions of account $4 idle since $2 or started before $3.
pub(in crate::storage) const END_EXPIRED_ACCOUNT_SESSIONS: Sql = Sql::both(
    "UPDATE sessions SET ended_at = $1, end_reason = 'expired' \
     WHERE account_id = $4 AND ended_at IS NULL AND (last_used_at <= $2 OR created_at <= $3) \
     RETURNING id, account_id",
);

/// Ends the sessions idle since $2 or started before $3.
pub(in crate::storage) const END_EXPIRED_SESSIONS: Sql = Sql::both(
    "UPDATE sessions SET ended_at = $1, end_reason = 'expired' \
     WHERE ended_at IS NULL AND (last_used_at <= $2 OR created_at <= $3) RETURNING id, account_id",
);

/// Ended sessions, with every refresh token they were given (the tokens'
/// foreign key cascades).
pub(in crate::storage) const PRUNE_SESSIONS: Sql =
    Sql::both("DELETE FROM sessions WHERE ended_at < $1");
