-- The code of each account's latest confirmation mail, as a keyed hash
-- (HMAC with the server key): one per account, replaced by each new mail.
CREATE TABLE confirmation_codes (
    -- An account's id; or the nil UUID of the row below.
    account_id TEXT    PRIMARY KEY NOT NULL,
    code_hmac  TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Wrong codes tried; at five the code is burned.
    failures   INTEGER NOT NULL DEFAULT 0
);

-- A try for an address that has no code updates this row instead, so that
-- it writes (and commits) what a try at a real code does: the answer's
-- timing does not tell the two apart.
INSERT INTO confirmation_codes (account_id, code_hmac, expires_at, failures)
VALUES ('00000000-0000-0000-0000-000000000000', '', 0, 0);
