//! Statements on the shared rate-limit buckets.

use super::Sql;

/// Takes one call from a GCRA bucket in one statement, so that every
/// instance sees one bucket: $1 key, $2 now, $3 interval between calls,
/// $4 capacity (interval × burst), all in microseconds. The SET expressions
/// read the row as it was; `allowed` says whether the call fit.
pub(in crate::storage) const TAKE_FROM_BUCKET: Sql = Sql::both(
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
pub(in crate::storage) const PRUNE_BUCKETS: Sql =
    Sql::both("DELETE FROM rate_limit_buckets WHERE tat <= $1");
