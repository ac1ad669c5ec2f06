//! What the queue engine (issue 13) asks of the store: claims capped per
//! destination, leases renewed and released, entries made due by an
//! administrator, the bell rung when something is queued, changes by
//! another process seen, millisecond queue times, and quarantine and
//! duplicate filings moved with their tracking in one transaction.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::{addr, domain, Backend};
use crate::error::Entity;
use crate::{
    Answer, AuditKind, ClaimLimits, DirectAddress, Envelope, Filing, Folder, MessageDirection,
    MessageId, MessageRecordId, QuarantineReason, QueueItem, QueueItemId, RecipientId,
    RecipientRecord, RetrySelection, Store, StoreError, TrackingState,
};

const LEASE: Duration = Duration::from_secs(60);

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn message(n: u32) -> Vec<u8> {
    format!("From: alice@a.example\r\nSubject: {n}\r\nMessage-ID: <{n}@a.example>\r\n\r\nhello\r\n")
        .into_bytes()
}

/// Queues message `n` from alice to `to`, due at `at`.
fn send(store: &dyn Store, n: u32, to: &[&str], at: OffsetDateTime) -> MessageRecordId {
    let to: Vec<DirectAddress> = to.iter().map(|a| addr(a)).collect();
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &to,
            &message(n),
            at,
        )
        .unwrap()
}

fn limits(limit: usize, per_destination: usize, in_hand: &[(&str, usize)]) -> ClaimLimits {
    ClaimLimits {
        limit,
        per_destination,
        in_hand: in_hand
            .iter()
            .map(|(d, n)| (domain(d), *n))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn subjects(items: &[QueueItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| i.message_id.as_ref().unwrap().as_str().to_string())
        .collect()
}

pub(crate) fn a_claim_takes_no_more_than_the_cap_of_one_destination_and_goes_on_to_others<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    for n in 1..=4 {
        send(&store, n, &["x@slow.example"], t(0));
    }
    send(&store, 5, &["y@fast.example"], t(1));
    send(&store, 6, &["y@fast.example"], t(1));
    // The four entries for slow.example come first in queue order; a cap
    // of two lets the claim reach fast.example's.
    let items = store
        .claim_due_within(t(5), LEASE, &limits(4, 2, &[]))
        .unwrap();
    assert_eq!(
        subjects(&items),
        ["1@a.example", "2@a.example", "5@a.example", "6@a.example"]
    );
    assert_eq!(items[0].destinations(), vec![domain("slow.example")]);
    // With two of slow.example in hand already, none of it is taken.
    let items = store
        .claim_due_within(t(5), LEASE, &limits(4, 2, &[("slow.example", 2)]))
        .unwrap();
    assert!(items.is_empty(), "{:?}", subjects(&items));
    // One slot free there: one more.
    let items = store
        .claim_due_within(t(5), LEASE, &limits(4, 2, &[("slow.example", 1)]))
        .unwrap();
    assert_eq!(subjects(&items), ["3@a.example"]);
}

pub(crate) fn an_entry_counts_against_every_destination_of_its_recipients_still_queued<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    send(&store, 1, &["x@b.example", "y@c.example"], t(0));
    let full_c = limits(4, 1, &[("c.example", 1)]);
    assert!(store
        .claim_due_within(t(5), LEASE, &full_c)
        .unwrap()
        .is_empty());
    // Once c.example's recipient is relayed, only b.example is left.
    let r = store
        .tracking(&MessageId::parse("1@a.example").unwrap())
        .unwrap();
    let c = r
        .iter()
        .find(|r| r.address.domain().as_str() == "c.example")
        .unwrap();
    store
        .track(c.id, TrackingState::Relayed, t(1), None)
        .unwrap();
    let items = store.claim_due_within(t(5), LEASE, &full_c).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].destinations(), vec![domain("b.example")]);
}

