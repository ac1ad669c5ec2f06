-- E-mail notices of new secure mail to portal users (issue 11 item 9).
--
-- - `message_tracking.expect` may be `'portal-notice'`: the plain e-mail
--   telling a portal user that new secure mail waits, relayed through the
--   `[notify]` smart host and tracked until relayed only. SQLite cannot
--   change a CHECK, so the table is rebuilt with its rows.
-- - `portal_notices`: whose mailbox each notice is about (the owner, for
--   the `notification-sent` audit event) and the inbound queued message
--   that caused it.

CREATE TABLE message_tracking_v6 (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    expect  TEXT NOT NULL DEFAULT 'mail'
                CHECK (expect IN ('mail', 'mail-final-delivery', 'notification',
                                  'portal-notice')),
    subject TEXT
);
INSERT INTO message_tracking_v6 (message, expect, subject)
    SELECT message, expect, subject FROM message_tracking;
DROP TABLE message_tracking;
ALTER TABLE message_tracking_v6 RENAME TO message_tracking;

CREATE TABLE portal_notices (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    owner   TEXT NOT NULL COLLATE NOCASE,
    about   INTEGER NOT NULL REFERENCES messages(id)
);
