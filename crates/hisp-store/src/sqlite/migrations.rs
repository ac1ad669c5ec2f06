//! The schema, as numbered migrations applied in order, each recorded in
//! `schema_version`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::StoreError;

/// Code a migration runs after its SQL, in the same transaction.
type MigrationStep = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// One step of the schema: its SQL, then, for a step that needs code (a
/// hash SQLite cannot compute), a function run in the same transaction.
struct Migration {
    version: i64,
    sql: &'static str,
    then: Option<MigrationStep>,
}

/// The schema, oldest first. A released migration is never edited; a change
/// is a new migration with the next number.
///
/// Conventions: times are Unix seconds (UTC); fingerprints are the 32 bytes
/// of SHA-256 over the DER; serials are lower-case hex without leading zeros.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE domains (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE CHECK (name <> '' AND name = lower(name)),
    added_at   INTEGER NOT NULL
);

-- The local part keeps its letter case but compares without it (NOCASE), so
-- Alice@d and alice@d are one address.
CREATE TABLE addresses (
    id         INTEGER PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
    local_part TEXT NOT NULL COLLATE NOCASE CHECK (local_part <> ''),
    added_at   INTEGER NOT NULL,
    UNIQUE (domain_id, local_part)
);

-- Certificates of local addresses or domains (exactly one owner), with the
-- private key (PKCS#8 PEM) when hisp signs or decrypts with it.
CREATE TABLE certificates (
    id          INTEGER PRIMARY KEY,
    address_id  INTEGER REFERENCES addresses(id) ON DELETE CASCADE,
    domain_id   INTEGER REFERENCES domains(id) ON DELETE CASCADE,
    der         BLOB NOT NULL,
    private_key BLOB,
    usage       TEXT NOT NULL CHECK (usage IN ('both', 'signing', 'encryption')),
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    serial      TEXT NOT NULL,
    fingerprint BLOB NOT NULL UNIQUE CHECK (length(fingerprint) = 32),
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    CHECK ((address_id IS NULL) <> (domain_id IS NULL))
);
CREATE INDEX certificates_address ON certificates(address_id);
CREATE INDEX certificates_domain ON certificates(domain_id);

CREATE TABLE anchors (
    id          INTEGER PRIMARY KEY,
    domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out', 'both')),
    der         BLOB NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    serial      TEXT NOT NULL,
    fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    UNIQUE (domain_id, fingerprint)
);

CREATE TABLE bundles (
    id              INTEGER PRIMARY KEY,
    domain_id       INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('url', 'file')),
    source          TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out', 'both')),
    refresh_secs    INTEGER NOT NULL CHECK (refresh_secs >= 60),
    last_good       BLOB,
    last_good_at    INTEGER,
    last_fetched_at INTEGER,
    last_error      TEXT,
    added_at        INTEGER NOT NULL,
    UNIQUE (domain_id, source)
);
",
        then: None,
    },
    Migration {
        version: 2,
        sql: V2,
        then: None,
    },
    Migration {
        version: 3,
        sql: V3,
        then: None,
    },
    Migration {
        version: 4,
        sql: V4,
        then: None,
    },
    Migration {
        version: 5,
        sql: V5,
        then: Some(v5_then),
    },
    Migration {
        version: 6,
        sql: V6,
        then: None,
    },
    Migration {
        version: 7,
        sql: V7,
        then: None,
    },
    Migration {
        version: 8,
        sql: V8,
        then: None,
    },
    Migration {
        version: 9,
        sql: V9,
        then: None,
    },
];

/// Users, the queue with per-recipient tracking, mailboxes, quarantine and
/// the audit log.
///
/// Addresses in these tables are text, not references to `addresses`: mail
/// and its audit trail outlive the removal of an address, and a message to a
/// remote recipient has no row there. They compare without letter case
/// (NOCASE), as [`DirectAddress`](crate::DirectAddress) does.
///
/// Message bytes are BLOBs in the same transaction as their rows: one commit
/// makes a message and its recipients durable together (no file to fsync and
/// no orphan to sweep after a crash), and one file is the whole backup.
const V2: &str = "
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
";

/// Delivery notification tracking (Implementation Guide for Delivery
/// Notification in Direct 1.0): what each message expects, when its sender
/// was sent the final notice about a failed recipient, and the indexes the
/// MDN timeout and the DSN sweep read.
///
/// The expectation and Subject live in a table beside `messages`, not in new
/// columns of it: SQLite appends an added column after `body`, and reading it
/// would walk every overflow page of the body. Messages queued before this
/// version read as ordinary mail without final delivery notification and
/// without a Subject, and none of their recipients is marked notified: the
/// MDN timeout and the DSN sweep see them like new mail.
const V3: &str = "
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
";

