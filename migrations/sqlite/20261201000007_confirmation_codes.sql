-- The code of each account's latest confirmation mail, as a keyed hash
-- (HMAC with the server key): one per account, replaced by each new mail.
CREATE TABLE confirmation_codes (
    account_id TEXT    PRIMARY KEY NOT NULL REFERENCES accounts (id),
    code_hmac  TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Wrong codes tried; at five the code is burned.
    failures   INTEGER NOT NULL DEFAULT 0
);
