//! The copy and the check on a real SQLite file and a real PostgreSQL
//! server (`hisp-testpg`): an installation with every kind of row, filled
//! through the `Store` trait, copied and read back through the PostgreSQL
//! store; the check; the refusals; and the table list held to both schemas.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hisp_ca::Binding;
use hisp_testpg::TestDatabase;
use time::OffsetDateTime;

use super::tables::{Kind, LEFT_OUT_COLUMNS, LEFT_OUT_TABLES, TABLES};
use super::{check_sqlite_against_postgres, copy_sqlite_to_postgres, CopyError};
use crate::conformance::{addr, anchor_cert, ca_anchor, domain, issued};
use crate::{
    Answer, AuditCheck, AuditFilter, AuditKind, BundleFetch, BundleSource, DeliveryStatus,
    Direction, Envelope, Expectation, Folder, Grant, MailboxView, MessageDirection, MessageId,
    NewBundle, NewMailNotice, NotifySettings, PostgresStore, PostgresUrl, QuarantineReason,
    SqliteStore, Store, TrackFilter, TrackingState, UserName,
};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

const LEASE: Duration = Duration::from_secs(300);
const PORTAL_PASSWORD: &str = "correct horse battery staple";
const USER_PASSWORD: &str = "a submission password";

fn message(id: &str, from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nhello\r\n"
    )
    .into_bytes()
}

