//! What several instances on one PostgreSQL database add to the conformance
//! suite (issue 14): leases owned by an instance, and the serialisation
//! each operation asks for when writers from many connections run at once
//! (the audit chain, filing a copy once, filing one recipient, queueing
//! under a mark), and which other instances' changes wake this one.

use std::sync::Barrier;
use std::time::Duration;

use time::OffsetDateTime;

use super::conformance::PostgresDb;
use crate::conformance::{addr, domain, Backend};
use crate::{
    AuditCheck, AuditKind, Expectation, Filing, Folder, MessageDirection, MessageId, Store,
    StoreError, TrackingState,
};

const LEASE: Duration = Duration::from_secs(60);

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: alice@a.example\r\nTo: bob@b.example\r\nMessage-ID: <{n}@a.example>\r\n\
         Subject: test {n}\r\n\r\nhello\r\n"
    )
    .into_bytes()
}

fn send(store: &dyn Store, n: u32) -> crate::MessageRecordId {
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("x@c.example")],
            &message(n),
            t(0),
        )
        .unwrap()
}

fn with_bob(store: &dyn Store) {
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("bob@b.example"), &[]).unwrap();
}

/// Runs `f` in `n` threads at once, each with a store of its own (another
/// instance), started together; returns their answers.
fn at_once<T: Send>(
    db: &PostgresDb,
    n: usize,
    f: impl Fn(&dyn Store, usize) -> T + Sync,
) -> Vec<T> {
    let stores: Vec<_> = (0..n).map(|_| db.open()).collect();
    let start = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let (f, start) = (&f, &start);
                s.spawn(move || {
                    start.wait();
                    f(store, i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn an_instance_releases_only_its_own_leases_and_a_live_instances_stay_issue_14() {
    let db = PostgresDb::fresh();
    let (a, b) = (db.open_as("mx1"), db.open_as("mx2"));
    send(&a, 1);
    send(&a, 2);
    let held_by_a = a.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    let held_by_b = b.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    assert_eq!(a.release_leases().unwrap(), 1, "only mx1's own lease");
    let again = b.claim_due(t(1), LEASE, 10).unwrap();
    assert_eq!(again.len(), 1, "mx1's entry is claimable, mx2's is not");
    assert_eq!(again[0].id, held_by_a.id);
    b.complete(&held_by_b).unwrap();
}

#[test]
fn an_instance_started_again_under_its_name_releases_what_its_last_run_held_issue_14() {
    let db = PostgresDb::fresh();
    let first = db.open_as("mx1");
    send(&first, 1);
    assert_eq!(first.claim_due(t(0), LEASE, 1).unwrap().len(), 1);
    drop(first); // dies holding the lease
    let other = db.open_as("mx2");
    assert!(other.claim_due(t(1), LEASE, 1).unwrap().is_empty());
    assert_eq!(other.release_leases().unwrap(), 0);
    let again = db.open_as("mx1");
    assert_eq!(again.release_leases().unwrap(), 1);
    assert_eq!(other.claim_due(t(1), LEASE, 1).unwrap().len(), 1);
}

#[test]
fn instances_appending_to_the_audit_log_at_once_keep_one_chain_issue_11() {
    let db = PostgresDb::fresh();
    let written = at_once(&db, 4, |store, i| {
        for n in 0..25 {
            let id = MessageId::parse(&format!("{i}.{n}@a.example")).unwrap();
            store
                .audit(AuditKind::Sealed, Some(&id), None, "sealed")
                .unwrap();
        }
    });
    assert_eq!(written.len(), 4);
    assert_eq!(
        db.open().verify_audit_chain().unwrap(),
        AuditCheck::Intact { events: 100 }
    );
}

#[test]
fn a_copy_delivered_once_from_several_instances_at_once_is_filed_once_issue_14() {
    let db = PostgresDb::fresh();
    with_bob(&db.open());
    let filed = at_once(&db, 4, |store, _| {
        store
            .deliver_to_mailbox_once(&addr("Bob@b.example"), &message(1), Folder::Inbox, t(0))
            .unwrap()
    });
    assert_eq!(filed.iter().filter(|f| f.is_some()).count(), 1, "{filed:?}");
    let inbox = db
        .open()
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1);
}

#[test]
fn one_recipient_filed_by_two_instances_at_once_is_filed_once_issue_14() {
    let db = PostgresDb::fresh();
    let store = db.open();
    with_bob(&store);
    store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            &message(1),
            t(0),
        )
        .unwrap();
    let recipient = store
        .tracking(&MessageId::parse("1@a.example").unwrap())
        .unwrap()[0]
        .id;
    let filings = at_once(&db, 2, |s, _| {
        s.file_inbound(
            recipient,
            &addr("bob@b.example"),
            &message(1),
            t(1),
            &[],
            &[],
        )
        .unwrap()
    });
    let filed = filings
        .iter()
        .filter(|f| matches!(f, Filing::Filed(_)))
        .count();
    let done = filings
        .iter()
        .filter(|f| matches!(f, Filing::AlreadyDone(TrackingState::Delivered)))
        .count();
    assert_eq!((filed, done), (1, 1), "{filings:?}");
    let inbox = store
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1);
}

#[test]
fn a_mark_queued_from_several_instances_at_once_is_queued_once_issue_14() {
    let db = PostgresDb::fresh();
    let queued = at_once(&db, 4, |store, _| {
        store.enqueue_once(
            "demo-welcome",
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("x@c.example")],
            &message(1),
            t(0),
            Expectation::default(),
        )
    });
    let queued: Vec<_> = queued.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        queued.iter().filter(|q| q.is_some()).count(),
        1,
        "{queued:?}"
    );
    assert_eq!(db.open().queue(None).unwrap().len(), 1);
}

