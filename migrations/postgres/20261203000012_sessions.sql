-- Sign-ins, each held by a chain of refresh tokens. A session is live until
-- `ended_at`; its idle and absolute expiry are computed from `last_used_at`
-- and `created_at` with the settings of the moment, so a changed setting
-- applies to every session at its next refresh.
CREATE TABLE sessions (
    id           UUID        PRIMARY KEY,
    account_id   UUID        NOT NULL REFERENCES accounts (id),
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    user_agent   TEXT        NOT NULL,
    ip_address   TEXT        NOT NULL,
    ended_at     TIMESTAMPTZ,
    -- signed_out, revoked, expired, reused, evicted, password, email, deleted
    end_reason   TEXT
) WITH (fillfactor = 80);

CREATE INDEX sessions_account ON sessions (account_id, created_at DESC) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended_at ON sessions (ended_at) WHERE ended_at IS NOT NULL;
-- No index covers `last_used_at`: every refresh moves it, and with no index
-- to maintain the update stays in its page (HOT). Housekeeping's hourly scan
-- for expired sessions reads the table instead.

-- Every refresh token a session was given, by its keyed hash (the token
-- itself is never stored). The one with no `rotated_at` is current; older
-- ones are kept to recognise a replayed token, which ends the session.
CREATE TABLE refresh_tokens (
    token_hash TEXT        PRIMARY KEY,
    session_id UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ
) WITH (fillfactor = 80);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
-- Nor does one cover `rotated_at`, for the same reason: rotation stays a
-- HOT update, and pruning (hourly, a day's tokens) scans.

-- The session of EVENT_TYPE_SESSION_STARTED and EVENT_TYPE_SESSION_ENDED.
ALTER TABLE account_events ADD COLUMN session_id UUID;
