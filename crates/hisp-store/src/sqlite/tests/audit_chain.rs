//! The audit chain's SQLite side: triggers that keep it append-only, rows
//! changed or removed behind the store's back, and databases from older
//! schemas chained by the migration. (The chain after real activity and
//! export by address are in the conformance suite,
//! `conformance::audit_chain`.)

use rusqlite::Connection;

use super::*;
use crate::audit::{AuditCheck, AuditFilter};
use crate::conformance::audit_chain::{t, MESSAGE};
use crate::sqlite::migrations::migrate_to;

/// A SQLite store with the conformance suite's audited activity in it.
fn busy_store(dir: &Path) -> SqliteStore {
    let store = open(dir);
    crate::conformance::audit_chain::fill(&store);
    store
}

fn event_count(store: &SqliteStore) -> i64 {
    store
        .conn()
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn audit_events_cannot_be_updated_or_deleted_through_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let store = busy_store(tmp.path());
    for sql in [
        "UPDATE audit_events SET detail = 'nothing happened' WHERE id = 1",
        "DELETE FROM audit_events WHERE id = 1",
    ] {
        let err = store.conn().execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert!(matches!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { .. }
    ));
}

#[test]
fn a_changed_event_breaks_the_chain_at_that_event() {
    let tmp = tempfile::tempdir().unwrap();
    let store = busy_store(tmp.path());
    let n = event_count(&store);
    store
        .conn()
        .execute_batch(
            "DROP TRIGGER audit_events_no_update;
             UPDATE audit_events SET detail = 'nothing happened' WHERE id = 3;",
        )
        .unwrap();
    match store.verify_audit_chain().unwrap() {
        AuditCheck::Broken { id, intact, reason } => {
            assert_eq!((id, intact), (3, 2));
            assert!(reason.contains("does not match"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Writing on after the break does not mend it.
    store.audit(AuditKind::Sealed, None, None, "later").unwrap();
    assert!(matches!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Broken { id: 3, .. }
    ));
    assert_eq!(event_count(&store), n + 1);
}

#[test]
fn a_changed_kind_time_or_hash_and_a_removed_event_are_found() {
    for (sql, first_bad) in [
        ("UPDATE audit_events SET kind = 'read' WHERE id = 2", 2),
        ("UPDATE audit_events SET at = at + 1 WHERE id = 4", 4),
        ("UPDATE audit_events SET at = 'yesterday' WHERE id = 4", 4),
        ("UPDATE audit_events SET address = NULL WHERE id = 5", 5),
        ("UPDATE audit_events SET hash = NULL WHERE id = 1", 1),
        ("DELETE FROM audit_events WHERE id = 2", 3),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let store = busy_store(tmp.path());
        store
            .conn()
            .execute_batch(&format!(
                "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; {sql};"
            ))
            .unwrap();
        match store.verify_audit_chain().unwrap() {
            AuditCheck::Broken { id, .. } => assert_eq!(id, first_bad, "{sql}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// The `since` half of export's selection (the address half is in the
/// conformance suite): events are stamped with the real time, so one is
/// moved back with SQL to select by it.
#[test]
fn export_selects_by_time() {
    let tmp = tempfile::tempdir().unwrap();
    let store = busy_store(tmp.path());
    // Events are stamped with the real time; move one back to select by it.
    store
        .conn()
        .execute_batch(
            "DROP TRIGGER audit_events_no_update;
             UPDATE audit_events SET at = 1000 WHERE id = 1;",
        )
        .unwrap();
    let since = OffsetDateTime::from_unix_timestamp(1001).unwrap();
    let recent = store
        .audit_export(&AuditFilter {
            since: Some(since),
            address: None,
        })
        .unwrap();
    assert_eq!(recent.len() as i64, event_count(&store) - 1);
    assert!(recent.iter().all(|e| e.id != 1));
}

/// The versions recorded in `schema_version`, oldest first.
fn applied_versions(store: &SqliteStore) -> Vec<i64> {
    let conn = store.conn();
    let mut stmt = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap();
    let versions = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<i64>, _>>()
        .unwrap();
    versions
}

#[test]
fn upgrading_from_version_3_through_4_to_5_chains_old_events_and_finds_old_correspondents() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO domains (id, name, added_at) VALUES (1, 'b.example', 100);
             INSERT INTO addresses (domain_id, local_part, added_at) VALUES (1, 'bob', 101);
             INSERT INTO quarantine (id, message_id, envelope_from, recipients, received_at,
                                     reason, detail, size, quarantined_at, body)
                 VALUES (1, '2@a.example', 'alice@a.example', 'bob@b.example', 150,
                         'untrusted', 'no anchor', 5, 151, X'6869210d0a');
             INSERT INTO audit_events (at, kind, message_id, message, detail)
                 VALUES (200, 'queued', '1@a.example', NULL, 'old one'),
                        (201, 'delivered', '1@a.example', NULL, 'old two');",
        )
        .unwrap();
        for (folder, at) in [("inbox", 300), ("sent", 301)] {
            conn.execute(
                "INSERT INTO mailbox (address, folder, home, message_id, size, received_at, body)
                 VALUES ('bob@b.example', ?1, ?1, '1@a.example', ?2, ?3, ?4)",
                (folder, MESSAGE.len() as i64, at, MESSAGE),
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(applied_versions(&store), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        store.quarantined_message(QuarantineId(1)).unwrap().bytes,
        b"hi!\r\n",
        "version 4 kept the bytes of an entry made before it"
    );
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { events: 2 }
    );
    store.audit(AuditKind::Sealed, None, None, "new").unwrap();
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { events: 3 }
    );
    let old = store.audit_export(&AuditFilter::default()).unwrap();
    assert_eq!(old[0].detail, "old one");
    assert_eq!(old[2].id, 3);

    let who = store.correspondents(&addr("bob@b.example")).unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].address.to_string(), "alice@a.example");
    assert_eq!(who[0].name.as_deref(), Some("Alice"));
    let v = crate::mailbox_view::MailboxView::new(
        OffsetDateTime::from_unix_timestamp(400).unwrap(),
        30,
    );
    let counts: Vec<(u64, u64)> = store
        .folder_counts(&addr("bob@b.example"), &v)
        .unwrap()
        .iter()
        .map(|c| (c.total, c.unread))
        .collect();
    assert_eq!(counts, [(1, 1), (1, 0), (0, 0)], "old Sent copies are read");
}

#[test]
fn upgrading_a_version_4_database_chains_its_events_and_keeps_quarantine_by_reference() {
    // As a hisp of schema version 4 leaves it: a queued inbound message
    // quarantined by reference to the queue's copy, one quarantined without
    // a queue entry, their audit events (no address, no hash), and mail.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 4).unwrap();
        conn.execute_batch(
            "INSERT INTO domains (id, name, added_at) VALUES (1, 'b.example', 100);
             INSERT INTO addresses (domain_id, local_part, added_at) VALUES (1, 'bob', 101);
             INSERT INTO audit_events (at, kind, message_id, message, detail)
                 VALUES (200, 'queued', '1@a.example', 1, 'inbound for bob@b.example'),
                        (201, 'quarantined', '1@a.example', 1,
                         'quarantine entry 1: untrusted: no anchor'),
                        (202, 'quarantined', '2@a.example', NULL,
                         'quarantine entry 2: malformed: no From');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (id, direction, message_id, envelope_from, received_at, size, body)
             VALUES (1, 'inbound', '1@a.example', 'alice@a.example', 200, ?1, ?2)",
            (MESSAGE.len() as i64, MESSAGE),
        )
        .unwrap();
        conn.execute(
            "INSERT INTO quarantine (id, message_id, envelope_from, recipients, received_at,
                                     reason, detail, size, quarantined_at, message)
             VALUES (1, '1@a.example', 'alice@a.example', 'bob@b.example', 200,
                     'untrusted', 'no anchor', ?1, 201, 1)",
            [MESSAGE.len() as i64],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO quarantine (id, message_id, envelope_from, recipients, received_at,
                                     reason, detail, size, quarantined_at, body)
                 VALUES (2, '2@a.example', 'alice@a.example', 'bob@b.example', 202,
                         'malformed', 'no From', 5, 202, X'6869210d0a');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO mailbox (address, folder, home, message_id, size, received_at, body)
             VALUES ('bob@b.example', 'inbox', 'inbox', '3@a.example', ?1, 300, ?2)",
            (MESSAGE.len() as i64, MESSAGE),
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(applied_versions(&store), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { events: 3 },
        "every event written before the upgrade is chained"
    );
    assert_eq!(
        store.quarantined_message(QuarantineId(1)).unwrap().bytes,
        MESSAGE
    );
    assert_eq!(
        store.quarantined_message(QuarantineId(2)).unwrap().bytes,
        b"hi!\r\n"
    );

    // New events chain on: a queued message quarantined by reference.
    let envelope = Envelope {
        from: Some(addr("alice@a.example")),
        recipients: vec![addr("bob@b.example")],
        received_at: t(5),
    };
    let record = store
        .enqueue(
            MessageDirection::Inbound,
            envelope.from.as_ref(),
            &envelope.recipients,
            MESSAGE,
            t(5),
        )
        .unwrap();
    store
        .quarantine_queued(record, QuarantineReason::Untrusted, "no anchor", &envelope)
        .unwrap();
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { events: 5 }
    );
    let kinds: Vec<AuditKind> = store
        .audit_export(&AuditFilter::default())
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            AuditKind::Queued,
            AuditKind::Quarantined,
            AuditKind::Quarantined,
            AuditKind::Queued,
            AuditKind::Quarantined
        ]
    );

    let who = store.correspondents(&addr("bob@b.example")).unwrap();
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].address.to_string(), "alice@a.example");
}
