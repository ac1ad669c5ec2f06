//! The PostgreSQL schema: the numbered SQL files of `migrations/postgres/`,
//! run by the backend-neutral runner ([`crate::migration`]) with
//! `schema_version` as the history table, all in one transaction that first
//! takes a transaction-level advisory lock.
//!
//! PostgreSQL's DDL is transactional, so a failed run leaves the database as
//! it was. The lock makes instances that start together migrate one after
//! the other: the second waits, then finds the schema current. (Creating
//! the history table concurrently without it could fail on the catalog's
//! unique index.)

use std::convert::Infallible;

use ::postgres::{Client, Transaction};

use crate::error::StoreError;
use crate::migration::{self, Migration, MigrationReport, Recorded, SchemaHistory};

/// The schema, oldest first: `migrations/postgres/V<n>__<name>.sql`. Version
/// 1 is the whole schema as SQLite's is at its version 9; a change is a new
/// file with the next number, listed here. No PostgreSQL migration runs code:
/// what SQLite's version 5 computes in Rust, PostgreSQL's version 1 starts
/// with (an empty audit chain).
const MIGRATIONS: &[Migration<Infallible>] = &[
    Migration {
        version: 1,
        name: "schema",
        sql: include_str!("../../migrations/postgres/V1__schema.sql"),
        then: None,
    },
    Migration {
        version: 2,
        name: "change_signals",
        sql: include_str!("../../migrations/postgres/V2__change_signals.sql"),
        then: None,
    },
];

/// The newest PostgreSQL schema version this build knows.
pub const SCHEMA_VERSION: i64 = 2;

/// The key of the advisory lock held while migrating: "hisp-mig" in ASCII.
const MIGRATION_LOCK: i64 = 0x6869_7370_2d6d_6967;

/// Brings the database to [`SCHEMA_VERSION`].
pub(crate) fn migrate(client: &mut Client, database: &str) -> Result<MigrationReport, StoreError> {
    migrate_to(client, database, SCHEMA_VERSION)
}

/// Brings the database to `target` (at most [`SCHEMA_VERSION`]).
pub(crate) fn migrate_to(
    client: &mut Client,
    database: &str,
    target: i64,
) -> Result<MigrationReport, StoreError> {
    let mut tx = client
        .transaction()
        .map_err(StoreError::postgres("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(StoreError::postgres("waiting for the migration lock"))?;
    let report = migration::run(&mut History(&mut tx), MIGRATIONS, target, database)?;
    tx.commit()
        .map_err(StoreError::postgres("committing the migration"))?;
    Ok(report)
}

/// The highest version recorded, 0 when there is no history yet.
pub(crate) fn version(client: &mut Client) -> Result<i64, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .map_err(StoreError::postgres("looking for schema_version"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .map(|r| r.get(0))
        .map_err(StoreError::postgres("reading schema_version"))
}

/// `schema_version` in the migration's transaction: the same columns as
/// SQLite's table. Every version here was recorded with its name and
/// checksum (PostgreSQL support began after checksums), so they are NOT
/// NULL.
struct History<'a, 'c>(&'a mut Transaction<'c>);

impl SchemaHistory for History<'_, '_> {
    type Step = Infallible;

    fn ensure_history(&mut self) -> Result<(), StoreError> {
        self.0
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (
                    version    bigint PRIMARY KEY,
                    applied_at bigint NOT NULL,
                    name       text NOT NULL,
                    checksum   text NOT NULL
                )",
            )
            .map_err(StoreError::postgres("creating schema_version"))
    }

    fn recorded(&mut self) -> Result<Vec<Recorded>, StoreError> {
        let rows = self
            .0
            .query(
                "SELECT version, checksum FROM schema_version ORDER BY version",
                &[],
            )
            .map_err(StoreError::postgres("reading schema_version"))?;
        Ok(rows
            .iter()
            .map(|r| Recorded {
                version: r.get(0),
                checksum: r.get(1),
            })
            .collect())
    }

    fn complete_record(
        &mut self,
        version: i64,
        name: &str,
        checksum: &str,
    ) -> Result<(), StoreError> {
        self.0
            .execute(
                "UPDATE schema_version SET name = $2, checksum = $3 WHERE version = $1",
                &[&version, &name, &checksum],
            )
            .map(|_| ())
            .map_err(StoreError::postgres("recording a migration's checksum"))
    }

    fn apply(&mut self, m: &Migration<Infallible>) -> Result<(), StoreError> {
        self.0
            .batch_execute(m.sql)
            .map_err(StoreError::postgres("applying a schema migration"))?;
        match m.then {
            Some(never) => match never {},
            None => Ok(()),
        }
    }

    fn record(
        &mut self,
        version: i64,
        name: &str,
        checksum: &str,
        applied_at: i64,
    ) -> Result<(), StoreError> {
        self.0
            .execute(
                "INSERT INTO schema_version (version, applied_at, name, checksum)
                 VALUES ($1, $2, $3, $4)",
                &[&version, &applied_at, &name, &checksum],
            )
            .map(|_| ())
            .map_err(StoreError::postgres("recording a schema migration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(
                m.sql.starts_with("-- "),
                "V{} says first what it holds",
                m.version
            );
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn the_schema_uses_no_sqlite_collation() {
        for m in MIGRATIONS {
            let code = m.sql.lines().filter(|l| !l.trim_start().starts_with("--"));
            for line in code {
                assert!(!line.contains("NOCASE"), "V{}: {line}", m.version);
            }
        }
    }
}