pub(crate) fn inbound_entries_have_no_destination_and_no_cap<B: Backend>(db: &B) {
    let store = db.open();
    for n in 1..=3 {
        store
            .enqueue(
                MessageDirection::Inbound,
                Some(&addr("alice@a.example")),
                &[addr("bob@b.example")],
                &message(n),
                t(0),
            )
            .unwrap();
    }
    let items = store
        .claim_due_within(t(1), LEASE, &limits(8, 1, &[("b.example", 5)]))
        .unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i.destinations().is_empty()));
}

pub(crate) fn a_renewed_lease_keeps_the_entry_from_other_claims_and_a_lost_one_is_refused<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    send(&store, 1, &["x@b.example"], t(0));
    let item = store.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    let until = store.renew_lease(&item, t(50), LEASE).unwrap();
    assert_eq!(until, t(110));
    assert!(store.claim_due(t(100), LEASE, 1).unwrap().is_empty());
    let taken = store.claim_due(t(111), LEASE, 1).unwrap();
    assert_eq!(taken.len(), 1, "the renewed lease ended");
    let e = store.renew_lease(&item, t(112), LEASE).unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost { .. }), "{e}");
}

pub(crate) fn a_tracking_move_by_a_worker_whose_entry_was_taken_over_is_refused_and_moves_nothing_issue_14<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    send(&store, 1, &["x@b.example", "y@b.example"], t(0));
    let first = store.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    let (x, y) = (first.recipients[0].id, first.recipients[1].id);
    // Still in hand: the move is made.
    let moved = store
        .track_steps_held(
            &first.held(),
            x,
            &[TrackingState::Relayed],
            t(1),
            Some("250 ok"),
        )
        .unwrap();
    assert_eq!(moved.state, TrackingState::Relayed);
    // The lease runs out and another worker claims the entry: the first
    // worker's moves are refused, and nothing of them is written.
    let second = store.claim_due(t(61), LEASE, 1).unwrap().remove(0);
    let e = store
        .track_steps_held(&first.held(), y, &[TrackingState::Relayed], t(62), None)
        .unwrap_err();
    assert!(
        matches!(e, StoreError::LeaseLost { item } if item == first.id.0),
        "{e}"
    );
    let e = store
        .track_failed_held(&first.held(), y, t(62), "refused", None)
        .unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost { .. }), "{e}");
    assert_eq!(store.recipient(y).unwrap().state, TrackingState::Queued);
    // The holder's moves go through.
    let failed = store
        .track_failed_held(&second.held(), y, t(63), "550 no such user", None)
        .unwrap();
    assert_eq!(failed.state, TrackingState::Failed);
    // A finished entry is in no one's hand.
    store.complete(&second).unwrap();
    let e = store
        .track_steps_held(&second.held(), x, &[TrackingState::Processed], t(64), None)
        .unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost { .. }), "{e}");
}

pub(crate) fn a_released_entry_is_due_again_at_once_and_audited<B: Backend>(db: &B) {
    let store = db.open();
    send(&store, 1, &["x@b.example"], t(0));
    let item = store.claim_due(t(0), LEASE, 1).unwrap().remove(0);
    store.release(&item).unwrap();
    let again = store.claim_due(t(1), LEASE, 1).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let e = store.release(&item).unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost { .. }), "{e}");
    let events = store
        .audit_events(&MessageId::parse("1@a.example").unwrap())
        .unwrap();
    assert!(events.iter().any(|e| e.kind == AuditKind::Released));
}

