//! Tracking's SQLite side: the query plans of the MDN timeout, notices and
//! status, and databases from before schema version 3. (What tracking does
//! is in the conformance suite, `conformance::tracking`.)

use rusqlite::Connection;

use super::*;
use crate::conformance::tracking::{addresses, kinds, message, mid, send, t, LEASE, MAIL};
use crate::sqlite::migrations::migrate_to;
use crate::sqlite::queue::{RECIPIENT_COLUMNS, RECIPIENT_FROM};
use crate::sqlite::tracking::{listing_sql, BY_MESSAGE_ID, OVERDUE, UNNOTIFIED};

fn plan(store: &SqliteStore, sql: &str, param: Option<i64>) -> String {
    let conn = store.conn();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt.query_map(rusqlite::params_from_iter(param), |r| r.get::<_, String>(3));
    rows.unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_timeout_notice_and_status_queries_read_indexes_not_every_message() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let overdue = plan(
        &store,
        &format!("SELECT {RECIPIENT_COLUMNS} FROM {RECIPIENT_FROM} WHERE {OVERDUE}"),
        Some(0),
    );
    assert!(overdue.contains("recipients_awaiting_mdn"), "{overdue}");
    assert!(!overdue.contains("SCAN m"), "{overdue}");
    assert!(!overdue.contains("TEMP B-TREE"), "{overdue}");
    let unnotified = plan(
        &store,
        &format!("SELECT {RECIPIENT_COLUMNS} FROM {RECIPIENT_FROM} WHERE {UNNOTIFIED}"),
        None,
    );
    assert!(unnotified.contains("recipients_unnotified"), "{unnotified}");
    assert!(!unnotified.contains("SCAN m"), "{unnotified}");
    // `hisp message status` looks the Message-ID up.
    let status = plan(&store, &listing_sql(BY_MESSAGE_ID), Some(0));
    assert!(status.contains("messages_message_id"), "{status}");
}

/// A database at schema version 2 with an outbound message relayed to bob
/// and failed for carol, and an inbound one, written with version 2's SQL.
fn version_2_database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(DB_FILE);
    let mut conn = Connection::open(&path).unwrap();
    migrate_to(&mut conn, &path, 2).unwrap();
    let body = message(1, "old results");
    conn.execute(
        "INSERT INTO messages (id, direction, message_id, envelope_from, received_at, size, body)
         VALUES (1, 'outbound', '1@a.example', 'alice@a.example', ?1, ?2, ?3)",
        (t(0).unix_timestamp(), body.len() as i64, &body),
    )
    .unwrap();
    conn.execute(
        "INSERT INTO messages (id, direction, message_id, envelope_from, received_at, size, body)
         VALUES (2, 'inbound', '2@b.example', 'bob@b.example', ?1, 3, x'414243')",
        [t(1).unix_timestamp()],
    )
    .unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO queue (message, state, next_attempt_at, updated_at)
             VALUES (1, 'done', {0}, {0}), (2, 'pending', {0}, {0});
         INSERT INTO recipients (message, address, state, queued_at, relayed_at)
             VALUES (1, 'bob@b.example', 'relayed', {0}, {1});
         INSERT INTO recipients (message, address, state, queued_at, failed_at, reason)
             VALUES (1, 'carol@b.example', 'failed', {0}, {1}, 'refused');
         INSERT INTO recipients (message, address, state, queued_at)
             VALUES (2, 'alice@a.example', 'queued', {0});
         INSERT INTO audit_events (at, kind, message_id, message, detail)
             VALUES ({0}, 'queued', '1@a.example', 1, 'old');",
        t(0).unix_timestamp(),
        t(5).unix_timestamp()
    ))
    .unwrap();
    path
}

#[test]
fn upgrading_from_version_2_reads_old_messages_as_mail_without_final_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    let path = version_2_database(tmp.path());
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);

    let old = store.tracked_message(&mid("1@a.example")).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].expect, MAIL);
    assert_eq!(old[0].subject, None, "not read back from old bodies");
    assert_eq!(old[0].envelope_from, Some(addr("alice@a.example")));
    assert_eq!(
        addresses(&old[0].recipients),
        ["bob@b.example", "carol@b.example"]
    );
    assert!(old[0]
        .recipients
        .iter()
        .all(|r| r.notified_at.is_none() && r.expect == MAIL));
    assert_eq!(old[0].recipients[0].at(TrackingState::Relayed), Some(t(5)));
    assert_eq!(addresses(&store.overdue(t(5)).unwrap()), ["bob@b.example"]);
    assert_eq!(
        addresses(&store.unnotified_failures().unwrap()),
        ["carol@b.example"]
    );
    // Inbound messages are not tracked messages, but still claimable.
    assert!(store
        .tracked_message(&mid("2@b.example"))
        .unwrap()
        .is_empty());
    let item = store.claim_due(t(10), LEASE, 10).unwrap().remove(0);
    assert_eq!(item.message, MessageRecordId(2));
    assert_eq!(item.expect, MAIL);
    assert_eq!(item.recipients[0].direction, MessageDirection::Inbound);
    // The old audit trail reads with the new kinds beside it.
    store
        .audit(AuditKind::TimedOut, None, Some(MessageRecordId(1)), "bob")
        .unwrap();
    assert_eq!(kinds(&store, 1), [AuditKind::Queued, AuditKind::TimedOut]);
    // And new messages go on after the old ones.
    let id = send(
        &store,
        3,
        Some("alice@a.example"),
        &["bob@b.example"],
        t(20),
        Expectation::Notification,
    );
    assert_eq!(id, MessageRecordId(3));
    assert_eq!(
        store.tracked_messages(TrackFilter::All).unwrap()[0].expect,
        Expectation::Notification
    );
}
