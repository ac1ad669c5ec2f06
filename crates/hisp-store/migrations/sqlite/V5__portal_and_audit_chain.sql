-- The store underneath the patient portal: portal accounts, who wrote to
-- each mailbox, and the audit chain.
--
-- - `portal_users`: one account per local address, gone with the address.
-- - `mailbox_senders`: for each Inbox entry that is mail (not a report)
--   from a Direct address, that address and the display name of its From
--   field, so the portal can offer whom to answer. A table beside
--   `mailbox` for the reason V3 gives: a column added to `mailbox` would
--   sit after `body`. Filled for existing entries from their header.
-- - `audit_events` gets the address an event is about and the hash that
--   chains it to the event before it; existing events are chained in order
--   by the code this version runs after its SQL (`v5_then` in
--   src/sqlite/migrations.rs), and triggers then make the table append-only.
-- - Sent copies are read: they are what the owner wrote.

CREATE TABLE portal_users (
    id            INTEGER PRIMARY KEY,
    address_id    INTEGER NOT NULL UNIQUE REFERENCES addresses(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    email         TEXT,
    notify        INTEGER NOT NULL DEFAULT 1 CHECK (notify IN (0, 1)),
    disabled_at   INTEGER,
    added_at      INTEGER NOT NULL
);

CREATE TABLE mailbox_senders (
    entry   INTEGER PRIMARY KEY REFERENCES mailbox(id),
    address TEXT NOT NULL COLLATE NOCASE,
    name    TEXT
);

ALTER TABLE audit_events ADD COLUMN address TEXT COLLATE NOCASE;
ALTER TABLE audit_events ADD COLUMN hash BLOB;
CREATE INDEX audit_events_address ON audit_events(address, kind, at);
CREATE INDEX audit_events_at ON audit_events(at);

UPDATE mailbox SET unread = 0 WHERE home = 'sent' AND unread = 1;
