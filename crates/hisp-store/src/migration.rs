//! The schema's migrations, run by one runner for every backend.
//!
//! Each backend keeps its schema as numbered SQL files,
//! `migrations/<backend>/V<n>__<name>.sql`, applied oldest first, each once,
//! and recorded in the database's schema history (`schema_version`: the
//! version, when it was applied, its name and the SHA-256 of its SQL). A
//! released migration is never edited; a change is a new file with the
//! next number. The runner refuses a database whose history does not fit
//! this build: a version newer than it knows (written by a newer hisp), a
//! recorded checksum that differs from the file's (the SQL was changed after
//! it was applied), or a gap (a version never applied below one that was).
//!
//! No migration crate was taken for this. `refinery` (0.10, the one that
//! serves SQLite and PostgreSQL alike) was checked: its `rusqlite` feature
//! accepts rusqlite up to 0.41, and the workspace is on 0.43, whose bundled
//! SQLite cannot be linked twice in one binary; and its migrations are SQL
//! only, while version 5 runs code in the same transaction as its SQL
//! (SHA-256 over existing audit events, which SQLite cannot compute). The
//! files follow refinery's naming, so moving to it later keeps them.

use crate::error::StoreError;

/// One step of a backend's schema: its SQL and, for a step that needs code
/// (something the database cannot compute), the backend's step `S`, run
/// after the SQL in the same transaction.
pub(crate) struct Migration<S> {
    /// The version this step brings the schema to (1, 2, ... without gaps).
    pub(crate) version: i64,
    /// Its name, from the file name (`V5__portal_and_audit_chain.sql`:
    /// `portal_and_audit_chain`).
    pub(crate) name: &'static str,
    /// The SQL, as the file holds it.
    pub(crate) sql: &'static str,
    /// Code run after the SQL, in the same transaction.
    pub(crate) then: Option<S>,
}

impl<S> Migration<S> {
    /// The SHA-256 of the SQL, lower-case hex: what the history records to
    /// notice a migration edited after it was applied.
    pub(crate) fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

/// The SHA-256 of `sql`, lower-case hex.
pub(crate) fn checksum(sql: &str) -> String {
    openssl::sha::sha256(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One row of a database's schema history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The version applied.
    pub(crate) version: i64,
    /// The checksum recorded with it; none for versions applied by a hisp
    /// that did not record checksums yet.
    pub(crate) checksum: Option<String>,
}

/// A migration applied by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The version it brought the schema to.
    pub version: i64,
    /// Its name (`portal_and_audit_chain`).
    pub name: String,
}

/// What a run of the migrations found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema version found (0 for a new database).
    pub from: i64,
    /// The schema version after the run.
    pub to: i64,
    /// The migrations applied, oldest first; empty when the schema was
    /// current.
    pub applied: Vec<AppliedMigration>,
}

impl MigrationReport {
    /// Whether the schema was current already: nothing was applied.
    pub fn was_current(&self) -> bool {
        self.applied.is_empty()
    }
}

/// The backend's side of a run: the statements on its schema history and
/// the application of one migration, all inside the one transaction the
/// backend opened for the run (so a failed run leaves the database as it
/// was, and two processes opening one database migrate it once).
pub(crate) trait SchemaHistory {
    /// The backend's code step of a migration.
    type Step;

    /// Makes the history table exist with every column the runner uses,
    /// adding those an older hisp's table lacks.
    fn ensure_history(&mut self) -> Result<(), StoreError>;

    /// The recorded versions, oldest first.
    fn recorded(&mut self) -> Result<Vec<Recorded>, StoreError>;

    /// Records the name and checksum of a version applied by a hisp that
    /// did not record them.
    fn complete_record(
        &mut self,
        version: i64,
        name: &str,
        checksum: &str,
    ) -> Result<(), StoreError>;

    /// Applies one migration: its SQL, then its step.
    fn apply(&mut self, migration: &Migration<Self::Step>) -> Result<(), StoreError>;

    /// Records one applied migration.
    fn record(
        &mut self,
        version: i64,
        name: &str,
        checksum: &str,
        applied_at: i64,
    ) -> Result<(), StoreError>;
}

/// Brings the schema behind `history` to `target` (at most the newest of
/// `migrations`), checking the recorded history first. `database` names
/// it in errors (a file, or a URL without its password).
pub(crate) fn run<H: SchemaHistory>(
    history: &mut H,
    migrations: &[Migration<H::Step>],
    target: i64,
    database: &str,
) -> Result<MigrationReport, StoreError> {
    let known = migrations.last().map_or(0, |m| m.version);
    history.ensure_history()?;
    let recorded = history.recorded()?;
    let current = recorded.iter().map(|r| r.version).max().unwrap_or(0);
    if current > known {
        return Err(StoreError::NewerSchema {
            database: database.to_string(),
            found: current,
            known,
        });
    }
    let mismatch = |version: i64, reason: String| StoreError::SchemaMismatch {
        database: database.to_string(),
        version,
        reason,
    };
    for m in migrations.iter().filter(|m| m.version <= current) {
        let Some(r) = recorded.iter().find(|r| r.version == m.version) else {
            return Err(mismatch(
                m.version,
                format!(
                    "migration {} ({}) was never applied, yet version {current} was",
                    m.version, m.name
                ),
            ));
        };
        let expected = m.checksum();
        match &r.checksum {
            Some(found) if *found != expected => {
                return Err(mismatch(
                    m.version,
                    format!(
                        "migration {} ({}) was applied with checksum {found}, but this hisp's is \
                         {expected}: its SQL was changed after it was applied",
                        m.version, m.name
                    ),
                ))
            }
            Some(_) => {}
            // Applied by a hisp that recorded no checksums. A released
            // migration is never edited, so it ran this very SQL.
            None => history.complete_record(m.version, m.name, &expected)?,
        }
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut applied = Vec::new();
    for m in migrations
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        history.apply(m)?;
        history.record(m.version, m.name, &m.checksum(), now)?;
        tracing::info!(version = m.version, name = m.name, %database, "applied schema migration");
        applied.push(AppliedMigration {
            version: m.version,
            name: m.name.to_string(),
        });
    }
    Ok(MigrationReport {
        from: current,
        to: applied.last().map_or(current, |a| a.version),
        applied,
    })
}

