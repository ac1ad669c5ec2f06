//! The database file, its modes, pragmas and migrations. (Reopening it
//! and several connections at once are in the conformance suite,
//! `conformance::connections`.)

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::sqlite::*;

#[test]
fn database_file_and_its_wal_are_created_0600_in_a_0700_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = open(&data);
    store.add_domain(&domain("a.example"), &[]).unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
    assert_eq!(mode(&data.join("hisp.db-wal")), 0o600);
    assert_eq!(mode(&data.join("hisp.db-shm")), 0o600);
}

#[test]
fn a_wider_mode_on_an_existing_database_is_narrowed() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    let db = tmp.path().join(DB_FILE);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(open(tmp.path()));
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn wal_synchronous_full_and_foreign_keys_are_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    assert_eq!(store.journal_mode().unwrap(), "wal");
    let conn = store.conn();
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn migrations_are_applied_once_however_often_the_store_is_opened() {
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let store = open(tmp.path());
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let rows: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, SCHEMA_VERSION);
    }
}

#[test]
fn a_database_from_a_newer_hisp_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store
        .conn()
        .execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, 0)",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
    drop(store);
    match SqliteStore::open_in(tmp.path()) {
        Err(StoreError::NewerSchema { found, known, .. }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
}

/// A queue step commits at `synchronous=NORMAL`; what a reply promises (an
/// enqueue before its 250, an administrator's change) at `FULL` again, which
/// also flushes the steps before it.
#[test]
fn queue_steps_commit_at_normal_and_an_enqueue_at_full() {
    use crate::{Domain, Store};
    use time::OffsetDateTime;
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let level = |store: &SqliteStore| -> i64 {
        store
            .conn()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    };
    store
        .claim_due(
            OffsetDateTime::now_utc(),
            std::time::Duration::from_secs(60),
            1,
        )
        .unwrap();
    assert_eq!(level(&store), 1, "a claim commits at NORMAL");
    store
        .add_domain(&Domain::parse("a.example").unwrap(), &[])
        .unwrap();
    assert_eq!(
        level(&store),
        2,
        "an administrator's change commits at FULL"
    );
}
