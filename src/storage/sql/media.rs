//! Statements on accounts' profile images and the media deletion queue.

use super::Sql;

/// A live account's image keys, its row locked until the transaction ends.
pub(in crate::storage) const LOCK_IMAGE: Sql = Sql {
    postgres: "SELECT image, image_thumbnail FROM accounts \
               WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    sqlite: "SELECT image, image_thumbnail FROM accounts WHERE id = $1 AND deleted_at IS NULL",
};

/// Any account's image keys, deleted or not, its row locked.
pub(in crate::storage) const LOCK_ANY_IMAGE: Sql = Sql {
    postgres: "SELECT image, image_thumbnail FROM accounts WHERE id = $1 FOR UPDATE",
    sqlite: "SELECT image, image_thumbnail FROM accounts WHERE id = $1",
};

pub(in crate::storage) const SET_IMAGE: Sql = Sql::both(concat!(
    "UPDATE accounts SET image = $2, image_thumbnail = $3, updated_at = $4 \
     WHERE id = $1 AND deleted_at IS NULL RETURNING ",
    account_columns!()
));

/// Queues an object; one already queued keeps its place and attempts.
pub(in crate::storage) const QUEUE_MEDIA_DELETION: Sql = Sql::both(
    "INSERT INTO media_deletions (object_key, account_id, queued_at, not_before) \
     VALUES ($1, $2, $3, $3) ON CONFLICT (object_key) DO NOTHING",
);

/// Claims due deletions until $2, counting an attempt on each.
pub(in crate::storage) const CLAIM_MEDIA_DELETIONS: Sql = Sql {
    postgres: "UPDATE media_deletions SET not_before = $2, attempts = attempts + 1 \
               WHERE object_key IN (SELECT object_key FROM media_deletions \
                 WHERE not_before <= $1 ORDER BY not_before LIMIT $3 FOR UPDATE SKIP LOCKED) \
               RETURNING object_key, account_id, attempts",
    sqlite: "UPDATE media_deletions SET not_before = $2, attempts = attempts + 1 \
             WHERE object_key IN (SELECT object_key FROM media_deletions \
               WHERE not_before <= $1 ORDER BY not_before LIMIT $3) \
             RETURNING object_key, account_id, attempts",
};

pub(in crate::storage) const RETRY_MEDIA_DELETION: Sql =
    Sql::both("UPDATE media_deletions SET not_before = $2 WHERE object_key = $1");

pub(in crate::storage) const NEXT_MEDIA_DELETION: Sql =
    Sql::both("SELECT MIN(not_before) AS due FROM media_deletions");

pub(in crate::storage) const DELETE_MEDIA_ENTRY: Sql =
    Sql::both("DELETE FROM media_deletions WHERE object_key = $1");

/// The image keys of the accounts in $1 (a list of ids).
pub(in crate::storage) const IMAGES_OF: Sql = Sql {
    postgres: "SELECT image, image_thumbnail FROM accounts WHERE id = ANY($1)",
    sqlite: "SELECT image, image_thumbnail FROM accounts \
             WHERE id IN (SELECT value FROM json_each($1))",
};
