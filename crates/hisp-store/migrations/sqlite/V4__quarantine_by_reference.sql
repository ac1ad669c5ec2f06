-- A quarantined message is stored once: an entry made from a queued
-- message refers to it (`message`) instead of holding a copy of its bytes;
-- `body` is kept only for messages quarantined without a queue entry, and
-- for entries made before this version. SQLite cannot drop NOT NULL from a
-- column, so the table is rebuilt with its rows.

CREATE TABLE quarantine_v4 (
    id             INTEGER PRIMARY KEY,
    message_id     TEXT,
    envelope_from  TEXT,
    recipients     TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    size           INTEGER NOT NULL,
    quarantined_at INTEGER NOT NULL,
    message        INTEGER REFERENCES messages(id),
    body           BLOB,
    CHECK ((message IS NULL) <> (body IS NULL))
);
INSERT INTO quarantine_v4 (id, message_id, envelope_from, recipients, received_at, reason,
                           detail, size, quarantined_at, message, body)
    SELECT id, message_id, envelope_from, recipients, received_at, reason,
           detail, size, quarantined_at, NULL, body
    FROM quarantine;
DROP TABLE quarantine;
ALTER TABLE quarantine_v4 RENAME TO quarantine;
CREATE INDEX quarantine_message_id ON quarantine(message_id);
