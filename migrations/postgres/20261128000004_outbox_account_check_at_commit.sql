-- The outbox's reference to its account is checked at commit rather than at
-- each statement. ResendConfirmation writes the rendered mail in every case
-- and removes it again in the same transaction when there is no unverified
-- account to send it to (so that every address costs the same work, and the
-- answer's timing reveals nothing); a row removed before commit is never
-- checked. Every row that is committed is still checked.
ALTER TABLE email_outbox
    ALTER CONSTRAINT email_outbox_account_id_fkey DEFERRABLE INITIALLY DEFERRED;
