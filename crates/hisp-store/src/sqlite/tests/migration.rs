//! Upgrading a database left by an older hisp.

use rusqlite::Connection;

use super::*;
use crate::sqlite::migrations::migrate_to;

/// A database at schema version 1 (before users, queue and mailboxes) with a
/// domain, an address, an anchor and a bundle, written with version 1's SQL.
fn version_1_database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(DB_FILE);
    let mut conn = Connection::open(&path).unwrap();
    migrate_to(&mut conn, &path, 1).unwrap();
    let anchor = ca_anchor();
    let info = anchor.info();
    conn.execute_batch(
        "INSERT INTO domains (id, name, added_at) VALUES (1, 'a.example', 100);
         INSERT INTO addresses (domain_id, local_part, added_at) VALUES (1, 'Alice', 101);
         INSERT INTO bundles (domain_id, kind, source, direction, refresh_secs, added_at)
             VALUES (1, 'url', 'https://bundles.example/b.p7b', 'in', 3600, 102);",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO anchors (domain_id, direction, der, subject, issuer, serial,
                              fingerprint, not_before, not_after, added_at)
         VALUES (1, 'both', ?1, ?2, ?3, ?4, ?5, ?6, ?7, 103)",
        (
            &anchor.der,
            &info.subject,
            &info.issuer,
            info.serial.as_str(),
            info.fingerprint.as_bytes(),
            info.not_before.unix_timestamp(),
            info.not_after.unix_timestamp(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn upgrading_from_version_1_keeps_domains_addresses_anchors_and_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let path = version_1_database(tmp.path());
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let domains = store.domains().unwrap();
    assert_eq!(domains.len(), 1);
    assert_eq!(domains[0].domain.as_str(), "a.example");
    assert_eq!(domains[0].added_at.unix_timestamp(), 100);
    let addresses = store.addresses(None).unwrap();
    assert_eq!(addresses[0].address.to_string(), "Alice@a.example");
    let anchors = store.anchors(None).unwrap();
    assert_eq!(anchors.len(), 1);
    assert_eq!(anchors[0].info.fingerprint, ca_anchor().info().fingerprint);
    assert_eq!(store.bundles(None).unwrap().len(), 1);

    // And the new tables work against the old rows.
    let name = UserName::parse("portal").unwrap();
    store
        .add_user(&name, "correct horse battery staple")
        .unwrap();
    let account = store
        .grant(&name, &Grant::parse("alice@a.example").unwrap())
        .unwrap();
    assert!(account.may_send_as(&addr("alice@a.example")));
}

#[test]
fn upgrading_from_version_3_keeps_quarantined_messages_with_their_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 3).unwrap();
        conn.execute(
            "INSERT INTO quarantine (id, message_id, envelope_from, recipients, received_at,
                                     reason, detail, size, quarantined_at, body)
             VALUES (7, '1@a.example', 'alice@a.example', 'bob@b.example', 5,
                     'untrusted', 'no anchor', 5, 6, X'6869210d0a')",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let entry = store.quarantined_message(QuarantineId(7)).unwrap();
    assert_eq!(entry.bytes, b"hi!\r\n");
    assert_eq!(entry.record.detail, "no anchor");
    assert_eq!(
        entry.record.envelope.recipients,
        vec![addr("bob@b.example")]
    );
}
