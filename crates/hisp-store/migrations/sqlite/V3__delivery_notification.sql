-- Delivery notification tracking (Implementation Guide for Delivery
-- Notification in Direct 1.0): what each message expects, when its sender
-- was sent the final notice about a failed recipient, and the indexes the
-- MDN timeout and the DSN sweep read.
--
-- The expectation and Subject live in a table beside `messages`, not in new
-- columns of it: SQLite appends an added column after `body`, and reading it
-- would walk every overflow page of the body. Messages queued before this
-- version read as ordinary mail without final delivery notification and
-- without a Subject, and none of their recipients is marked notified: the
-- MDN timeout and the DSN sweep see them like new mail.

-- One row per message. expect: 'mail' (MDNs expected), 'mail-final-delivery'
-- (a dispatched MDN expected too) or 'notification' (an MDN or DSN hisp sent:
-- tracked until relayed only).
CREATE TABLE message_tracking (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    expect  TEXT NOT NULL DEFAULT 'mail'
                CHECK (expect IN ('mail', 'mail-final-delivery', 'notification')),
    subject TEXT
);
INSERT INTO message_tracking (message, expect) SELECT id, 'mail' FROM messages;

-- When the sender was sent the one final notice (DSN) about this recipient.
ALTER TABLE recipients ADD COLUMN notified_at INTEGER;

-- Recipients the MDN timeout may fail, oldest relay first.
CREATE INDEX recipients_awaiting_mdn ON recipients(relayed_at)
    WHERE state IN ('relayed', 'processed');
-- Failed recipients whose sender has not been told.
CREATE INDEX recipients_unnotified ON recipients(message, id)
    WHERE state = 'failed' AND notified_at IS NULL;
-- Listings of outbound messages, newest first.
CREATE INDEX messages_received ON messages(direction, received_at);
