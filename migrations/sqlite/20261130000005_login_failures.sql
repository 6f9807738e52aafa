-- Consecutive failed sign-in checks per normalised address (whether or not
-- an account has it), and the lockout they led to.
CREATE TABLE login_failures (
    email          TEXT    PRIMARY KEY NOT NULL,
    -- Failures since the last success or lockout.
    failures       INTEGER NOT NULL,
    -- Lockouts since the last success: each doubles the next.
    lockouts       INTEGER NOT NULL,
    locked_until   INTEGER,
    last_failed_at INTEGER NOT NULL
);

CREATE INDEX login_failures_last_failed_at ON login_failures (last_failed_at);
