-- Sign-ins, each held by a chain of refresh tokens. A session is live until
-- `ended_at`; its idle and absolute expiry are computed from `last_used_at`
-- and `created_at` with the settings of the moment.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    user_agent   TEXT    NOT NULL,
    ip_address   TEXT    NOT NULL,
    ended_at     INTEGER,
    -- signed_out, revoked, expired, reused, evicted, password, email, deleted
    end_reason   TEXT
);

CREATE INDEX sessions_account ON sessions (account_id, created_at DESC) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended_at ON sessions (ended_at) WHERE ended_at IS NOT NULL;

-- Every refresh token a session was given, by its keyed hash. The one with
-- no `rotated_at` is current; older ones recognise a replayed token.
CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    rotated_at INTEGER
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

ALTER TABLE account_events ADD COLUMN session_id TEXT;
