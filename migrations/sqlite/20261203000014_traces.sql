-- The W3C trace context of the call that queued a mail or wrote an event
-- (empty when traces are not exported): a mail's delivery, and an event's
-- sending to a watcher, are spans linked to that call.
ALTER TABLE email_outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE account_events ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
