-- Each claim of an outbox row gets a token of its own. Marking a row sent,
-- rescheduling it or moving it to the dead letters requires the token of the
-- claim that sent it, so a worker whose lease ran out (and whose row another
-- worker took over) can never overwrite the newer claim's outcome.
ALTER TABLE email_outbox ADD COLUMN claim_token UUID;

-- Housekeeping deletes cooldowns that have run out without a full scan.
CREATE INDEX resend_cooldowns_last_requested_at ON resend_cooldowns (last_requested_at);
