//! The durable queue, leases and per-recipient tracking.

use std::collections::HashSet;
use std::time::Duration;

use time::OffsetDateTime;

use super::{addr, Backend, Rows};
use crate::error::Entity;
use crate::{
    AuditKind, MessageDirection, MessageId, MessageRecordId, QueueState, Store, StoreError,
    TrackingState,
};

const MESSAGE: &[u8] = b"From: alice@a.example\r\n\
To: bob@b.example, carol@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
\r\n\
hello\r\n";

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn mid(text: &str) -> MessageId {
    MessageId::parse(text).unwrap()
}

fn enqueue(store: &dyn Store, at: OffsetDateTime) -> MessageRecordId {
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example"), addr("carol@b.example")],
            MESSAGE,
            at,
        )
        .unwrap()
}

const LEASE: Duration = Duration::from_secs(60);

pub(crate) fn enqueue_commits_the_message_its_recipients_and_an_audit_event<B: Backend>(db: &B) {
    let store = db.open();
    let id = enqueue(&store, t(0));
    let queue = store.queue(None).unwrap();
    assert_eq!(queue.len(), 1);
    let e = &queue[0];
    assert_eq!(e.message, id);
    assert_eq!(e.state, QueueState::Pending);
    assert_eq!(e.message_id, Some(mid("<1@a.example>")));
    assert_eq!(e.size, MESSAGE.len() as u64);
    assert_eq!(e.next_attempt_at, t(0));
    let states: Vec<(String, TrackingState)> = e
        .recipients
        .iter()
        .map(|r| (r.address.to_string(), r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("bob@b.example".into(), TrackingState::Queued),
            ("carol@b.example".into(), TrackingState::Queued)
        ]
    );
    assert_eq!(e.recipients[0].at(TrackingState::Queued), Some(t(0)));
    let events = store.audit_events(&mid("1@a.example")).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, AuditKind::Queued);
    assert_eq!(events[0].message, Some(id));
    assert_eq!(
        events[0].detail,
        format!(
            "outbound from alice@a.example to bob@b.example, carol@b.example ({} bytes)",
            MESSAGE.len()
        )
    );
}

pub(crate) fn a_failed_enqueue_leaves_nothing_behind<B: Backend>(db: &B) {
    let store = db.open();
    // The second recipient fails after the message and the first recipient
    // were written: the whole transaction must roll back.
    let err = store
        .enqueue(
            MessageDirection::Inbound,
            None,
            &[addr("bob@b.example"), addr("BOB@b.example")],
            MESSAGE,
            t(0),
        )
        .unwrap_err();
    match err {
        StoreError::Duplicate {
            entity: Entity::Recipient,
            name,
        } => assert_eq!(name, "BOB@b.example"),
        other => panic!("{other:?}"),
    }
    for rows in [
        Rows::Messages,
        Rows::Queue,
        Rows::Recipients,
        Rows::AuditEvents,
    ] {
        assert_eq!(db.count(rows), 0, "{rows:?}");
    }
    let err = store
        .enqueue(MessageDirection::Inbound, None, &[], MESSAGE, t(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid envelope 'no recipients': a message needs at least one recipient"
    );
    assert_eq!(db.count(Rows::Messages), 0);
}

pub(crate) fn a_committed_message_survives_closing_the_store<B: Backend>(db: &B) {
    let id = enqueue(&db.open(), t(0));
    let items = db.open().claim_due(t(1), LEASE, 10).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].message, id);
    assert_eq!(items[0].bytes.as_slice(), MESSAGE);
    assert_eq!(items[0].envelope_from, Some(addr("alice@a.example")));
}

pub(crate) fn a_message_is_not_due_before_its_time<B: Backend>(db: &B) {
    let store = db.open();
    enqueue(&store, t(10));
    assert!(store.claim_due(t(9), LEASE, 10).unwrap().is_empty());
    assert_eq!(store.claim_due(t(10), LEASE, 10).unwrap().len(), 1);
}

