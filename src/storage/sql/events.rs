//! Statements on the account event log.

use super::Sql;

/// Records one change to an account; PostgreSQL stamps it with the writing
/// transaction's id (the column's default), and its trigger wakes every
/// instance's event streams at commit.
pub(in crate::storage) const INSERT_EVENT: Sql = Sql::both(
    "INSERT INTO account_events (type, account_id, occurred_at, session_id, traceparent) \
     VALUES ($1, $2, $3, $4, $5)",
);

/// The visibility horizon: the oldest transaction still running, below
/// which every transaction has ended (so every event there is final), and
/// whether committed events already wait above it.
pub(in crate::storage) const EVENT_HORIZON: Sql<Option<&str>> = Sql {
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
pub(in crate::storage) const READ_EVENTS: Sql = Sql {
    postgres: "SELECT e.xid::text AS position_xid, e.seq, e.type, e.account_id, e.occurred_at, \
               COALESCE(e.session_id::text, '') AS session, e.traceparent \
               FROM account_events e \
               WHERE (e.xid, e.seq) > ($1::text::xid8, $2) AND e.xid < $4::text::xid8 \
               ORDER BY e.xid, e.seq LIMIT $3",
    sqlite: "SELECT '0' AS position_xid, seq, type, account_id, occurred_at, \
             COALESCE(session_id, '') AS session, traceparent FROM account_events \
             WHERE $1 IS NOT NULL AND $4 IS NOT NULL AND seq > $2 ORDER BY seq LIMIT $3",
};

pub(in crate::storage) const PRUNE_EVENTS: Sql =
    Sql::both("DELETE FROM account_events WHERE occurred_at < $1");
