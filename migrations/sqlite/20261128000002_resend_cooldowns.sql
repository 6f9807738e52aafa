-- When each address last asked for a new confirmation mail. Kept in the
-- database, not in memory, so the cooldown holds across instances and
-- restarts, and for addresses that have no account (the answer must not
-- reveal which addresses exist).
CREATE TABLE resend_cooldowns (
    email             TEXT    PRIMARY KEY NOT NULL,
    last_requested_at INTEGER NOT NULL
);

-- Retention pruning finds old delivered rows without a full scan.
CREATE INDEX email_outbox_sent_at ON email_outbox (sent_at) WHERE status = 'sent';
