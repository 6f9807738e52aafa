//! Statements on the mail outbox as the delivery workers drive it.

use super::Sql;

pub(in crate::storage) const INSERT_MAIL: Sql = Sql::both(
    "INSERT INTO email_outbox (id, account_id, kind, recipient, subject, text_body, \
     html_body, next_attempt_at, created_at, locale, traceparent) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
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
pub(in crate::storage) const CLAIM_MAIL: Sql = Sql {
    postgres: claim_mail!(" FOR UPDATE SKIP LOCKED"),
    sqlite: claim_mail!(""),
};

/// `$1` is a list of ids: an array in PostgreSQL, a JSON array in SQLite.
pub(in crate::storage) const MARK_MAIL_SENT: Sql = Sql {
    postgres: "UPDATE email_outbox SET status = 'sent', sent_at = $2, locked_until = NULL, \
               claim_token = NULL, last_error = NULL \
               WHERE id = ANY($1) AND claim_token = $3 AND status = 'pending'",
    sqlite: "UPDATE email_outbox SET status = 'sent', sent_at = $2, locked_until = NULL, \
             claim_token = NULL, last_error = NULL \
             WHERE id IN (SELECT value FROM json_each($1)) AND claim_token = $3 \
             AND status = 'pending'",
};

pub(in crate::storage) const RESCHEDULE_MAIL: Sql = Sql::both(
    "UPDATE email_outbox SET next_attempt_at = $2, locked_until = NULL, claim_token = NULL, \
     last_error = $3 WHERE id = $1 AND claim_token = $4 AND status = 'pending'",
);

pub(in crate::storage) const MARK_MAIL_FAILED: Sql = Sql::both(
    "UPDATE email_outbox SET status = 'failed', locked_until = NULL, claim_token = NULL, \
     last_error = $2 WHERE id = $1 AND claim_token = $3 AND status = 'pending'",
);

pub(in crate::storage) const INSERT_DEAD_LETTER: Sql = Sql::both(
    "INSERT INTO failed_email_tasks (id, outbox_id, recipient, subject, error_kind, \
     error, attempts, first_attempt_at, last_attempt_at, failed_at) \
     SELECT $1, id, recipient, subject, $3, $4, attempts, first_attempt_at, \
     last_attempt_at, $5 FROM email_outbox WHERE id = $2",
);

/// `$1` is a list of ids, as in [`MARK_MAIL_SENT`].
pub(in crate::storage) const RELEASE_MAIL: Sql = Sql {
    postgres: "UPDATE email_outbox SET locked_until = NULL, claim_token = NULL, \
               attempts = GREATEST(attempts - 1, 0) \
               WHERE id = ANY($1) AND claim_token = $2 AND status = 'pending'",
    sqlite: "UPDATE email_outbox SET locked_until = NULL, claim_token = NULL, \
             attempts = MAX(attempts - 1, 0) \
             WHERE id IN (SELECT value FROM json_each($1)) AND claim_token = $2 \
             AND status = 'pending'",
};

pub(in crate::storage) const PRUNE_SENT: Sql = Sql::both(
    "DELETE FROM email_outbox WHERE status = 'sent' AND sent_at < $1 \
     AND id NOT IN (SELECT outbox_id FROM failed_email_tasks)",
);

/// When the next pending message can be claimed: its retry is due and any
/// claim on it has lapsed.
pub(in crate::storage) const NEXT_MAIL_DUE: Sql = Sql {
    postgres: "SELECT MIN(GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at))) \
               AS due FROM email_outbox WHERE status = 'pending'",
    sqlite: "SELECT MIN(MAX(next_attempt_at, COALESCE(locked_until, next_attempt_at))) \
             AS due FROM email_outbox WHERE status = 'pending'",
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

pub(in crate::storage) const PRUNE_ERASED_DEAD_LETTERS: Sql = Sql::both(concat!(
    "DELETE FROM failed_email_tasks WHERE outbox_id IN (",
    erased_mail!(),
    ")"
));

pub(in crate::storage) const PRUNE_ERASED_MAIL: Sql = Sql::both(concat!(
    "DELETE FROM email_outbox WHERE id IN (",
    erased_mail!(),
    ")"
));