/// A message of `len` bytes whose body never repeats a 64 KiB piece, so a
/// piece moved twice or skipped shows.
fn large_message(len: usize) -> Vec<u8> {
    let mut bytes = message(
        "large@a.example",
        "Alice@a.example",
        "x@remote.example",
        "large",
    );
    let mut n: u32 = 0;
    while bytes.len() < len {
        n = n.wrapping_add(1);
        bytes.extend_from_slice(format!("{n:08x} line of the large message\r\n").as_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A test database's URL without TLS.
fn url(db: &TestDatabase) -> PostgresUrl {
    PostgresUrl::parse(&format!("{}?sslmode=disable", db.url())).unwrap()
}

fn postgres_store(db: &TestDatabase) -> PostgresStore {
    PostgresStore::open(&url(db), Some(db.password()), 4, "after-copy").unwrap()
}

/// An installation with every kind of row the store keeps, made through
/// the trait: the directory and trust material, accounts, the queue
/// (pending, done, failed, one leased), tracking with MDNs and a DSN,
/// mailboxes in every folder, read and unread, portal notices, a message
/// queued once, quarantine (a copy and a reference), audit events.
fn fill(store: &dyn Store) {
    let a = domain("a.example");
    store
        .add_domain(&a, &[issued(Binding::Domain("a.example".into()), true)])
        .unwrap();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    let alice = addr("Alice@a.example");
    let bob = addr("bob@a.example");
    store
        .add_address(
            &alice,
            &[issued(Binding::Address("alice@a.example".into()), true)],
        )
        .unwrap();
    store
        .add_address(
            &bob,
            &[issued(Binding::Address("bob@a.example".into()), false)],
        )
        .unwrap();
    store
        .add_anchors(&a, Direction::Both, &[ca_anchor()])
        .unwrap();
    store
        .add_anchors(&a, Direction::Incoming, &[anchor_cert("Other root", 7)])
        .unwrap();
    let bundle = store
        .add_bundle(&NewBundle {
            domain: a.clone(),
            source: BundleSource::parse("https://bundles.example/trust.p7b").unwrap(),
            direction: Direction::Incoming,
            refresh_secs: 3600,
        })
        .unwrap();
    store
        .record_bundle_fetch(
            bundle.id,
            &BundleFetch::Good {
                bytes: vec![0x30, 0x82, 0, 1, 2, 3],
                at: t(1),
            },
        )
        .unwrap();

    let relay = UserName::parse("portal-relay").unwrap();
    store.add_user(&relay, USER_PASSWORD).unwrap();
    store.grant(&relay, &Grant::Address(alice.clone())).unwrap();
    store.grant(&relay, &Grant::Domain(a.clone())).unwrap();
    store.set_request_final_delivery(&relay, false).unwrap();

    let email = crate::EmailAddress::parse("alice.home@mail.example").unwrap();
    store
        .add_portal_user(
            &alice,
            PORTAL_PASSWORD,
            &NotifySettings {
                notify: true,
                email: Some(email),
            },
        )
        .unwrap();
    store
        .add_portal_user(&bob, "bob's long password", &NotifySettings::default())
        .unwrap();
    store.disable_portal_user(&bob).unwrap();
    assert!(store.verify_portal_login(&bob, "wrong password").is_err());

    // Outbound, done: x relayed and processed, dispatched; y failed with a
    // status, its sender told by a DSN.
    let (x, y) = (addr("x@remote.example"), addr("y@remote.example"));
    store
        .enqueue_expecting(
            MessageDirection::Outbound,
            Some(&alice),
            &[x.clone(), y.clone()],
            &message(
                "out-1@a.example",
                "Alice@a.example",
                "x@remote.example",
                "results",
            ),
            t(10),
            Expectation::Mail {
                final_delivery: true,
            },
        )
        .unwrap();
    let item = store.claim_due(t(11), LEASE, 10).unwrap().remove(0);
    let out1 = MessageId::parse("out-1@a.example").unwrap();
    let rcpts = store.tracking(&out1).unwrap();
    let rx = rcpts.iter().find(|r| r.address == x).unwrap().id;
    let ry = rcpts.iter().find(|r| r.address == y).unwrap().id;
    store
        .track(rx, TrackingState::Relayed, t(12), None)
        .unwrap();
    store
        .track_steps(
            rx,
            &[TrackingState::Processed, TrackingState::Dispatched],
            t(13),
            None,
        )
        .unwrap();
    store
        .track_failed(
            ry,
            t(12),
            "remote.example said 550 5.1.1 no such user",
            DeliveryStatus::new(5, 1, 1),
        )
        .unwrap();
    store.complete(&item).unwrap();
    store
        .notify_sender(
            &alice,
            &message(
                "dsn-1@a.example",
                "postmaster@a.example",
                "Alice@a.example",
                "failed",
            ),
            &[ry],
            t(14),
        )
        .unwrap();

    // Outbound, large and still pending (never claimed).
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&alice),
            std::slice::from_ref(&x),
            &large_message(5 * 1024 * 1024 + 12_345),
            t(20),
        )
        .unwrap();

    // Inbound for alice, filed with an MDN answer and a portal notice.
    store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("doc@remote.example")),
            std::slice::from_ref(&alice),
            b"From: doc@remote.example\r\nTo: alice@a.example\r\nMessage-ID: <outer-2@remote.example>\r\n\r\n(ciphertext)\r\n",
            t(30),
        )
        .unwrap();
    let inbound = store
        .tracking(&MessageId::parse("outer-2@remote.example").unwrap())
        .unwrap()[0]
        .id;
    let compose = |to: &crate::EmailAddress| {
        format!("From: no-reply@a.example\r\nTo: {to}\r\nSubject: New secure message\r\n\r\nsee the portal\r\n")
            .into_bytes()
    };
    store
        .file_inbound_notifying(
            inbound,
            &alice,
            &message(
                "2@remote.example",
                "Doc <doc@remote.example>",
                "alice@a.example",
                "answer",
            ),
            t(31),
            &[Answer {
                from: alice.clone(),
                to: addr("doc@remote.example"),
                bytes: message(
                    "mdn-1@a.example",
                    "alice@a.example",
                    "doc@remote.example",
                    "processed",
                ),
                kind: "processed".into(),
            }],
            &[],
            Some(&NewMailNotice {
                from: addr("no-reply@a.example"),
                compose: &compose,
            }),
        )
        .unwrap();

    // One leased: claimed and not finished (the MDN or the notice).
    let leased = store.claim_due(t(32), LEASE, 1).unwrap();
    assert_eq!(leased.len(), 1);

    // Queued once under a mark.
    store
        .enqueue_once(
            "welcome",
            MessageDirection::Outbound,
            Some(&bob),
            std::slice::from_ref(&alice),
            &message(
                "welcome@a.example",
                "bob@a.example",
                "alice@a.example",
                "welcome",
            ),
            t(40),
            Expectation::default(),
        )
        .unwrap();

    // Mailboxes: a Sent copy, inbox mail read, unread and disregarded.
    let view = MailboxView::new(t(100), 30);
    store
        .deliver_to_mailbox(
            &alice,
            &message(
                "out-1@a.example",
                "Alice@a.example",
                "x@remote.example",
                "results",
            ),
            Folder::Sent,
            t(10),
        )
        .unwrap();
    let read = store
        .deliver_to_mailbox(
            &alice,
            &message(
                "3@remote.example",
                "doc@remote.example",
                "alice@a.example",
                "read me",
            ),
            Folder::Inbox,
            t(50),
        )
        .unwrap();
    store.open_message(&alice, read, &view).unwrap();
    let gone = store
        .deliver_to_mailbox(
            &alice,
            &message(
                "4@remote.example",
                "spam@remote.example",
                "alice@a.example",
                "no",
            ),
            Folder::Inbox,
            t(51),
        )
        .unwrap();
    store.disregard(&alice, gone, &view).unwrap();
    assert!(store.refuse_delete(&alice, gone, &view).is_ok());

    // Quarantine: a copy of its own and a reference to a queued message.
    let envelope = Envelope {
        from: Some(addr("mallory@remote.example")),
        recipients: vec![alice.clone()],
        received_at: t(60),
    };
    store
        .quarantine(
            b"From: mallory@remote.example\r\n\r\nbad\r\n",
            QuarantineReason::Untrusted,
            "untrusted-signer: no path to an anchor",
            &envelope,
        )
        .unwrap();
    let queued = store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("mallory@remote.example")),
            std::slice::from_ref(&alice),
            b"From: mallory@remote.example\r\nMessage-ID: <q@remote.example>\r\n\r\nbad\r\n",
            t(61),
        )
        .unwrap();
    store
        .quarantine_queued(
            queued,
            QuarantineReason::Tampered,
            "digest-mismatch",
            &envelope,
        )
        .unwrap();
    store
        .audit(
            AuditKind::Opened,
            None,
            Some(queued),
            "a hand-written event",
        )
        .unwrap();
}

