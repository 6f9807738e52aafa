-- Password checks under way per address: a check is reserved here before it
-- is computed, so that a burst of concurrent guesses can never run more
-- checks than LOGIN_MAX_FAILURES.
ALTER TABLE login_failures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