/// A quarantined message is stored once: an entry made from a queued
/// message refers to it (`message`) instead of holding a copy of its bytes;
/// `body` is kept only for messages quarantined without a queue entry, and
/// for entries made before this version. SQLite cannot drop NOT NULL from a
/// column, so the table is rebuilt with its rows.
const V4: &str = "
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
";

/// The store underneath the patient portal: portal accounts, who wrote to
/// each mailbox, and the audit chain.
///
/// - `portal_users`: one account per local address, gone with the address.
/// - `mailbox_senders`: for each Inbox entry that is mail (not a report)
///   from a Direct address, that address and the display name of its From
///   field, so the portal can offer whom to answer. A table beside
///   `mailbox` for the reason V3 gives: a column added to `mailbox` would
///   sit after `body`. Filled for existing entries from their header.
/// - `audit_events` gets the address an event is about and the hash that
///   chains it to the event before it; existing events are chained in order
///   by [`v5_then`], and triggers then make the table append-only.
/// - Sent copies are read: they are what the owner wrote.
const V5: &str = "
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
";

/// Run after [`V5`]'s SQL, once the chain is complete.
const V5_APPEND_ONLY: &str = "
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
";

/// Chains the existing audit events, fills `mailbox_senders` from the
/// headers of existing Inbox entries, then makes the audit log append-only.
fn v5_then(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::audit::chain_unhashed(tx)?;
    super::mailbox_view::fill_senders(tx)?;
    tx.execute_batch(V5_APPEND_ONLY)
        .map_err(StoreError::sqlite("making the audit log append-only"))
}

/// E-mail notices of new secure mail to portal users (issue 11 item 9).
///
/// - `message_tracking.expect` may be `'portal-notice'`: the plain e-mail
///   telling a portal user that new secure mail waits, relayed through the
///   `[notify]` smart host and tracked until relayed only. SQLite cannot
///   change a CHECK, so the table is rebuilt with its rows.
/// - `portal_notices`: whose mailbox each notice is about (the owner, for
///   the `notification-sent` audit event) and the inbound queued message
///   that caused it.
const V6: &str = "
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
";

/// Messages queued once under a name (`Store::enqueue_once`), such as the
/// demo's welcome message: the row is written in the enqueue's
/// transaction, so a message is queued under a name at most once however
/// often, and wherever, its sending is interrupted.
const V7: &str = "
CREATE TABLE queued_once (
    mark    TEXT PRIMARY KEY,
    message INTEGER NOT NULL REFERENCES messages(id),
    at      INTEGER NOT NULL
);
";

/// The queue engine (issue 13): the queue's own times to the millisecond
/// (Unix milliseconds, unlike the seconds elsewhere), so that the time from
/// queueing to the first attempt can be read at the scale the engine works
/// at, and an index for finding the recipients still queued per message
/// (what a claim counts against each destination). Entries queued before
/// have no millisecond times.
const V8: &str = "
ALTER TABLE queue ADD COLUMN queued_ms INTEGER;
ALTER TABLE queue ADD COLUMN first_attempt_ms INTEGER;
ALTER TABLE queue ADD COLUMN last_attempt_ms INTEGER;
CREATE INDEX recipients_message_state ON recipients(message, state);
";

/// A failed recipient keeps the RFC 3463 status its refusal carried
/// (`5.1.1`), the Status of the DSN that tells its sender; NULL when none
/// did (a timeout, hisp's own refusals), which the DSN gives as `5.0.0`.
const V9: &str = "
ALTER TABLE recipients ADD COLUMN status TEXT;
";

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 9;

/// Brings the database to [`SCHEMA_VERSION`] in one transaction. An
/// IMMEDIATE transaction takes the write lock first, so two processes opening
/// a new database at once migrate it once. A database newer than this build
/// is refused untouched.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Brings the database to `target` (at most [`SCHEMA_VERSION`]); tests use
/// it to make databases as older hisp versions left them.
pub(crate) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("starting the migration"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(StoreError::sqlite("creating schema_version"))?;
    let current: i64 = tx
        .query_row("SELECT max(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()
        .map_err(StoreError::sqlite("reading schema_version"))?
        .flatten()
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        tx.execute_batch(m.sql)
            .map_err(StoreError::sqlite("applying a schema migration"))?;
        if let Some(then) = m.then {
            then(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (m.version, now),
        )
        .map_err(StoreError::sqlite("recording a schema migration"))?;
        tracing::info!(version = m.version, path = %path.display(), "applied schema migration");
    }
    tx.commit()
        .map_err(StoreError::sqlite("committing the migration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
