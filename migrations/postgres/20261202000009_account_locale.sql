-- The shopper's language for mail: a canonical BCP 47 tag, or '' for the
-- service's DEFAULT_LOCALE.
ALTER TABLE accounts ADD COLUMN locale TEXT NOT NULL DEFAULT '';

-- The language a queued mail is written in, for its Content-Language header.
ALTER TABLE email_outbox ADD COLUMN locale TEXT NOT NULL DEFAULT '';