pub(crate) fn retry_now_makes_pending_entries_due_and_refuses_finished_or_unknown_ones<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    send(&store, 1, &["x@b.example"], t(0));
    send(&store, 2, &["x@b.example"], t(0));
    for item in store.claim_due(t(0), LEASE, 2).unwrap() {
        store.retry_later(&item, t(3600), "down").unwrap();
    }
    assert_eq!(store.next_due().unwrap(), Some(t(3600)));
    assert!(store.claim_due(t(10), LEASE, 2).unwrap().is_empty());

    let first = store.queue(None).unwrap()[0].id;
    assert_eq!(
        store.retry_now(RetrySelection::One(first), t(10)).unwrap(),
        vec![first]
    );
    assert_eq!(store.next_due().unwrap(), Some(t(10)));
    let taken = store.claim_due(t(10), LEASE, 2).unwrap();
    assert_eq!(taken.len(), 1);
    store.complete(&taken[0]).unwrap();

    let e = store
        .retry_now(RetrySelection::One(first), t(11))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("it is done: only pending entries are retried"),
        "{e}"
    );
    let e = store
        .retry_now(RetrySelection::One(QueueItemId(999)), t(11))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                entity: Entity::QueueItem,
                ..
            }
        ),
        "{e}"
    );
    let all = store.retry_now(RetrySelection::All, t(12)).unwrap();
    assert_eq!(all.len(), 1, "the other one");
    assert_eq!(store.claim_due(t(12), LEASE, 2).unwrap().len(), 1);
    let events = store
        .audit_events(&MessageId::parse("2@a.example").unwrap())
        .unwrap();
    assert!(events.iter().any(|e| e.kind == AuditKind::RetryRequested));
}

pub(crate) fn the_bell_rings_after_a_commit_that_queued_and_not_otherwise<B: Backend>(db: &B) {
    let store = db.open();
    let rung = Arc::new(AtomicUsize::new(0));
    let count = rung.clone();
    store.on_enqueue(Arc::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
    }));
    store.add_domain(&domain("a.example"), &[]).unwrap();
    assert_eq!(rung.load(Ordering::SeqCst), 0, "no message queued");
    send(&store, 1, &["x@b.example"], t(0));
    assert_eq!(rung.load(Ordering::SeqCst), 1);
    // A refused enqueue (a recipient twice) rolls back: no ring.
    let e = store.enqueue(
        MessageDirection::Outbound,
        Some(&addr("alice@a.example")),
        &[addr("x@b.example"), addr("x@b.example")],
        &message(2),
        t(0),
    );
    assert!(e.is_err());
    assert_eq!(rung.load(Ordering::SeqCst), 1);
    // A claim changes the queue but queues nothing.
    store.claim_due(t(0), LEASE, 1).unwrap();
    assert_eq!(rung.load(Ordering::SeqCst), 1);
}

pub(crate) fn changes_by_another_connection_are_seen_and_own_changes_are_not<B: Backend>(db: &B) {
    let server = db.open();
    let before = server.outside_changes().unwrap();
    send(&server, 1, &["x@b.example"], t(0));
    assert_eq!(server.outside_changes().unwrap(), before);
    let cli = db.open();
    cli.retry_now(RetrySelection::All, t(0)).unwrap();
    assert_eq!(server.outside_changes().unwrap(), before, "nothing changed");
    send(&cli, 2, &["x@b.example"], t(0));
    assert_ne!(server.outside_changes().unwrap(), before);
}

pub(crate) fn the_queue_keeps_when_an_entry_was_queued_and_claimed_to_the_millisecond<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    let queued = t(0) + Duration::from_millis(120);
    send(&store, 1, &["x@b.example"], queued);
    let e = &store.queue(None).unwrap()[0];
    assert_eq!(e.queued_at, Some(queued));
    assert_eq!((e.first_attempt_at, e.last_attempt_at), (None, None));
    let first = t(0) + Duration::from_millis(345);
    let item = store.claim_due(first, LEASE, 1).unwrap().remove(0);
    store.retry_later(&item, t(1), "down").unwrap();
    let second = t(1) + Duration::from_millis(7);
    store.claim_due(second, LEASE, 1).unwrap();
    let e = &store.queue(None).unwrap()[0];
    assert_eq!(e.first_attempt_at, Some(first));
    assert_eq!(e.last_attempt_at, Some(second));
}