/// Every listing the trait gives, as text, for comparing two stores.
fn listings(store: &dyn Store) -> BTreeMap<&'static str, String> {
    let alice = addr("alice@a.example");
    let bob = addr("bob@a.example");
    let view = MailboxView::new(t(100), 30);
    let mut m = BTreeMap::new();
    m.insert("domains", format!("{:?}", store.domains().unwrap()));
    m.insert("addresses", format!("{:?}", store.addresses(None).unwrap()));
    m.insert(
        "certificates",
        format!("{:?}", store.certificates(None).unwrap()),
    );
    m.insert("anchors", format!("{:?}", store.anchors(None).unwrap()));
    m.insert("bundles", format!("{:?}", store.bundles(None).unwrap()));
    m.insert("users", format!("{:?}", store.users().unwrap()));
    m.insert(
        "portal users",
        format!("{:?}", store.portal_users().unwrap()),
    );
    m.insert("queue", format!("{:?}", store.queue(None).unwrap()));
    m.insert(
        "tracked",
        format!("{:?}", store.tracked_messages(TrackFilter::All).unwrap()),
    );
    m.insert(
        "tracking",
        format!(
            "{:?}",
            store
                .tracking(&MessageId::parse("out-1@a.example").unwrap())
                .unwrap()
        ),
    );
    m.insert(
        "unnotified",
        format!("{:?}", store.unnotified_failures().unwrap()),
    );
    m.insert("overdue", format!("{:?}", store.overdue(t(1000)).unwrap()));
    for (name, folder) in [
        ("inbox", Folder::Inbox),
        ("sent", Folder::Sent),
        ("disregarded", Folder::Disregarded),
    ] {
        let entries = store.mailbox(&alice, folder).unwrap();
        let bodies: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| store.read_message(e.id).unwrap().bytes)
            .collect();
        m.insert(name, format!("{entries:?} {bodies:?}"));
    }
    m.insert(
        "folder counts",
        format!("{:?}", store.folder_counts(&alice, &view).unwrap()),
    );
    m.insert(
        "correspondents",
        format!("{:?}", store.correspondents(&alice).unwrap()),
    );
    m.insert(
        "bob's inbox",
        format!("{:?}", store.mailbox(&bob, Folder::Inbox).unwrap()),
    );
    let quarantined = store.quarantined().unwrap();
    let held: Vec<_> = quarantined
        .iter()
        .map(|q| format!("{:?}", store.quarantined_message(q.id).unwrap()))
        .collect();
    m.insert("quarantine", format!("{quarantined:?} {held:?}"));
    m.insert(
        "audit",
        format!("{:?}", store.audit_export(&AuditFilter::default()).unwrap()),
    );
    m.insert(
        "chain",
        format!("{:?}", store.verify_audit_chain().unwrap()),
    );
    m.insert(
        "welcome",
        format!("{:?}", store.queued_once("welcome").unwrap()),
    );
    m.insert("next due", format!("{:?}", store.next_due().unwrap()));
    m
}

