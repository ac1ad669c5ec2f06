-- Users, the queue with per-recipient tracking, mailboxes, quarantine and
-- the audit log.
--
-- Addresses in these tables are text, not references to `addresses`: mail
-- and its audit trail outlive the removal of an address, and a message to a
-- remote recipient has no row there. They compare without letter case
-- (NOCASE), as `DirectAddress` does.
--
-- Message bytes are BLOBs in the same transaction as their rows: one commit
-- makes a message and its recipients durable together (no file to fsync and
-- no orphan to sweep after a crash), and one file is the whole backup.

-- Argon2id PHC strings; request_final_delivery is 0 or 1.
CREATE TABLE users (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE CHECK (name <> ''),
    password_hash          TEXT NOT NULL,
    request_final_delivery INTEGER NOT NULL DEFAULT 1 CHECK (request_final_delivery IN (0, 1)),
    added_at               INTEGER NOT NULL
);

-- What an account may send as: one local address or a whole local domain.
CREATE TABLE user_grants (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address_id INTEGER REFERENCES addresses(id) ON DELETE CASCADE,
    domain_id  INTEGER REFERENCES domains(id) ON DELETE CASCADE,
    added_at   INTEGER NOT NULL,
    CHECK ((address_id IS NULL) <> (domain_id IS NULL)),
    UNIQUE (user_id, address_id),
    UNIQUE (user_id, domain_id)
);

-- A message as received, with its envelope. envelope_from is NULL for the
-- null reverse-path; message_id is the Message-ID without angle brackets.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    direction     TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    message_id    TEXT,
    envelope_from TEXT COLLATE NOCASE,
    received_at   INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    body          BLOB NOT NULL
);
CREATE INDEX messages_message_id ON messages(message_id);

-- One entry per message for the workers. A claim sets lease_token and
-- lease_until; the entry is due when pending, next_attempt_at has come and
-- no unexpired lease holds it.
CREATE TABLE queue (
    id              INTEGER PRIMARY KEY,
    message         INTEGER NOT NULL UNIQUE REFERENCES messages(id),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_token     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX queue_due ON queue(state, next_attempt_at);

-- Per-recipient tracking, with the time each state was reached.
CREATE TABLE recipients (
    id            INTEGER PRIMARY KEY,
    message       INTEGER NOT NULL REFERENCES messages(id),
    address       TEXT NOT NULL COLLATE NOCASE,
    state         TEXT NOT NULL CHECK (state IN
                      ('queued', 'relayed', 'processed', 'dispatched', 'delivered', 'failed')),
    queued_at     INTEGER NOT NULL,
    relayed_at    INTEGER,
    processed_at  INTEGER,
    dispatched_at INTEGER,
    delivered_at  INTEGER,
    failed_at     INTEGER,
    reason        TEXT,
    UNIQUE (message, address)
);
CREATE INDEX recipients_address ON recipients(address);

-- Mailboxes. home is the folder a disregarded message returns to.
CREATE TABLE mailbox (
    id          INTEGER PRIMARY KEY,
    address     TEXT NOT NULL COLLATE NOCASE,
    folder      TEXT NOT NULL CHECK (folder IN ('inbox', 'sent', 'disregarded')),
    home        TEXT NOT NULL CHECK (home IN ('inbox', 'sent')),
    message_id  TEXT,
    from_field  TEXT,
    subject     TEXT,
    date        INTEGER,
    size        INTEGER NOT NULL,
    unread      INTEGER NOT NULL DEFAULT 1 CHECK (unread IN (0, 1)),
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX mailbox_folder ON mailbox(address, folder, received_at);
CREATE INDEX mailbox_message_id ON mailbox(message_id);

-- Inbound mail not delivered, with the reason; recipients are one address
-- per line.
CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY,
    message_id     TEXT,
    envelope_from  TEXT,
    recipients     TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    size           INTEGER NOT NULL,
    quarantined_at INTEGER NOT NULL,
    body           BLOB NOT NULL
);
CREATE INDEX quarantine_message_id ON quarantine(message_id);

-- Append only.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    message_id TEXT,
    message    INTEGER,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_message_id ON audit_events(message_id);
CREATE INDEX audit_events_message ON audit_events(message);