#[cfg(test)]
mod tests {
    //! The runner's decisions against a history kept in memory; the SQLite
    //! history is tested through the store.

    use super::*;

    #[derive(Default)]
    struct Memory {
        rows: Vec<(i64, Option<String>, Option<String>)>,
        ran: Vec<i64>,
    }

    impl SchemaHistory for Memory {
        type Step = ();
        fn ensure_history(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
        fn recorded(&mut self) -> Result<Vec<Recorded>, StoreError> {
            Ok(self
                .rows
                .iter()
                .map(|(version, _, checksum)| Recorded {
                    version: *version,
                    checksum: checksum.clone(),
                })
                .collect())
        }
        fn complete_record(
            &mut self,
            version: i64,
            name: &str,
            checksum: &str,
        ) -> Result<(), StoreError> {
            let row = self.rows.iter_mut().find(|r| r.0 == version).unwrap();
            row.1 = Some(name.to_string());
            row.2 = Some(checksum.to_string());
            Ok(())
        }
        fn apply(&mut self, m: &Migration<()>) -> Result<(), StoreError> {
            self.ran.push(m.version);
            Ok(())
        }
        fn record(
            &mut self,
            version: i64,
            name: &str,
            checksum: &str,
            _: i64,
        ) -> Result<(), StoreError> {
            self.rows
                .push((version, Some(name.into()), Some(checksum.into())));
            Ok(())
        }
    }

    const SET: [Migration<()>; 3] = [
        Migration {
            version: 1,
            name: "one",
            sql: "CREATE TABLE one (id INTEGER);",
            then: None,
        },
        Migration {
            version: 2,
            name: "two",
            sql: "CREATE TABLE two (id INTEGER);",
            then: None,
        },
        Migration {
            version: 3,
            name: "three",
            sql: "CREATE TABLE three (id INTEGER);",
            then: None,
        },
    ];

    #[test]
    fn a_new_database_gets_every_migration_in_order_and_a_second_run_applies_none() {
        let mut h = Memory::default();
        let report = run(&mut h, &SET, 3, "db").unwrap();
        assert_eq!((report.from, report.to), (0, 3));
        assert_eq!(h.ran, [1, 2, 3]);
        let names: Vec<_> = report.applied.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["one", "two", "three"]);
        let again = run(&mut h, &SET, 3, "db").unwrap();
        assert!(again.was_current());
        assert_eq!((again.from, again.to), (3, 3));
        assert_eq!(h.ran, [1, 2, 3]);
    }

    #[test]
    fn versions_recorded_without_checksums_get_them_and_the_rest_is_applied() {
        let mut h = Memory {
            rows: vec![(1, None, None)],
            ran: Vec::new(),
        };
        let report = run(&mut h, &SET, 3, "db").unwrap();
        assert_eq!(h.ran, [2, 3]);
        assert_eq!(report.from, 1);
        assert_eq!(h.rows[0].1.as_deref(), Some("one"));
        assert_eq!(h.rows[0].2, Some(SET[0].checksum()));
    }

    #[test]
    fn a_newer_version_is_refused_before_anything_is_applied() {
        let mut h = Memory {
            rows: vec![(1, None, None), (2, None, None), (4, None, None)],
            ran: Vec::new(),
        };
        match run(&mut h, &SET, 3, "db") {
            Err(StoreError::NewerSchema {
                found: 4, known: 3, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(h.ran.is_empty());
        assert!(h.rows.iter().all(|r| r.2.is_none()));
    }

    #[test]
    fn a_migration_changed_after_it_was_applied_is_refused_naming_it() {
        let mut h = Memory {
            rows: vec![(
                1,
                Some("one".into()),
                Some(checksum("CREATE TABLE one (x);")),
            )],
            ran: Vec::new(),
        };
        let err = run(&mut h, &SET, 3, "hisp.db").unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaMismatch { version: 1, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(
                "the schema history of hisp.db does not fit this hisp at version 1: \
                 migration 1 (one) was applied with checksum "
            ),
            "{err}"
        );
        assert!(h.ran.is_empty());
    }

    #[test]
    fn a_gap_in_the_history_is_refused() {
        let mut h = Memory {
            rows: vec![(1, None, None), (3, None, None)],
            ran: Vec::new(),
        };
        let err = run(&mut h, &SET, 3, "db").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("migration 2 (two) was never applied, yet version 3 was"),
            "{err}"
        );
    }

    #[test]
    fn a_target_below_the_newest_stops_there() {
        let mut h = Memory::default();
        let report = run(&mut h, &SET, 2, "db").unwrap();
        assert_eq!(report.to, 2);
        assert_eq!(h.ran, [1, 2]);
    }

    #[test]
    fn the_checksum_is_the_sha256_of_the_sql() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