/// bob@b.example is local; `bytes` queued inbound to him; his recipient row.
fn inbound_for_bob(store: &dyn Store, n: u32) -> RecipientRecord {
    if store.domain(&domain("b.example")).is_err() {
        store.add_domain(&domain("b.example"), &[]).unwrap();
        store.add_address(&addr("bob@b.example"), &[]).unwrap();
    }
    let message = store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            format!("Message-ID: <outer-{n}@a.example>\r\n\r\n(ciphertext)\r\n").as_bytes(),
            t(0),
        )
        .unwrap();
    let outer = MessageId::parse(&format!("outer-{n}@a.example")).unwrap();
    let r = store.tracking(&outer).unwrap().remove(0);
    assert_eq!(r.message, message);
    r
}

pub(crate) fn a_message_sent_again_is_not_filed_twice_but_answered_again_rfc_5322_3_6_4<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    let bob = addr("bob@b.example");
    let answer = |n: u32| Answer {
        from: bob.clone(),
        to: addr("alice@a.example"),
        bytes: format!("Message-ID: <mdn-{n}@b.example>\r\n\r\nprocessed\r\n").into_bytes(),
        kind: "processed".into(),
    };
    let first = inbound_for_bob(&store, 1);
    let filed = store
        .file_inbound(first.id, &bob, &message(7), t(1), &[answer(1)], &[])
        .unwrap();
    let Filing::Filed(entry) = filed else {
        panic!("{filed:?}")
    };
    // The sender did not learn of it and sent the same message again.
    let second = inbound_for_bob(&store, 2);
    let queued_before = store.queue(None).unwrap().len();
    let again = store
        .file_inbound(second.id, &bob, &message(7), t(2), &[answer(2)], &[])
        .unwrap();
    assert_eq!(again, Filing::Duplicate(entry));
    assert_eq!(store.mailbox(&bob, Folder::Inbox).unwrap().len(), 1);
    assert_eq!(
        store.recipient(second.id).unwrap().state,
        TrackingState::Delivered
    );
    assert_eq!(
        store.queue(None).unwrap().len(),
        queued_before + 1,
        "its MDN goes again"
    );
    // Another message is filed as ever.
    let third = inbound_for_bob(&store, 3);
    let other = store
        .file_inbound(third.id, &bob, &message(8), t(3), &[], &[])
        .unwrap();
    assert!(matches!(other, Filing::Filed(_)), "{other:?}");
}

pub(crate) fn quarantine_and_the_tracking_of_its_recipients_move_in_one_transaction<B: Backend>(
    db: &B,
) {
    let store = db.open();
    let r = inbound_for_bob(&store, 1);
    let envelope = Envelope {
        from: Some(addr("alice@a.example")),
        recipients: vec![addr("bob@b.example")],
        received_at: t(0),
    };
    let q = store
        .quarantine_inbound(
            r.message,
            QuarantineReason::Untrusted,
            "untrusted-signer: no path",
            &envelope,
            &[r.id],
            t(1),
        )
        .unwrap();
    assert!(q.is_some());
    let moved = store.recipient(r.id).unwrap();
    assert_eq!(moved.state, TrackingState::Failed);
    assert_eq!(
        moved.reason.as_deref(),
        Some("quarantined (untrusted): untrusted-signer: no path")
    );
    // Again (a lapsed lease, say): nothing more.
    let again = store
        .quarantine_inbound(
            r.message,
            QuarantineReason::Untrusted,
            "untrusted-signer: no path",
            &envelope,
            &[r.id],
            t(2),
        )
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(store.quarantined().unwrap().len(), 1);
    // An unknown recipient writes nothing at all.
    let other = inbound_for_bob(&store, 2);
    let e = store
        .quarantine_inbound(
            other.message,
            QuarantineReason::Untrusted,
            "x",
            &envelope,
            &[other.id, RecipientId(999)],
            t(3),
        )
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(store.quarantined().unwrap().len(), 1);
    assert_eq!(
        store.recipient(other.id).unwrap().state,
        TrackingState::Queued
    );
}