fn filled_sqlite() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hisp.db");
    fill(&SqliteStore::open(&file).unwrap());
    (dir, file)
}

/// Rows of every copied table of the destination, read beneath the trait.
fn destination_rows(db: &TestDatabase) -> BTreeMap<&'static str, i64> {
    let mut admin = db.admin();
    TABLES
        .iter()
        .map(|t| {
            let n: i64 = admin
                .query_one(&format!("SELECT count(*) FROM {}", t.name), &[])
                .unwrap()
                .get(0);
            (t.name, n)
        })
        .collect()
}

#[test]
fn a_copied_installation_reads_back_the_same_through_the_postgres_store_and_new_ids_are_fresh() {
    let (dir, file) = filled_sqlite();
    let before = listings(&SqliteStore::open(&file).unwrap());
    let db = TestDatabase::new();

    // The data directory names the file inside it.
    let report = copy_sqlite_to_postgres(dir.path(), &url(&db), Some(db.password())).unwrap();
    assert_eq!(report.source, file);
    let copied: BTreeMap<_, _> = report.tables.iter().map(|t| (t.table, t.rows)).collect();
    assert_eq!(copied.len(), TABLES.len());
    // Every table of the store has rows in this installation.
    for (table, rows) in &copied {
        assert!(*rows > 0, "{table} has no rows in the test installation");
    }
    let in_destination = destination_rows(&db);
    for (table, rows) in &copied {
        assert_eq!(
            in_destination[table],
            i64::try_from(*rows).unwrap(),
            "{table}"
        );
    }
    assert_eq!(report.rows(), copied.values().sum::<u64>());

    let pg = postgres_store(&db);
    let after = listings(&pg);
    for (what, text) in &before {
        assert_eq!(&after[what], text, "{what} differs after the copy");
    }
    assert!(matches!(
        pg.verify_audit_chain().unwrap(),
        AuditCheck::Intact { events } if events > 10
    ));
    // The large message's bytes came across whole.
    let large = db
        .admin()
        .query_one(
            "SELECT body FROM messages WHERE message_id = 'large@a.example'",
            &[],
        )
        .unwrap()
        .get::<_, Vec<u8>>(0);
    assert_eq!(large, large_message(5 * 1024 * 1024 + 12_345));
    // Passwords still log in; the key columns were filled.
    pg.verify_portal_login(&addr("ALICE@a.example"), PORTAL_PASSWORD)
        .unwrap();
    pg.verify_password(&UserName::parse("portal-relay").unwrap(), USER_PASSWORD)
        .unwrap();
    assert_eq!(
        pg.mailbox(&addr("ALICE@A.EXAMPLE"), Folder::Inbox)
            .unwrap()
            .len(),
        pg.mailbox(&addr("alice@a.example"), Folder::Inbox)
            .unwrap()
            .len()
    );

    // New rows get ids past the copied ones, and the chain goes on.
    let max = |table: &str| -> i64 {
        db.admin()
            .query_one(&format!("SELECT max(id) FROM {table}"), &[])
            .unwrap()
            .get(0)
    };
    let (messages, domains, mailbox, events) = (
        max("messages"),
        max("domains"),
        max("mailbox"),
        max("audit_events"),
    );
    let id = pg
        .enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("z@remote.example")],
            &message(
                "new@a.example",
                "alice@a.example",
                "z@remote.example",
                "new",
            ),
            t(200),
        )
        .unwrap();
    assert_eq!(id.0, messages + 1);
    pg.add_domain(&domain("c.example"), &[]).unwrap();
    assert_eq!(max("domains"), domains + 1);
    let entry = pg
        .deliver_to_mailbox(
            &addr("bob@a.example"),
            &message(
                "5@remote.example",
                "doc@remote.example",
                "bob@a.example",
                "hi",
            ),
            Folder::Inbox,
            t(201),
        )
        .unwrap();
    assert_eq!(entry.0, mailbox + 1);
    assert!(max("audit_events") > events);
    assert!(matches!(
        pg.verify_audit_chain().unwrap(),
        AuditCheck::Intact { .. }
    ));
}

