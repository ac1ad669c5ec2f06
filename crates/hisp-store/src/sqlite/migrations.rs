//! The SQLite schema: the numbered SQL files of `migrations/sqlite/`, run
//! by the backend-neutral runner ([`crate::migration`]) with `schema_version`
//! as the history table, all in one IMMEDIATE transaction.

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::StoreError;
use crate::migration::{self, Migration, MigrationReport, Recorded, SchemaHistory};

/// Code a migration runs after its SQL, in the same transaction.
type MigrationStep = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// The schema, oldest first: `migrations/sqlite/V<n>__<name>.sql`, each
/// file saying what its version adds and why. A released migration is never
/// edited (the history holds its checksum); a change is a new file with the
/// next number, listed here.
const MIGRATIONS: &[Migration<MigrationStep>] = &[
    Migration {
        version: 1,
        name: "directory",
        sql: include_str!("../../migrations/sqlite/V1__directory.sql"),
        then: None,
    },
    Migration {
        version: 2,
        name: "users_queue_mailboxes",
        sql: include_str!("../../migrations/sqlite/V2__users_queue_mailboxes.sql"),
        then: None,
    },
    Migration {
        version: 3,
        name: "delivery_notification",
        sql: include_str!("../../migrations/sqlite/V3__delivery_notification.sql"),
        then: None,
    },
    Migration {
        version: 4,
        name: "quarantine_by_reference",
        sql: include_str!("../../migrations/sqlite/V4__quarantine_by_reference.sql"),
        then: None,
    },
    Migration {
        version: 5,
        name: "portal_and_audit_chain",
        sql: include_str!("../../migrations/sqlite/V5__portal_and_audit_chain.sql"),
        then: Some(v5_then),
    },
    Migration {
        version: 6,
        name: "portal_notices",
        sql: include_str!("../../migrations/sqlite/V6__portal_notices.sql"),
        then: None,
    },
    Migration {
        version: 7,
        name: "queued_once",
        sql: include_str!("../../migrations/sqlite/V7__queued_once.sql"),
        then: None,
    },
    Migration {
        version: 8,
        name: "queue_times_in_milliseconds",
        sql: include_str!("../../migrations/sqlite/V8__queue_times_in_milliseconds.sql"),
        then: None,
    },
    Migration {
        version: 9,
        name: "recipient_status",
        sql: include_str!("../../migrations/sqlite/V9__recipient_status.sql"),
        then: None,
    },
];

/// Run by [`v5_then`] after version 5's SQL, once the chain is complete.
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

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 9;

/// Brings the database to [`SCHEMA_VERSION`] in one transaction. An
/// IMMEDIATE transaction takes the write lock first, so two processes opening
/// a new database at once migrate it once. A database newer than this build,
/// or whose history does not fit it, is refused untouched.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<MigrationReport, StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Brings the database to `target` (at most [`SCHEMA_VERSION`]); tests use
/// it to make databases as older hisp versions left them.
pub(crate) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<MigrationReport, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("starting the migration"))?;
    let report = migration::run(
        &mut History(&tx),
        MIGRATIONS,
        target,
        &path.display().to_string(),
    )?;
    tx.commit()
        .map_err(StoreError::sqlite("committing the migration"))?;
    Ok(report)
}

/// `schema_version` in the migration's transaction.
///
/// A hisp before checksums made the table with `version` and `applied_at`
/// only; the columns `name` and `checksum` are added to it, nullable, so
/// such a hisp can still open (and refuse, or use) a database this one
/// migrated.
struct History<'a, 'c>(&'a Transaction<'c>);

impl SchemaHistory for History<'_, '_> {
    type Step = MigrationStep;

