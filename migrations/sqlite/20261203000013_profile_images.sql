-- Profile images: the keys of the account's image in the media store, at
-- 512 and 128 pixels; empty without one.
ALTER TABLE accounts ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN image_thumbnail TEXT NOT NULL DEFAULT '';

-- Objects to delete from the media store, kept until the store confirms.
-- An object is deleted only while no account row refers to it.
CREATE TABLE media_deletions (
    object_key TEXT    PRIMARY KEY,
    account_id TEXT    NOT NULL,
    queued_at  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL
);

CREATE INDEX media_deletions_due ON media_deletions (not_before);
