-- The queue engine (issue 13): the queue's own times to the millisecond
-- (Unix milliseconds, unlike the seconds elsewhere), so that the time from
-- queueing to the first attempt can be read at the scale the engine works
-- at, and an index for finding the recipients still queued per message
-- (what a claim counts against each destination). Entries queued before
-- have no millisecond times.

ALTER TABLE queue ADD COLUMN queued_ms INTEGER;
ALTER TABLE queue ADD COLUMN first_attempt_ms INTEGER;
ALTER TABLE queue ADD COLUMN last_attempt_ms INTEGER;
CREATE INDEX recipients_message_state ON recipients(message, state);
