//! Statements behind what operators see of the outbox and its dead letters.

use super::Sql;

pub(in crate::storage) const OUTBOX_STATUS: Sql = Sql {
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

pub(in crate::storage) const DEAD_LETTERS: Sql = Sql::both(
    "SELECT id, outbox_id, recipient, subject, error_kind, error, attempts, \
     first_attempt_at, last_attempt_at, failed_at FROM failed_email_tasks \
     WHERE retried_at IS NULL ORDER BY failed_at DESC, id DESC LIMIT $1",
);

/// `$2` is one dead letter's id, or NULL for all of them.
pub(in crate::storage) const REQUEUE_DEAD_LETTERS: Sql = Sql {
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
pub(in crate::storage) const MARK_DEAD_LETTERS_RETRIED: Sql = Sql {
    postgres: "UPDATE failed_email_tasks SET retried_at = $1 \
               WHERE retried_at IS NULL AND outbox_id = ANY($2) \
               AND ($3::uuid IS NULL OR id = $3)",
    sqlite: "UPDATE failed_email_tasks SET retried_at = $1 \
             WHERE retried_at IS NULL AND outbox_id IN (SELECT value FROM json_each($2)) \
             AND ($3 IS NULL OR id = $3)",
};
