//! The PostgreSQL groundwork against a real server (`hisp-testpg`: one
//! throwaway server per test process, a fresh database per test): the
//! migrations, the schema's constraints, the classification of real
//! failures, the pool and TLS.

use std::collections::BTreeSet;

use hisp_testpg::TestDatabase;

use super::migrations;
use super::*;
use crate::error::{DatabaseErrorKind, StoreError};

fn url(db: &TestDatabase, query: &str) -> PostgresUrl {
    PostgresUrl::parse(&format!("{}{query}", db.url())).unwrap()
}

fn pool(db: &TestDatabase) -> PostgresPool {
    PostgresPool::open(&url(db, "?sslmode=disable"), Some(db.password()), 2).unwrap()
}

/// How many migrations a fresh database takes.
const MIGRATION_COUNT: usize = 2;

fn kind(e: &StoreError) -> DatabaseErrorKind {
    e.database_kind()
        .unwrap_or_else(|| panic!("not a database error: {e:?}"))
}

/// The tables and their columns of a schema, by table.
type Columns = std::collections::BTreeMap<String, BTreeSet<String>>;

fn postgres_columns(db: &TestDatabase) -> Columns {
    let mut out = Columns::new();
    for row in db
        .admin()
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        out.entry(row.get(0)).or_default().insert(row.get(1));
    }
    out
}

fn sqlite_columns() -> Columns {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hisp.db");
    drop(crate::SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let mut out = Columns::new();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (table, column) = row.unwrap();
        out.entry(table).or_default().insert(column);
    }
    out
}

#[test]
fn a_fresh_database_migrates_to_the_current_version_and_a_second_run_applies_nothing() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    assert_eq!(pool.schema_version().unwrap(), 0);
    let report = pool.migrate().unwrap();
    assert_eq!((report.from, report.to), (0, SCHEMA_VERSION));
    let names: Vec<_> = report.applied.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["schema", "change_signals"]);
    assert_eq!(pool.schema_version().unwrap(), SCHEMA_VERSION);

    let again = pool.migrate().unwrap();
    assert!(again.was_current());
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));

    let history = db
        .admin()
        .query(
            "SELECT version, name, checksum FROM schema_version ORDER BY version",
            &[],
        )
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].get::<_, String>(1), "schema");
    assert_eq!(
        history[0].get::<_, String>(2),
        crate::migration::checksum(include_str!("../../migrations/postgres/V1__schema.sql"))
    );
    assert_eq!(history[1].get::<_, String>(1), "change_signals");
    assert_eq!(
        history[1].get::<_, String>(2),
        crate::migration::checksum(include_str!(
            "../../migrations/postgres/V2__change_signals.sql"
        ))
    );
}

