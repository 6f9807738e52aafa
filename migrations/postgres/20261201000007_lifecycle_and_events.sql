-- Deleted accounts stay as tombstones: their personal data is erased (e-mail
-- and names set to empty text, the password hash too) and `deleted_at` is
-- set, so that other services' references to the id stay valid. Only live
-- accounts hold their address, so an address can be registered again.
ALTER TABLE accounts ADD COLUMN deleted_at TIMESTAMPTZ;

DROP INDEX accounts_email_key;
CREATE UNIQUE INDEX accounts_email_key ON accounts (email) WHERE deleted_at IS NULL;

-- Every change to an account, written in the transaction that makes it.
-- Consumers read in (xid, seq) order and only below the oldest transaction
-- still running (pg_snapshot_xmin), so an event is never read before every
-- event that could precede it has committed: no gaps, no duplicates, across
-- instances, even when transactions commit out of order.
CREATE TABLE account_events (
    seq         BIGSERIAL   PRIMARY KEY,
    xid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- account.v1.EventType.
    type        INTEGER     NOT NULL,
    account_id  UUID        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX account_events_position ON account_events (xid, seq);
CREATE INDEX account_events_occurred_at ON account_events (occurred_at);

-- Wakes the event streams of every instance at commit, once per statement
-- that inserted events (not for one that inserted none).
CREATE FUNCTION account_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('account_events', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER account_events_notify AFTER INSERT ON account_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION account_events_notify();