#[test]
fn work_made_due_by_another_instance_wakes_this_one_and_its_claims_and_rollbacks_do_not() {
    let db = PostgresDb::fresh();
    let (server, other) = (db.open(), db.open());
    let mut seen = server.outside_changes().unwrap();
    let mut moved = |what: &str, expected: bool| {
        let now = server.outside_changes().unwrap();
        assert_eq!(now != seen, expected, "{what}");
        seen = now;
    };
    send(&other, 1);
    moved("another instance queued", true);
    let item = other.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    moved("another instance claimed", false);
    other.retry_later(&item, t(300), "451 4.4.1 later").unwrap();
    moved("another instance deferred", false);
    let refused = other.enqueue(
        MessageDirection::Outbound,
        Some(&addr("alice@a.example")),
        &[addr("x@c.example"), addr("X@c.example")],
        &message(2),
        t(0),
    );
    assert!(
        matches!(refused, Err(StoreError::Duplicate { .. })),
        "{refused:?}"
    );
    moved("another instance's enqueue rolled back", false);
    other.retry_now(crate::RetrySelection::All, t(1)).unwrap();
    moved("another instance made an entry due earlier", true);
    let item = other.claim_due(t(1), LEASE, 1).unwrap().remove(0);
    moved("another instance claimed", false);
    other.release(&item).unwrap();
    moved("another instance gave an entry back", true);
    send(&server, 3);
    moved("this instance queued", false);
}

#[test]
fn a_second_live_process_under_a_held_instance_name_is_refused_until_the_first_ends_issue_14() {
    let db = PostgresDb::fresh();
    let first = db.open_as("mx1");
    let held = first.hold_instance().unwrap();
    assert_eq!(held.instance(), "mx1");
    let twin = db.open_as("mx1");
    let e = twin.hold_instance().unwrap_err();
    assert!(
        matches!(&e, StoreError::InstanceRunning { instance } if instance == "mx1"),
        "{e}"
    );
    assert!(e.to_string().contains("[store] instance"), "{e}");
    // Another name is free, and the name is free again once its holder ends.
    let other = db.open_as("mx2").hold_instance().unwrap();
    drop(held);
    let again = twin.hold_instance().unwrap();
    assert_eq!(again.instance(), "mx1");
    drop(other);
}

/// What the server says `synchronous_commit` is inside a transaction of
/// `store`'s, run by `write` (the promise) or `write_relaxed` (a step).
fn synchronous_commit_in(store: &super::PostgresStore, relaxed: bool) -> String {
    let show = |tx: &mut super::tx::PgTx<'_>| {
        let row = tx.tx.query_one("SHOW synchronous_commit", &[]).unwrap();
        Ok(row.get::<_, String>(0))
    };
    if relaxed {
        store.write_relaxed(show).unwrap()
    } else {
        store.write(show).unwrap()
    }
}

