-- Two-step sign-in: whether an account needs an authenticator code after
-- its password, read with every account.
ALTER TABLE accounts ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;

-- An account's TOTP secret, sealed. Without `enabled_at` it is an enrolment
-- not yet confirmed. `last_step` is the newest time step whose code was
-- accepted: a code is good once, and never one older.
CREATE TABLE second_factors (
    account_id    TEXT    PRIMARY KEY REFERENCES accounts (id),
    sealed_secret TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    enabled_at    INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0
);

-- Single-use recovery codes, by keyed hash.
CREATE TABLE recovery_codes (
    code_hash  TEXT    PRIMARY KEY,
    account_id TEXT    NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE INDEX recovery_codes_account ON recovery_codes (account_id);

-- The second step of a sign-in: by keyed hash, bound to the password hash
-- it was issued under, used once, short-lived.
CREATE TABLE sign_in_challenges (
    challenge_hash TEXT    PRIMARY KEY,
    account_id     TEXT    NOT NULL REFERENCES accounts (id),
    binding        TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

CREATE INDEX sign_in_challenges_expires_at ON sign_in_challenges (expires_at);

-- Sessions started with a second factor: their access tokens say `otp` too.
ALTER TABLE sessions ADD COLUMN two_step INTEGER NOT NULL DEFAULT 0;