#[test]
fn check_says_equal_after_a_copy_and_names_the_table_of_a_changed_row() {
    let (_dir, file) = filled_sqlite();
    let db = TestDatabase::new();
    copy_sqlite_to_postgres(&file, &url(&db), Some(db.password())).unwrap();

    let report = check_sqlite_against_postgres(&file, &url(&db), Some(db.password())).unwrap();
    assert!(report.matches(), "{report:?}");
    assert_eq!(report.tables.len(), TABLES.len());
    assert!(report
        .tables
        .iter()
        .all(|t| t.source_rows == t.destination_rows));
    assert!(matches!(report.audit_chain, AuditCheck::Intact { .. }));

    // One flag of one mailbox entry changed in the destination.
    db.admin()
        .execute(
            "UPDATE mailbox SET unread = NOT unread WHERE id = (SELECT min(id) FROM mailbox)",
            &[],
        )
        .unwrap();
    let report = check_sqlite_against_postgres(&file, &url(&db), Some(db.password())).unwrap();
    assert!(!report.matches());
    assert_eq!(report.differing(), ["mailbox"]);
    let mailbox = report.tables.iter().find(|t| t.table == "mailbox").unwrap();
    assert_eq!(mailbox.source_rows, mailbox.destination_rows);
    assert_ne!(mailbox.source_hash, mailbox.destination_hash);

    // A row more in the destination shows in its count.
    db.admin()
        .execute(
            "INSERT INTO domains (name, added_at) VALUES ('z.example', 0)",
            &[],
        )
        .unwrap();
    let report = check_sqlite_against_postgres(&file, &url(&db), Some(db.password())).unwrap();
    assert_eq!(report.differing(), ["domains", "mailbox"]);
    let domains = &report.tables[0];
    assert_eq!(domains.destination_rows, domains.source_rows + 1);
}

#[test]
fn check_fails_when_the_destinations_audit_chain_is_broken_even_with_every_table_equal_in_count() {
    let (_dir, file) = filled_sqlite();
    let db = TestDatabase::new();
    copy_sqlite_to_postgres(&file, &url(&db), Some(db.password())).unwrap();
    // The append-only triggers are the owner's to lift; a superuser
    // rewrites one event's detail beneath them.
    db.admin()
        .batch_execute(
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
             UPDATE audit_events SET detail = 'rewritten' WHERE id = 3;
             ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;",
        )
        .unwrap();
    let report = check_sqlite_against_postgres(&file, &url(&db), Some(db.password())).unwrap();
    assert_eq!(report.differing(), ["audit_events"]);
    assert!(
        matches!(report.audit_chain, AuditCheck::Broken { id: 3, .. }),
        "{:?}",
        report.audit_chain
    );
    assert!(!report.matches());
}