    fn ensure_history(&mut self) -> Result<(), StoreError> {
        self.0
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (
                    version    INTEGER PRIMARY KEY,
                    applied_at INTEGER NOT NULL,
                    name       TEXT,
                    checksum   TEXT
                )",
            )
            .map_err(StoreError::sqlite("creating schema_version"))?;
        let columns: Vec<String> = self
            .0
            .prepare("SELECT name FROM pragma_table_info('schema_version')")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(StoreError::sqlite("reading the columns of schema_version"))?;
        for column in ["name", "checksum"] {
            if !columns.iter().any(|c| c == column) {
                self.0
                    .execute_batch(&format!(
                        "ALTER TABLE schema_version ADD COLUMN {column} TEXT"
                    ))
                    .map_err(StoreError::sqlite("adding a column to schema_version"))?;
            }
        }
        Ok(())
    }

    fn recorded(&mut self) -> Result<Vec<Recorded>, StoreError> {
        self.0
            .prepare("SELECT version, checksum FROM schema_version ORDER BY version")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok(Recorded {
                        version: r.get(0)?,
                        checksum: r.get(1)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(StoreError::sqlite("reading schema_version"))
    }

    fn complete_record(
        &mut self,
        version: i64,
        name: &str,
        checksum: &str,
    ) -> Result<(), StoreError> {
        self.0
            .execute(
                "UPDATE schema_version SET name = ?2, checksum = ?3 WHERE version = ?1",
                (version, name, checksum),
            )
            .map(|_| ())
            .map_err(StoreError::sqlite("recording a migration's checksum"))
    }

    fn apply(&mut self, m: &Migration<MigrationStep>) -> Result<(), StoreError> {
        self.0
            .execute_batch(m.sql)
            .map_err(StoreError::sqlite("applying a schema migration"))?;
        match m.then {
            Some(then) => then(self.0),
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
                 VALUES (?1, ?2, ?3, ?4)",
                (version, applied_at, name, checksum),
            )
            .map(|_| ())
            .map_err(StoreError::sqlite("recording a schema migration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for m in MIGRATIONS {
            assert!(
                m.sql.starts_with("-- "),
                "V{}__{}.sql says first what it adds and why",
                m.version,
                m.name
            );
        }
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    /// A database as a hisp before checksums left it at version 4: the
    /// history table with `version` and `applied_at` only.
    fn version_4_without_checksums(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (
                version    INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL
            )",
        )
        .unwrap();
        for m in &MIGRATIONS[..4] {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, 100)",
                [m.version],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO domains (name, added_at) VALUES ('a.example', 1)",
            [],
        )
        .unwrap();
    }

    fn history(path: &Path) -> Vec<(i64, i64, Option<String>, Option<String>)> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT version, applied_at, name, checksum FROM schema_version ORDER BY version",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    }

    #[test]
    fn a_history_without_checksums_gets_them_and_the_rest_is_applied_keeping_the_data() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(crate::DB_FILE);
        version_4_without_checksums(&path);
        let store = crate::SqliteStore::open(&path).unwrap();
        let report = store.migration().clone();
        assert_eq!((report.from, report.to), (4, SCHEMA_VERSION));
        let applied: Vec<_> = report.applied.iter().map(|a| a.version).collect();
        assert_eq!(applied, [5, 6, 7, 8, 9]);
        assert_eq!(report.applied[0].name, "portal_and_audit_chain");
        use crate::Store;
        assert_eq!(store.domains().unwrap()[0].domain.as_str(), "a.example");
        drop(store);

        let rows = history(&path);
        assert_eq!(rows.len(), MIGRATIONS.len());
        for (row, m) in rows.iter().zip(MIGRATIONS) {
            assert_eq!(row.0, m.version);
            assert_eq!(row.2.as_deref(), Some(m.name));
            assert_eq!(row.3, Some(m.checksum()), "version {}", m.version);
        }
        // The versions an older hisp applied keep their time.
        assert!(rows[..4].iter().all(|r| r.1 == 100));
        assert!(rows[4..].iter().all(|r| r.1 > 100));

        let again = crate::SqliteStore::open(&path).unwrap();
        assert!(again.migration().was_current());
        assert_eq!(again.migration().from, SCHEMA_VERSION);
    }

    #[test]
    fn a_migration_whose_recorded_checksum_differs_is_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(crate::DB_FILE);
        drop(crate::SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE schema_version SET checksum = 'ab' WHERE version = 3",
            [],
        )
        .unwrap();
        let before = history(&path);
        match crate::SqliteStore::open(&path) {
            Err(e @ StoreError::SchemaMismatch { version: 3, .. }) => assert_eq!(
                e.to_string(),
                format!(
                    "the schema history of {} does not fit this hisp at version 3: migration 3 \
                     (delivery_notification) was applied with checksum ab, but this hisp's is {}: \
                     its SQL was changed after it was applied",
                    path.display(),
                    MIGRATIONS[2].checksum()
                )
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(history(&path), before);
    }
}
