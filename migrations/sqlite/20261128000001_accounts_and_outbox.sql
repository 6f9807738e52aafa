-- Shopper accounts and the transactional e-mail outbox (SQLite).
-- Ids are UUID text; times are Unix microseconds, which compare and sort
-- numerically whatever the formatting rules of a driver.

CREATE TABLE accounts (
    -- UUIDv7: time-ordered, so new rows append to the primary key index.
    id                 TEXT    PRIMARY KEY NOT NULL,
    -- Stored lower-cased by the service, so the exact unique index below makes
    -- addresses unique without regard to case and also serves lookups.
    email              TEXT    NOT NULL,
    username           TEXT    NOT NULL DEFAULT '',
    -- argon2id PHC string; never leaves the service.
    password_hash      TEXT    NOT NULL,
    first_name         TEXT    NOT NULL DEFAULT '',
    last_name          TEXT    NOT NULL DEFAULT '',
    phone_number       TEXT    NOT NULL DEFAULT '',
    address            TEXT    NOT NULL DEFAULT '',
    verified           INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    term_and_condition INTEGER NOT NULL DEFAULT 0 CHECK (term_and_condition IN (0, 1)),
    created_from       TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE UNIQUE INDEX accounts_email_key ON accounts (email);

-- Mail waiting to be delivered, written in the same transaction as the change
-- that causes it, so a mail exists exactly when its account does.
CREATE TABLE email_outbox (
    id              TEXT    PRIMARY KEY NOT NULL,
    account_id      TEXT    NOT NULL REFERENCES accounts (id),
    -- What the mail is for (welcome, confirmation), for operators and metrics.
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    -- Rendered at enqueue time: a retry sends exactly the message first tried.
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL,
    -- pending: to be sent; sent: handed to the mail server; failed: moved to
    -- the dead letters (failed_email_tasks) after its last attempt.
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    -- Attempts started, counted at claim time so a crash mid-send still counts.
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- Lease of the worker that claimed the row; once it passes, another
    -- worker may take the row over (the first one died mid-send).
    locked_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    first_attempt_at INTEGER,
    last_attempt_at INTEGER,
    sent_at         INTEGER
);

-- The worker's claim scans only pending rows, in due order.
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX email_outbox_account ON email_outbox (account_id);

-- Dead letters: messages that ran out of attempts or were refused for good.
-- Kept until an operator replays them; never deleted by the service.
CREATE TABLE failed_email_tasks (
    id               TEXT    PRIMARY KEY NOT NULL,
    outbox_id        TEXT    NOT NULL REFERENCES email_outbox (id),
    recipient        TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    -- transient (retries exhausted) or permanent (refused by the server).
    error_kind       TEXT    NOT NULL,
    -- The whole error chain of the last attempt, for the operator.
    error            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    first_attempt_at INTEGER,
    last_attempt_at  INTEGER,
    failed_at        INTEGER NOT NULL,
    -- Set when an operator sent the message back to the queue.
    retried_at       INTEGER
);

CREATE INDEX failed_email_tasks_failed_at ON failed_email_tasks (failed_at);