pub(crate) fn a_claimed_item_is_invisible_until_its_lease_expires<B: Backend>(db: &B) {
    let store = db.open();
    enqueue(&store, t(0));
    let first = store.claim_due(t(0), LEASE, 10).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].lease.until, t(60));
    assert!(store.claim_due(t(59), LEASE, 10).unwrap().is_empty());
    // The worker died: at the end of its lease the item is claimed again.
    let second = store.claim_due(t(60), LEASE, 10).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    assert_ne!(second[0].lease.token, first[0].lease.token);
    // The first worker woke up: it no longer holds the item.
    match store.complete(&first[0]) {
        Err(StoreError::LeaseLost { item }) => assert_eq!(item, first[0].id.0),
        other => panic!("{other:?}"),
    }
    store.complete(&second[0]).unwrap();
    assert_eq!(store.queue(None).unwrap()[0].state, QueueState::Done);
    assert!(store.claim_due(t(1000), LEASE, 10).unwrap().is_empty());
    assert!(store.complete(&second[0]).is_err(), "completed only once");
}

pub(crate) fn released_leases_make_a_dead_workers_items_claimable_at_once<B: Backend>(db: &B) {
    let store = db.open();
    enqueue(&store, t(0));
    enqueue(&store, t(0));
    let held = store.claim_due(t(0), LEASE, 1).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        store.claim_due(t(1), LEASE, 10).unwrap().len(),
        1,
        "the other one"
    );
    // Both leased now; a restart ends the leases of the dead worker.
    assert!(store.claim_due(t(2), LEASE, 10).unwrap().is_empty());
    assert_eq!(store.release_leases().unwrap(), 2);
    let again = store.claim_due(t(2), LEASE, 10).unwrap();
    assert_eq!(
        again.len(),
        2,
        "claimable before the leases would have run out"
    );
    assert!(matches!(
        store.complete(&held[0]),
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(store.release_leases().unwrap(), 2);
    for item in &again {
        assert!(store.complete(item).is_err(), "released, no longer held");
    }
}

pub(crate) fn claims_are_exclusive_across_connections<B: Backend>(db: &B) {
    let store = db.open();
    let mut all = HashSet::new();
    for i in 0..40 {
        all.insert(enqueue(&store, t(i)));
    }
    drop(store);
    let seen: Vec<MessageRecordId> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    // A connection of its own, as another process would have.
                    let store = db.open();
                    let mut mine = Vec::new();
                    loop {
                        let items = store.claim_due(t(100), LEASE, 3).unwrap();
                        if items.is_empty() {
                            return mine;
                        }
                        for item in items {
                            mine.push(item.message);
                            store.complete(&item).unwrap();
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "an item was claimed twice");
    assert_eq!(unique, all);
}

pub(crate) fn retry_later_releases_the_item_until_its_next_attempt<B: Backend>(db: &B) {
    let store = db.open();
    enqueue(&store, t(0));
    let item = store.claim_due(t(0), LEASE, 10).unwrap().remove(0);
    store
        .retry_later(&item, t(300), "451 4.4.1 connection refused")
        .unwrap();
    let entry = &store.queue(None).unwrap()[0];
    assert_eq!(entry.next_attempt_at, t(300));
    assert_eq!(entry.leased_until, None);
    assert_eq!(
        entry.last_error.as_deref(),
        Some("451 4.4.1 connection refused")
    );
    assert!(store.claim_due(t(299), LEASE, 10).unwrap().is_empty());
    let again = store.claim_due(t(300), LEASE, 10).unwrap().remove(0);
    assert_eq!(again.attempts, 2);
    assert_eq!(
        again.last_error.as_deref(),
        Some("451 4.4.1 connection refused")
    );
    let kinds: Vec<AuditKind> = store
        .audit_events(&mid("1@a.example"))
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [AuditKind::Queued, AuditKind::Deferred]);
}

pub(crate) fn fail_gives_up_and_fails_the_recipients_not_yet_done<B: Backend>(db: &B) {
    let store = db.open();
    enqueue(&store, t(0));
    let item = store.claim_due(t(0), LEASE, 10).unwrap().remove(0);
    let bob = item.recipients[0].id;
    store
        .track(bob, TrackingState::Relayed, t(1), None)
        .unwrap();
    store
        .track(bob, TrackingState::Processed, t(2), None)
        .unwrap();
    store
        .track(bob, TrackingState::Dispatched, t(3), None)
        .unwrap();
    store
        .fail(&item, "lifetime of 24 h exceeded", t(4))
        .unwrap();
    let entry = &store.queue(None).unwrap()[0];
    assert_eq!(entry.state, QueueState::Failed);
    assert_eq!(entry.recipients[0].state, TrackingState::Dispatched);
    assert_eq!(entry.recipients[1].state, TrackingState::Failed);
    assert_eq!(entry.recipients[1].at(TrackingState::Failed), Some(t(4)));
    assert_eq!(
        entry.recipients[1].reason.as_deref(),
        Some("lifetime of 24 h exceeded")
    );
    assert!(store.claim_due(t(1000), LEASE, 10).unwrap().is_empty());
}

pub(crate) fn tracking_follows_the_notification_guide_and_refuses_impossible_moves<B: Backend>(
    db: &B,
) {
    let store = db.open();
    enqueue(&store, t(0));
    let bob = store.tracking(&mid("1@a.example")).unwrap()[0].id;
    let events = || store.audit_events(&mid("1@a.example")).unwrap().len();
    let before = events();
    let err = store
        .track(bob, TrackingState::Processed, t(1), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a recipient cannot move from queued to processed"
    );
    assert_eq!(events(), before, "a refused move writes nothing");

    store
        .track(bob, TrackingState::Relayed, t(1), None)
        .unwrap();
    store
        .track(bob, TrackingState::Processed, t(2), Some("processed MDN"))
        .unwrap();
    let r = store
        .track(bob, TrackingState::Delivered, t(3), None)
        .unwrap();
    assert_eq!(r.state, TrackingState::Delivered);
    assert_eq!(r.at(TrackingState::Relayed), Some(t(1)));
    assert_eq!(r.at(TrackingState::Processed), Some(t(2)));
    assert_eq!(r.at(TrackingState::Delivered), Some(t(3)));
    assert_eq!(r.at(TrackingState::Dispatched), None);
    assert_eq!(r.reason.as_deref(), Some("processed MDN"));
    let err = store
        .track(bob, TrackingState::Dispatched, t(4), Some("late MDN"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a recipient cannot move from delivered to dispatched"
    );
    let details: Vec<String> = store
        .audit_events(&mid("1@a.example"))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::Tracked)
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        details,
        [
            "bob@b.example: queued -> relayed",
            "bob@b.example: relayed -> processed: processed MDN",
            "bob@b.example: processed -> delivered",
        ]
    );
}