#[test]
fn the_schema_has_every_table_and_column_of_the_sqlite_schema() {
    let db = TestDatabase::new();
    pool(&db).migrate().unwrap();
    let postgres = postgres_columns(&db);
    let sqlite = sqlite_columns();
    let tables = |c: &Columns| c.keys().cloned().collect::<BTreeSet<_>>();
    // PostgreSQL's own: the counters its triggers move (version 2).
    let mut own = tables(&postgres);
    assert!(own.remove("store_counters"));
    assert_eq!(own, tables(&sqlite));
    for (table, columns) in &sqlite {
        let missing: Vec<_> = columns.difference(&postgres[table]).collect();
        assert!(missing.is_empty(), "{table} lacks {missing:?}");
    }
    // What PostgreSQL adds: the lower-case keys of addresses and the lease's
    // owner.
    let added: BTreeSet<String> = postgres
        .iter()
        .filter(|(t, _)| t.as_str() != "store_counters")
        .flat_map(|(t, cs)| {
            cs.iter()
                .filter(|c| !sqlite[t].contains(*c))
                .map(move |c| format!("{t}.{c}"))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "addresses.local_part_key",
        "audit_events.address_key",
        "mailbox.address_key",
        "mailbox_senders.address_key",
        "messages.envelope_from_key",
        "portal_notices.owner_key",
        "queue.lease_owner",
        "recipients.address_key",
    ]
    .map(String::from)
    .into();
    assert_eq!(added, expected);
}

#[test]
fn a_newer_schema_is_refused_leaving_the_database_as_it_was() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    pool.migrate().unwrap();
    db.admin()
        .execute(
            "INSERT INTO schema_version (version, applied_at, name, checksum)
             VALUES ($1, 1, 'from_the_future', 'ab')",
            &[&(SCHEMA_VERSION + 1)],
        )
        .unwrap();
    let newer = SCHEMA_VERSION + 1;
    match pool.migrate() {
        Err(e @ StoreError::NewerSchema { found, known, .. })
            if (found, known) == (newer, SCHEMA_VERSION) =>
        {
            assert_eq!(
                e.to_string(),
                format!(
                    "the database {}?sslmode=disable has schema version {newer}, but this hisp \
                     knows versions up to {SCHEMA_VERSION}: use a newer hisp",
                    db.url()
                )
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.schema_version().unwrap(), newer);
}

#[test]
fn a_migration_changed_after_it_was_applied_is_refused() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    pool.migrate().unwrap();
    db.admin()
        .execute(
            "UPDATE schema_version SET checksum = 'ab' WHERE version = 1",
            &[],
        )
        .unwrap();
    let err = pool.migrate().unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaMismatch { version: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn instances_migrating_at_once_migrate_once() {
    let db = TestDatabase::new();
    let pools: Vec<PostgresPool> = (0..3).map(|_| pool(&db)).collect();
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = pools.iter().map(|p| s.spawn(|| p.migrate())).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let applied: usize = reports.iter().map(|r| r.applied.len()).sum();
    assert_eq!(applied, MIGRATION_COUNT, "{reports:?}");
    assert_eq!(
        reports.iter().filter(|r| !r.applied.is_empty()).count(),
        1,
        "{reports:?}"
    );
    assert!(reports.iter().all(|r| r.to == SCHEMA_VERSION));
}

#[test]
fn an_address_is_one_whatever_its_letter_case_and_a_refusal_is_a_constraint() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    pool.migrate().unwrap();
    let mut c = pool.connection().unwrap();
    c.batch_execute(
        "INSERT INTO domains (id, name, added_at) VALUES (1, 'a.example', 0);
         INSERT INTO addresses (domain_id, local_part, added_at) VALUES (1, 'Alice', 0);",
    )
    .unwrap();
    let err = c
        .execute(
            "INSERT INTO addresses (domain_id, local_part, added_at) VALUES (1, 'aLICE', 0)",
            &[],
        )
        .map_err(StoreError::postgres("adding an address"))
        .unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::Constraint);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("SQLSTATE 23505"), "{err}");
    let kept: String = c
        .query_one("SELECT local_part FROM addresses", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, "Alice", "the spelling given is kept");
    // A domain is stored lower-case.
    let err = c
        .execute(
            "INSERT INTO domains (name, added_at) VALUES ('B.example', 0)",
            &[],
        )
        .map_err(StoreError::postgres("adding a domain"))
        .unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::Constraint);
}

#[test]
fn the_audit_log_is_append_only_and_a_change_is_refused_as_a_constraint() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    pool.migrate().unwrap();
    let mut c = pool.connection().unwrap();
    c.execute(
        "INSERT INTO audit_events (id, at, kind, detail) VALUES (1, 0, 'queued', 'x')",
        &[],
    )
    .unwrap();
    for sql in [
        "UPDATE audit_events SET detail = 'y'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = c
            .batch_execute(sql)
            .map_err(StoreError::postgres("changing the audit log"))
            .unwrap_err();
        assert_eq!(kind(&err), DatabaseErrorKind::Constraint, "{sql}");
        assert!(
            err.to_string().contains("audit events are append-only"),
            "{err}"
        );
    }
}

#[test]
fn a_concurrent_update_in_repeatable_read_is_a_serialization_failure() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    let mut a = pool.connection().unwrap();
    let mut b = pool.connection().unwrap();
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)")
        .unwrap();
    let mut tx = a
        .build_transaction()
        .isolation_level(::postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    tx.query("SELECT v FROM t", &[]).unwrap();
    b.execute("UPDATE t SET v = v + 1 WHERE id = 1", &[])
        .unwrap();
    let err = tx
        .execute("UPDATE t SET v = v + 1 WHERE id = 1", &[])
        .map_err(StoreError::postgres("updating"))
        .unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::Serialization);
    assert!(err.is_retryable());
}

#[test]
fn a_row_locked_elsewhere_with_nowait_is_busy() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    let mut a = pool.connection().unwrap();
    let mut b = pool.connection().unwrap();
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .unwrap();
    let mut tx = a.transaction().unwrap();
    tx.query("SELECT id FROM t WHERE id = 1 FOR UPDATE", &[])
        .unwrap();
    let err = b
        .query("SELECT id FROM t WHERE id = 1 FOR UPDATE NOWAIT", &[])
        .map_err(StoreError::postgres("claiming"))
        .unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::Busy);
    assert!(err.is_retryable());
}

