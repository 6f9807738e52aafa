-- Deleted accounts stay as tombstones: their personal data is erased and
-- `deleted_at` is set, so references to the id stay valid. Only live
-- accounts hold their address, so an address can be registered again.
ALTER TABLE accounts ADD COLUMN deleted_at INTEGER;

DROP INDEX accounts_email_key;
CREATE UNIQUE INDEX accounts_email_key ON accounts (email) WHERE deleted_at IS NULL;

-- Every change to an account, written in the transaction that makes it.
-- SQLite has one writer at a time, so `seq` order is commit order.
CREATE TABLE account_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- account.v1.EventType.
    type        INTEGER NOT NULL,
    account_id  TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL
);

CREATE INDEX account_events_occurred_at ON account_events (occurred_at);