pub(crate) fn audit_events_written_by_the_gateway_find_the_message_id<B: Backend>(db: &B) {
    let store = db.open();
    let id = enqueue(&store, t(0));
    store
        .audit(
            AuditKind::Sealed,
            None,
            Some(id),
            "to b.example: 2 recipients",
        )
        .unwrap();
    let events = store.audit_events(&mid("1@a.example")).unwrap();
    assert_eq!(events.last().map(|e| e.kind), Some(AuditKind::Sealed));
    assert_eq!(events.last().and_then(|e| e.message), Some(id));
}

/// The child's half of [`an_enqueued_message_survives_kill_9`]: enqueue,
/// say so, wait to be killed.
fn kill_9_child<B: Backend>(db: &B) -> ! {
    let store = db.open();
    for i in 0..5 {
        enqueue(&store, t(i));
    }
    // The parent kills us as soon as it reads this line: no destructor, no
    // checkpoint, no orderly close runs after the commits.
    println!("COMMITTED");
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(1);
}

pub(crate) fn an_enqueued_message_survives_kill_9<B: Backend>(db: &B) {
    use std::io::{BufRead, BufReader};

    // Run again by itself in a child process, this test is the child.
    if super::in_child() {
        kill_9_child(db);
    }
    let mut child = super::spawn_child(db);
    let stdout = child.stdout.take().unwrap();
    let committed = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("COMMITTED"));
    assert!(committed, "the child did not commit");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = db.open();
    let items = store.claim_due(t(100), LEASE, 10).unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i.bytes.as_slice() == MESSAGE));
}