#[test]
fn a_connection_the_server_ended_is_lost_and_the_pool_replaces_it() {
    let db = TestDatabase::new();
    let pool = PostgresPool::open(&url(&db, "?sslmode=disable"), Some(db.password()), 1).unwrap();
    let mut c = pool.connection().unwrap();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    db.admin()
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let err = c
        .query("SELECT 1", &[])
        .map_err(StoreError::postgres("reading"))
        .unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::ConnectionLost, "{err}");
    assert!(err.is_retryable());
    drop(c);
    // The one connection of the pool was closed by the server; the next
    // caller gets a new one.
    let mut c = pool.connection().unwrap();
    let other: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert_ne!(other, pid);
}

#[test]
fn a_server_that_is_not_there_is_a_lost_connection_and_a_wrong_password_is_not() {
    let db = TestDatabase::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = PostgresUrl::parse(&format!(
        "postgres://hisp_test@127.0.0.1:{closed}/x?sslmode=disable"
    ))
    .unwrap();
    let err = PostgresPool::open(&nowhere, Some("pw"), 1).unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::ConnectionLost, "{err}");

    let err = PostgresPool::open(&url(&db, "?sslmode=disable"), Some("wrong"), 1).unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::Other);
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "database error while connecting to the database: password authentication failed for \
         user \"hisp_test\" (SQLSTATE 28P01)"
    );
    let err = PostgresPool::open(&url(&db, ""), Some(db.password()), 0).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                what: "pool size",
                ..
            }
        ),
        "{err:?}"
    );
}

/// Whether the connection is encrypted, as the server sees it.
fn encrypted(pool: &PostgresPool) -> bool {
    pool.connection()
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn tls_is_used_as_the_url_asks() {
    let db = TestDatabase::new();
    let open = |query: &str| PostgresPool::open(&url(&db, query), Some(db.password()), 1);
    assert!(!encrypted(&open("?sslmode=disable").unwrap()));
    assert!(encrypted(&open("?sslmode=require").unwrap()));
    let ca = db.ca_file().display().to_string();
    assert!(encrypted(
        &open(&format!("?sslmode=verify-full&sslrootcert={ca}")).unwrap()
    ));
    let localhost = PostgresUrl::parse(&format!(
        "postgres://hisp_test@localhost:{}/{}?sslmode=verify-full&sslrootcert={ca}",
        db.port(),
        db.name()
    ))
    .unwrap();
    assert!(encrypted(
        &PostgresPool::open(&localhost, Some(db.password()), 1).unwrap()
    ));
}

#[test]
fn verify_full_refuses_a_server_whose_certificate_it_cannot_trust() {
    let db = TestDatabase::new();
    // The system's CA certificates did not issue the test server's.
    let err =
        PostgresPool::open(&url(&db, "?sslmode=verify-full"), Some(db.password()), 1).unwrap_err();
    assert_eq!(kind(&err), DatabaseErrorKind::Other, "{err}");
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
    // A certificate issued to localhost and 127.0.0.1, reached by another
    // name, fails the name check of verify-full and passes verify-ca.
    let ca = db.ca_file().display().to_string();
    // The server listens on 127.0.0.1 only: reach it there (hostaddr) while
    // naming it otherwise.
    let wrong_name = PostgresUrl::parse(&format!(
        "postgres://hisp_test@wrong.invalid:{}/{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}",
        db.port(),
        db.name()
    ))
    .unwrap();
    let err = PostgresPool::open(&wrong_name, Some(db.password()), 1).unwrap_err();
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
    let ca_only = PostgresUrl::parse(&format!(
        "postgres://hisp_test@wrong.invalid:{}/{}?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}",
        db.port(),
        db.name()
    ))
    .unwrap();
    assert!(encrypted(
        &PostgresPool::open(&ca_only, Some(db.password()), 1).unwrap()
    ));
}

#[test]
fn migrating_to_a_target_below_the_newest_stops_there() {
    let db = TestDatabase::new();
    let pool = pool(&db);
    let report = migrations::migrate_to(&mut pool.connection().unwrap(), "db", 0).unwrap();
    assert!(report.was_current());
    assert_eq!(pool.schema_version().unwrap(), 0);
}
