-- The W3C trace context of the call that queued a mail (empty when traces
-- are not exported): its delivery is a span linked to that call.
ALTER TABLE email_outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