#[test]
fn a_copy_into_a_database_with_rows_is_refused_naming_the_table_and_changes_nothing() {
    let (_dir, file) = filled_sqlite();
    let db = TestDatabase::new();
    {
        let pg = postgres_store(&db);
        pg.add_domain(&domain("used.example"), &[]).unwrap();
    }
    let before = destination_rows(&db);
    let e = copy_sqlite_to_postgres(&file, &url(&db), Some(db.password())).unwrap_err();
    assert!(
        matches!(
            e,
            CopyError::NotEmpty {
                table: "domains",
                rows: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("is not empty: table domains has 1 rows"),
        "{e}"
    );
    assert_eq!(destination_rows(&db), before);

    // A table further down the list is found too.
    let db = TestDatabase::new();
    postgres_store(&db)
        .audit(AuditKind::Opened, None, None, "already used")
        .unwrap();
    let e = copy_sqlite_to_postgres(&file, &url(&db), Some(db.password())).unwrap_err();
    assert!(
        matches!(
            e,
            CopyError::NotEmpty {
                table: "audit_events",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_copy_that_fails_half_way_leaves_the_destination_empty() {
    let (_dir, file) = filled_sqlite();
    // A Subject PostgreSQL's text cannot hold, in a table copied after
    // the messages, the queue and the recipients.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute(
            "UPDATE mailbox SET subject = 'bad' || char(0) || 'subject' \
             WHERE id = (SELECT max(id) FROM mailbox)",
            [],
        )
        .unwrap();
    let db = TestDatabase::new();
    let e = copy_sqlite_to_postgres(&file, &url(&db), Some(db.password())).unwrap_err();
    match &e {
        CopyError::Value {
            table, column, key, ..
        } => {
            assert_eq!((*table, *column), ("mailbox", "subject"));
            assert!(key.starts_with("id "), "{key}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("NUL"), "{e}");
    assert!(destination_rows(&db).values().all(|n| *n == 0));
    // The schema is there (migrated before the copy's transaction), and a
    // good copy afterwards goes through.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute(
            "UPDATE mailbox SET subject = 'fixed' WHERE id = (SELECT max(id) FROM mailbox)",
            [],
        )
        .unwrap();
    copy_sqlite_to_postgres(&file, &url(&db), Some(db.password())).unwrap();
    assert!(
        check_sqlite_against_postgres(&file, &url(&db), Some(db.password()))
            .unwrap()
            .matches()
    );
}

#[test]
fn a_missing_source_is_refused_and_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new();
    let missing = dir.path().join("nothing.db");
    let e = copy_sqlite_to_postgres(&missing, &url(&db), Some(db.password())).unwrap_err();
    assert!(
        matches!(e, CopyError::NoSource { ref path } if path == &missing),
        "{e:?}"
    );
    assert!(!missing.exists());
    // A directory without hisp.db.
    let e = check_sqlite_against_postgres(dir.path(), &url(&db), Some(db.password())).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no SQLite store at {}: the file does not exist",
            dir.path().join("hisp.db").display()
        )
    );
}

/// The columns of every table of a freshly migrated SQLite store, with
/// their declared types.
fn sqlite_schema(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|table| {
            let columns = conn
                .prepare(&format!("PRAGMA table_info({table})"))
                .unwrap()
                .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (table, columns)
        })
        .collect()
}

/// The columns of every table of a migrated PostgreSQL database: type,
/// identity, generated.
fn postgres_schema(db: &TestDatabase) -> BTreeMap<String, BTreeMap<String, (String, bool, bool)>> {
    let mut out: BTreeMap<String, BTreeMap<String, (String, bool, bool)>> = BTreeMap::new();
    for row in db
        .admin()
        .query(
            "SELECT table_name::text, column_name::text, data_type::text,
                    is_identity = 'YES', is_generated = 'ALWAYS'
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        out.entry(row.get(0))
            .or_default()
            .insert(row.get(1), (row.get(2), row.get(3), row.get(4)));
    }
    out
}

#[test]
fn every_table_and_column_of_both_schemas_is_listed_or_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hisp.db");
    drop(SqliteStore::open(&file).unwrap());
    let sqlite = sqlite_schema(&file);
    let db = TestDatabase::new();
    crate::PostgresPool::open(&url(&db), Some(db.password()), 1)
        .unwrap()
        .migrate()
        .unwrap();
    let postgres = postgres_schema(&db);
    let left_out_tables: BTreeSet<&str> = LEFT_OUT_TABLES.iter().map(|(t, _)| *t).collect();
    let listed: BTreeSet<&str> = TABLES.iter().map(|t| t.name).collect();

    // Every table of either schema is copied or left out with a reason.
    for (backend, tables) in [
        ("sqlite", sqlite.keys().cloned().collect::<Vec<_>>()),
        ("postgres", postgres.keys().cloned().collect()),
    ] {
        for table in tables {
            assert!(
                listed.contains(table.as_str()) || left_out_tables.contains(table.as_str()),
                "the {backend} table {table} is neither in the copy's list (copy/tables.rs \
                 TABLES) nor in LEFT_OUT_TABLES"
            );
        }
    }

    for table in TABLES {
        let s = sqlite
            .get(table.name)
            .unwrap_or_else(|| panic!("no SQLite table {}", table.name));
        let p = postgres
            .get(table.name)
            .unwrap_or_else(|| panic!("no PostgreSQL table {}", table.name));
        let columns: BTreeSet<&str> = table.columns.iter().map(|c| c.name).collect();
        assert_eq!(
            columns.len(),
            table.columns.len(),
            "{} lists a column twice",
            table.name
        );
        assert!(
            columns.contains(table.key),
            "{}: the key is not a column",
            table.name
        );
        // Every column of either backend is copied or left out.
        for (backend, names) in [
            ("sqlite", s.keys().cloned().collect::<Vec<_>>()),
            ("postgres", p.keys().cloned().collect()),
        ] {
            for name in names {
                let left_out = LEFT_OUT_COLUMNS
                    .iter()
                    .any(|(b, t, c, _)| *b == backend && *t == table.name && *c == name);
                assert!(
                    columns.contains(name.as_str()) || left_out,
                    "the {backend} column {}.{name} is neither copied (copy/tables.rs TABLES) \
                     nor in LEFT_OUT_COLUMNS",
                    table.name
                );
                assert!(
                    !(columns.contains(name.as_str()) && left_out),
                    "{}.{name} is both copied and left out",
                    table.name
                );
            }
        }
        // Every listed column exists in both with a type of its kind.
        for column in table.columns {
            let declared = s
                .get(column.name)
                .unwrap_or_else(|| panic!("no SQLite column {}.{}", table.name, column.name));
            let (pg_type, identity, generated) = p
                .get(column.name)
                .unwrap_or_else(|| panic!("no PostgreSQL column {}.{}", table.name, column.name));
            let (want_sqlite, want_pg) = match column.kind {
                Kind::Int => ("INTEGER", "bigint"),
                Kind::Bool => ("INTEGER", "boolean"),
                Kind::Text => ("TEXT", "text"),
                Kind::Bytes | Kind::Body => ("BLOB", "bytea"),
            };
            assert_eq!(
                declared, want_sqlite,
                "SQLite {}.{}",
                table.name, column.name
            );
            assert_eq!(
                pg_type, want_pg,
                "PostgreSQL {}.{}",
                table.name, column.name
            );
            assert!(!generated, "{}.{} is generated", table.name, column.name);
            assert_eq!(
                *identity,
                table.identity && column.name == "id",
                "identity of {}.{}",
                table.name,
                column.name
            );
        }
    }
    // No stale entry among those left out.
    for (backend, table, column, _) in LEFT_OUT_COLUMNS {
        let exists = match *backend {
            "sqlite" => sqlite.get(*table).is_some_and(|t| t.contains_key(*column)),
            _ => postgres
                .get(*table)
                .is_some_and(|t| t.contains_key(*column)),
        };
        assert!(
            exists,
            "LEFT_OUT_COLUMNS names {backend} {table}.{column}, which is not there"
        );
    }
}

#[test]
fn tables_are_listed_after_the_tables_they_refer_to() {
    let db = TestDatabase::new();
    crate::PostgresPool::open(&url(&db), Some(db.password()), 1)
        .unwrap()
        .migrate()
        .unwrap();
    let position = |name: &str| TABLES.iter().position(|t| t.name == name);
    let references = db
        .admin()
        .query(
            "SELECT conrelid::regclass::text, confrelid::regclass::text
             FROM pg_constraint WHERE contype = 'f'",
            &[],
        )
        .unwrap();
    assert!(!references.is_empty());
    for row in references {
        let (child, parent): (String, String) = (row.get(0), row.get(1));
        assert!(
            position(&parent) < position(&child),
            "{child} refers to {parent} but is listed before it"
        );
    }
}