#[test]
fn queue_steps_commit_without_waiting_for_the_flush_and_a_promise_waits_for_it() {
    let db = PostgresDb::fresh();
    // The test server commits without flushing by default (its speed):
    // this database is made durable as a production one is.
    let mut peek = db.peek();
    let name: String = peek
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    peek.batch_execute(&format!(
        "ALTER DATABASE {name} SET synchronous_commit = on"
    ))
    .unwrap();
    let store = db.open_as("mx1");
    assert_eq!(synchronous_commit_in(&store, true), "off");
    // SET LOCAL ends with its transaction: a connection back in the pool
    // commits durably again.
    assert_eq!(synchronous_commit_in(&store, false), "on");
    assert_eq!(synchronous_commit_in(&store, true), "off");
    assert_eq!(synchronous_commit_in(&store, false), "on");
    // The steps still commit: a claim made in a relaxed transaction holds.
    send(&store, 1);
    let claimed = store.claim_due(t(0), LEASE, 1).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(db
        .open_as("mx2")
        .claim_due(t(1), LEASE, 1)
        .unwrap()
        .is_empty());
}

/// Ends the session holding this database's advisory instance lock, as a
/// server restart or a dropped connection would.
fn cut_the_instance_connection(db: &PostgresDb) {
    let ended: bool = db
        .peek()
        .query_one(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ended);
}

#[test]
fn a_lost_instance_connection_is_noticed_and_the_name_taken_again_unless_another_took_it_issue_14()
{
    use super::Kept;
    let db = PostgresDb::fresh();
    let store = db.open_as("mx1");
    let mut held = store.hold_instance().unwrap();
    assert_eq!(held.keep().unwrap(), Kept::Held);
    cut_the_instance_connection(&db);
    // Until it is kept again the name is free: a twin could take it.
    assert_eq!(held.keep().unwrap(), Kept::TakenAgain);
    assert!(matches!(
        db.open_as("mx1").hold_instance(),
        Err(StoreError::InstanceRunning { .. })
    ));
    assert_eq!(held.keep().unwrap(), Kept::Held);

    cut_the_instance_connection(&db);
    let twin = db.open_as("mx1").hold_instance().unwrap();
    let e = held.keep().unwrap_err();
    assert!(
        matches!(&e, StoreError::InstanceRunning { instance } if instance == "mx1"),
        "{e}"
    );
    drop(twin);
}

#[test]
fn an_entry_checked_in_hand_is_skipped_by_claims_until_the_check_commits_issue_14() {
    let db = PostgresDb::fresh();
    let (a, b) = (db.open_as("mx1"), db.open_as("mx2"));
    send(&a, 1);
    let item = a.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    let held = item.held();
    // a checks its hold at t(0) while its lease (to t(60)) could lapse at
    // any later time; b, claiming at t(100) meanwhile, must skip the row.
    let seen_by_b = a
        .write(|tx| {
            assert!(crate::tx::Tx::holds_lease(tx, held.id, &held.token)?);
            Ok(b.claim_due(t(100), LEASE, 1).unwrap().len())
        })
        .unwrap();
    assert_eq!(seen_by_b, 0, "the row was locked by the check");
    // Committed, the lapsed lease is b's to take.
    assert_eq!(b.claim_due(t(100), LEASE, 1).unwrap().len(), 1);
}

#[test]
fn a_message_larger_than_one_statement_goes_in_and_out_in_pieces_unchanged_issue_14() {
    let db = PostgresDb::fresh();
    let store = db.open_as("mx1");
    for (n, size, from) in [
        (1, super::large::IN_ONE + 1, Some(addr("alice@a.example"))),
        (2, 3 * super::large::IN_ONE + 7, None),
    ] {
        let mut bytes =
            format!("From: alice@a.example\r\nMessage-ID: <big{n}@a.example>\r\n\r\n").into_bytes();
        bytes.extend((0..size).map(|i| u8::try_from((i * 7 + n) % 251).unwrap()));
        let record = store
            .enqueue(
                MessageDirection::Outbound,
                from.as_ref(),
                &[addr("x@c.example")],
                &bytes,
                t(0),
            )
            .unwrap();
        assert_eq!(db.message_bytes(record), bytes, "stored whole");
        let item = store
            .claim_due(t(n.try_into().unwrap()), LEASE, 1)
            .unwrap()
            .remove(0);
        assert_eq!(item.message, record);
        assert_eq!(item.envelope_from, from);
        assert_eq!(
            item.message_id.as_ref().map(|m| m.as_str().to_string()),
            Some(format!("big{n}@a.example"))
        );
        assert!(item.bytes.as_slice() == bytes.as_slice(), "read back whole");
        store.complete(&item).unwrap();
    }
    // A small one still goes the one-statement way, and ids follow on.
    let small = send(&store, 3);
    assert!(small.0 > 2, "{small:?}");
}
