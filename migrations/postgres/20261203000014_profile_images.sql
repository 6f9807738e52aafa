-- Profile images: the keys of the account's image in the media store, at
-- 512 and 128 pixels; empty without one (as Django stores a blank
-- ImageField).
ALTER TABLE accounts ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN image_thumbnail TEXT NOT NULL DEFAULT '';

-- Objects to delete from the media store, kept until the store confirms:
-- a crash or an outage of the store never loses a deletion. An object is
-- deleted under its account's row lock, and only while no account row
-- refers to it.
CREATE TABLE media_deletions (
    object_key TEXT        PRIMARY KEY,
    account_id UUID        NOT NULL,
    queued_at  TIMESTAMPTZ NOT NULL,
    attempts   BIGINT      NOT NULL DEFAULT 0,
    not_before TIMESTAMPTZ NOT NULL
);

CREATE INDEX media_deletions_due ON media_deletions (not_before);
