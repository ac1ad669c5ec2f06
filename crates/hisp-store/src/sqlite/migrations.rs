//! The schema, as numbered migrations applied in order, each recorded in
//! `schema_version`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;

/// One step of the schema.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// The schema, oldest first. A released migration is never edited; a change
/// is a new migration with the next number.
///
/// Conventions: times are Unix seconds (UTC); fingerprints are the 32 bytes
/// of SHA-256 over the DER; serials are lower-case hex without leading zeros.
const MIGRATIONS: &[Migration] = &[Migration {
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
}];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 1;

/// Brings the database to [`SCHEMA_VERSION`] in one transaction. An
/// IMMEDIATE transaction takes the write lock first, so two processes opening
/// a new database at once migrate it once. A database newer than this build
/// is refused untouched.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
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
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql)
            .map_err(StoreError::sqlite("applying a schema migration"))?;
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
