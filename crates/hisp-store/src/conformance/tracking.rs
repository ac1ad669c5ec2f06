//! Delivery notification tracking (Implementation Guide for Delivery
//! Notification in Direct 1.0): what a message expects, the MDN timeout,
//! exactly one final notice per failed recipient, and message listings.

use std::time::Duration;

use time::OffsetDateTime;

use super::{addr, domain, Backend};
use crate::error::Entity;
use crate::{
    AuditEvent, AuditKind, DeliveryStatus, DirectAddress, Expectation, Folder, MailboxEntry,
    MessageDirection, MessageId, MessageRecordId, RecipientId, RecipientRecord, Store, StoreError,
    TrackFilter, TrackingState,
};

pub(crate) const LEASE: Duration = Duration::from_secs(60);

pub(crate) fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

pub(crate) fn mid(text: &str) -> MessageId {
    MessageId::parse(text).unwrap()
}

/// A message with Message-ID `<n@a.example>` and a Subject.
pub(crate) fn message(n: u32, subject: &str) -> Vec<u8> {
    format!(
        "From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: {subject}\r\n\
Message-ID: <{n}@a.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
\r\n\
hello\r\n"
    )
    .into_bytes()
}

/// The DSN hisp files in the sender's Inbox.
const NOTICE: &[u8] = b"From: postmaster@a.example\r\n\
To: alice@a.example\r\n\
Subject: Delivery Status Notification (Failure)\r\n\
Message-ID: <dsn-1@a.example>\r\n\
Date: Mon, 1 Jan 2024 01:00:00 +0000\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\
\r\n\
--b--\r\n";

/// A store where alice@a.example is local (so she has an Inbox).
fn with_alice<B: Backend>(db: &B) -> B::Handle {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_address(&addr("alice@a.example"), &[]).unwrap();
    store
}

pub(crate) fn send(
    store: &dyn Store,
    n: u32,
    from: Option<&str>,
    to: &[&str],
    at: OffsetDateTime,
    expect: Expectation,
) -> MessageRecordId {
    let to: Vec<DirectAddress> = to.iter().map(|a| addr(a)).collect();
    store
        .enqueue_expecting(
            MessageDirection::Outbound,
            from.map(addr).as_ref(),
            &to,
            &message(n, "lab results"),
            at,
            expect,
        )
        .unwrap()
}

pub(crate) const MAIL: Expectation = Expectation::Mail {
    final_delivery: false,
};

/// The recipient rows of the message with Message-ID `<n@a.example>`.
/// Message `n` from alice to bob alone, queued at t(0); bob's recipient id.
fn mail_to_bob(store: &dyn Store, n: u32) -> RecipientId {
    send(
        store,
        n,
        Some("alice@a.example"),
        &["bob@b.example"],
        t(0),
        MAIL,
    );
    rcpts(store, n)[0].id
}

fn rcpts(store: &dyn Store, n: u32) -> Vec<RecipientRecord> {
    store.tracking(&mid(&format!("{n}@a.example"))).unwrap()
}

/// Moves a recipient along `states`, one second apart from `start`.
fn walk(store: &dyn Store, id: RecipientId, start: i64, states: &[TrackingState]) {
    for (i, s) in states.iter().enumerate() {
        store.track(id, *s, t(start + i as i64), None).unwrap();
    }
}

pub(crate) fn addresses(records: &[RecipientRecord]) -> Vec<String> {
    records.iter().map(|r| r.address.to_string()).collect()
}

pub(crate) fn kinds(store: &dyn Store, n: u32) -> Vec<AuditKind> {
    store
        .audit_events(&mid(&format!("{n}@a.example")))
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect()
}

pub(crate) fn the_expectation_and_subject_come_back_through_claim_status_and_tracking<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
    let final_delivery = Expectation::Mail {
        final_delivery: true,
    };
    let id = send(
        &store,
        1,
        Some("alice@a.example"),
        &["bob@b.example"],
        t(0),
        final_delivery,
    );
    let item = store.claim_due(t(0), LEASE, 10).unwrap().remove(0);
    assert_eq!(item.message, id);
    assert_eq!(item.expect, final_delivery);
    assert_eq!(item.recipients[0].expect, final_delivery);
    assert_eq!(item.recipients[0].direction, MessageDirection::Outbound);
    assert_eq!(
        item.recipients[0].envelope_from,
        Some(addr("alice@a.example"))
    );
    assert_eq!(item.recipients[0].notified_at, None);
    assert_eq!(store.queue(None).unwrap()[0].expect, final_delivery);

    let status = store.tracked_message(&mid("1@a.example")).unwrap();
    assert_eq!(status.len(), 1);
    let m = &status[0];
    assert_eq!(m.message, id);
    assert_eq!(m.message_id, Some(mid("1@a.example")));
    assert_eq!(m.envelope_from, Some(addr("alice@a.example")));
    assert_eq!(m.received_at, t(0));
    assert_eq!(m.subject.as_deref(), Some("lab results"));
    assert_eq!(m.expect, final_delivery);
    assert_eq!(addresses(&m.recipients), ["bob@b.example"]);
    assert_eq!(
        store.recipient(m.recipients[0].id).unwrap(),
        m.recipients[0]
    );
    let queued = &store.audit_events(&mid("1@a.example")).unwrap()[0];
    assert!(
        queued.detail.ends_with(", expecting mail-final-delivery"),
        "{}",
        queued.detail
    );

    // A DSN hisp sends, from the null reverse-path.
    send(
        &store,
        2,
        None,
        &["bob@b.example"],
        t(1),
        Expectation::Notification,
    );
    let n = store.tracked_message(&mid("2@a.example")).unwrap();
    assert_eq!(n[0].expect, Expectation::Notification);
    assert_eq!(n[0].envelope_from, None);
    assert_eq!(n[0].recipients[0].expect, Expectation::Notification);

    // Plain enqueue is ordinary mail without final delivery.
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            &message(3, "plain"),
            t(2),
        )
        .unwrap();
    assert_eq!(rcpts(&store, 3)[0].expect, MAIL);

    assert!(store
        .tracked_message(&mid("9@a.example"))
        .unwrap()
        .is_empty());
    assert!(store
        .recipient(RecipientId(999))
        .unwrap_err()
        .is_not_found());
}

pub(crate) fn overdue_lists_mail_waiting_for_mdns_relayed_before_the_cut_oldest_first<
    B: Backend,
>(
    db: &B,
) {
    use TrackingState::*;
    let store = db.open();
    let everyone = [
        "relayed@b.example",
        "processed@b.example",
        "dispatched@b.example",
        "delivered@b.example",
        "failed@b.example",
        "late@b.example",
        "queued@b.example",
    ];
    send(&store, 1, Some("alice@a.example"), &everyone, t(0), MAIL);
    let r = rcpts(&store, 1);
    walk(&store, r[0].id, 10, &[Relayed]);
    walk(&store, r[1].id, 10, &[Relayed, Processed]);
    walk(&store, r[2].id, 10, &[Relayed, Dispatched]);
    walk(&store, r[3].id, 10, &[Relayed, Processed, Delivered]);
    walk(&store, r[4].id, 10, &[Relayed, Failed]);
    walk(&store, r[5].id, 51, &[Relayed]);
    // Relayed earlier than all of the above, in a later message.
    send(
        &store,
        2,
        Some("alice@a.example"),
        &["early@b.example"],
        t(0),
        Expectation::Mail {
            final_delivery: true,
        },
    );
    walk(&store, rcpts(&store, 2)[0].id, 5, &[Relayed, Processed]);
    // A notification never times out.
    send(
        &store,
        3,
        None,
        &["mdn@b.example"],
        t(0),
        Expectation::Notification,
    );
    walk(&store, rcpts(&store, 3)[0].id, 1, &[Relayed]);
    // Nor does inbound mail.
    store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("bob@b.example")),
            &[addr("alice@a.example")],
            &message(4, "inbound"),
            t(0),
        )
        .unwrap();
    walk(&store, rcpts(&store, 4)[0].id, 1, &[Relayed]);

    let due = store.overdue(t(50)).unwrap();
    assert_eq!(
        addresses(&due),
        [
            "early@b.example",
            "relayed@b.example",
            "processed@b.example"
        ]
    );
    assert_eq!(due[0].at(Relayed), Some(t(5)));
    // The cut is inclusive.
    assert_eq!(store.overdue(t(51)).unwrap().len(), 4);
    assert!(store.overdue(t(4)).unwrap().is_empty());

    // Failing one for want of MDNs takes it off the list.
    store
        .track(due[1].id, Failed, t(60), Some("no MDN within 1 h"))
        .unwrap();
    assert_eq!(
        addresses(&store.overdue(t(50)).unwrap()),
        ["early@b.example", "processed@b.example"]
    );
}

/// alice's message 1 to bob and carol, both failed by giving up the entry.
fn failed_to_bob_and_carol(store: &dyn Store) -> (RecipientId, RecipientId) {
    send(
        store,
        1,
        Some("alice@a.example"),
        &["bob@b.example", "carol@b.example"],
        t(0),
        MAIL,
    );
    let item = store.claim_due(t(0), LEASE, 10).unwrap().remove(0);
    store.fail(&item, "550 5.1.1 no such user", t(5)).unwrap();
    let r = rcpts(store, 1);
    assert!(r.iter().all(|r| r.state == TrackingState::Failed));
    (r[0].id, r[1].id)
}

fn inbox(store: &dyn Store) -> Vec<MailboxEntry> {
    store
        .mailbox(&addr("alice@a.example"), Folder::Inbox)
        .unwrap()
}

pub(crate) fn a_failed_recipient_gets_exactly_one_notice_filed_in_the_senders_inbox<B: Backend>(
    db: &B,
) {
    let store = with_alice(db);
    let (bob, carol) = failed_to_bob_and_carol(&store);
    // Failures that owe nobody a notice: the null reverse-path, and a
    // notification hisp sent.
    send(&store, 2, None, &["dave@b.example"], t(0), MAIL);
    send(
        &store,
        3,
        Some("alice@a.example"),
        &["erin@b.example"],
        t(0),
        Expectation::Notification,
    );
    for n in [2, 3] {
        let id = rcpts(&store, n)[0].id;
        store
            .track(id, TrackingState::Failed, t(6), Some("refused"))
            .unwrap();
    }

    let owed = store.unnotified_failures().unwrap();
    assert_eq!(addresses(&owed), ["bob@b.example", "carol@b.example"]);
    assert_eq!(owed[0].envelope_from, Some(addr("alice@a.example")));

    let entry = store
        .notify_sender(&addr("alice@a.example"), NOTICE, &[bob, carol], t(9))
        .unwrap()
        .expect("the first notice is filed");
    let listed = inbox(&store);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, entry);
    assert_eq!(
        listed[0].subject.as_deref(),
        Some("Delivery Status Notification (Failure)")
    );
    assert_eq!(listed[0].message_id, Some(mid("dsn-1@a.example")));
    assert_eq!(listed[0].from.as_deref(), Some("postmaster@a.example"));
    assert_eq!(listed[0].received_at, t(9));
    assert!(listed[0].unread);
    assert_eq!(store.read_message(entry).unwrap().bytes, NOTICE);
    for id in [bob, carol] {
        assert_eq!(store.recipient(id).unwrap().notified_at, Some(t(9)));
    }
    assert!(store.unnotified_failures().unwrap().is_empty());

    let dsn: Vec<AuditEvent> = store
        .audit_events(&mid("1@a.example"))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::DsnSent)
        .collect();
    assert_eq!(dsn.len(), 1);
    assert_eq!(
        dsn[0].detail,
        format!(
            "to alice@a.example (mailbox entry {entry}): failed bob@b.example, carol@b.example"
        )
    );
    assert_eq!(
        kinds(&store, 1).last(),
        Some(&AuditKind::DsnSent),
        "written after the failure"
    );
    let events_before = store.audit_events(&mid("1@a.example")).unwrap().len();

    // Again (a restart after the commit, or a racing worker): nothing.
    assert_eq!(
        store
            .notify_sender(&addr("alice@a.example"), NOTICE, &[carol, bob], t(20))
            .unwrap(),
        None
    );
    assert_eq!(inbox(&store).len(), 1);
    assert_eq!(store.recipient(bob).unwrap().notified_at, Some(t(9)));
    assert_eq!(
        store.audit_events(&mid("1@a.example")).unwrap().len(),
        events_before
    );
    assert!(store
        .audit_events(&mid("dsn-1@a.example"))
        .unwrap()
        .iter()
        .all(|e| e.kind == AuditKind::Delivered));
    assert_eq!(
        store.audit_events(&mid("dsn-1@a.example")).unwrap().len(),
        1
    );
}

pub(crate) fn a_notice_naming_any_recipient_already_notified_files_nothing<B: Backend>(db: &B) {
    let store = with_alice(db);
    let (bob, carol) = failed_to_bob_and_carol(&store);
    let alice = addr("alice@a.example");
    assert!(store
        .notify_sender(&alice, NOTICE, &[bob], t(9))
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .notify_sender(&alice, NOTICE, &[bob, carol], t(10))
            .unwrap(),
        None
    );
    assert_eq!(inbox(&store).len(), 1);
    assert_eq!(store.recipient(carol).unwrap().notified_at, None);
    assert_eq!(
        addresses(&store.unnotified_failures().unwrap()),
        ["carol@b.example"]
    );
    assert!(store
        .notify_sender(&alice, NOTICE, &[carol], t(11))
        .unwrap()
        .is_some());
    assert_eq!(inbox(&store).len(), 2);
    assert_eq!(store.recipient(carol).unwrap().notified_at, Some(t(11)));
}

pub(crate) fn a_notice_about_unknown_or_unfailed_recipients_is_refused_and_writes_nothing<
    B: Backend,
>(
    db: &B,
) {
    let store = with_alice(db);
    let (bob, _) = failed_to_bob_and_carol(&store);
    let alice = addr("alice@a.example");
    let events = || store.audit_events(&mid("1@a.example")).unwrap().len();
    let before = events();

    match store.notify_sender(&alice, NOTICE, &[bob, RecipientId(999)], t(9)) {
        Err(StoreError::NotFound {
            entity: Entity::Recipient,
            name,
        }) => assert_eq!(name, "999"),
        other => panic!("{other:?}"),
    }
    send(
        &store,
        2,
        Some("alice@a.example"),
        &["dave@b.example"],
        t(0),
        MAIL,
    );
    let dave = rcpts(&store, 2)[0].id;
    store
        .track(dave, TrackingState::Relayed, t(1), None)
        .unwrap();
    let err = store
        .notify_sender(&alice, NOTICE, &[bob, dave], t(9))
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("it is relayed; only a failed recipient gets a failure notice"),
        "{err}"
    );
    assert!(store.notify_sender(&alice, NOTICE, &[], t(9)).is_err());
    assert!(inbox(&store).is_empty());
    assert_eq!(store.recipient(bob).unwrap().notified_at, None);
    assert_eq!(events(), before);

    // A sender that is not local has no Inbox: the notice is dropped once,
    // the recipient counts as told, the audit says so.
    assert_eq!(
        store
            .notify_sender(&addr("zed@a.example"), NOTICE, &[bob], t(9))
            .unwrap(),
        None
    );
    assert!(inbox(&store).is_empty());
    assert_eq!(store.recipient(bob).unwrap().notified_at, Some(t(9)));
    assert!(store
        .unnotified_failures()
        .unwrap()
        .iter()
        .all(|r| r.id != bob));
    assert_eq!(events(), before + 1, "one dsn-sent event: not filed");
}

pub(crate) fn listings_are_newest_first_and_keep_every_recipient_of_a_matching_message<
    B: Backend,
>(
    db: &B,
) {
    use TrackingState::*;
    let store = db.open();
    let done = send(
        &store,
        1,
        Some("alice@a.example"),
        &["bob@b.example"],
        t(0),
        MAIL,
    );
    walk(
        &store,
        rcpts(&store, 1)[0].id,
        1,
        &[Relayed, Processed, Delivered],
    );
    let half = send(
        &store,
        2,
        Some("alice@a.example"),
        &["bob@b.example", "carol@b.example"],
        t(10),
        MAIL,
    );
    let r = rcpts(&store, 2);
    walk(&store, r[0].id, 11, &[Relayed, Failed]);
    walk(&store, r[1].id, 11, &[Relayed]);
    let notice = send(
        &store,
        3,
        None,
        &["bob@b.example"],
        t(20),
        Expectation::Notification,
    );
    store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("bob@b.example")),
            &[addr("alice@a.example")],
            &message(4, "inbound"),
            t(30),
        )
        .unwrap();

    let ids = |filter| -> Vec<MessageRecordId> {
        store
            .tracked_messages(filter)
            .unwrap()
            .iter()
            .map(|m| m.message)
            .collect()
    };
    assert_eq!(ids(TrackFilter::All), [notice, half, done]);
    assert_eq!(ids(TrackFilter::Pending), [notice, half]);
    assert_eq!(ids(TrackFilter::State(Delivered)), [done]);
    assert_eq!(ids(TrackFilter::State(Queued)), [notice]);
    assert!(ids(TrackFilter::State(Dispatched)).is_empty());

    let failed = store.tracked_messages(TrackFilter::State(Failed)).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message, half);
    assert_eq!(failed[0].subject.as_deref(), Some("lab results"));
    let states: Vec<TrackingState> = failed[0].recipients.iter().map(|r| r.state).collect();
    assert_eq!(states, [Failed, Relayed]);
}

pub(crate) fn a_duplicate_move_is_refused_and_not_audited<B: Backend>(db: &B) {
    use TrackingState::*;
    let store = db.open();
    let bob = mail_to_bob(&store, 1);
    for state in [Relayed, Processed, Dispatched, Delivered] {
        store.track(bob, state, t(10), Some("first")).unwrap();
        let before = store.audit_events(&mid("1@a.example")).unwrap().len();
        let err = store
            .track(bob, state, t(20), Some("duplicate MDN"))
            .unwrap_err();
        assert!(err.is_transition(), "{state}: {err}");
        assert_eq!(
            err.to_string(),
            format!("a recipient cannot move from {state} to {state}")
        );
        assert_eq!(
            store.audit_events(&mid("1@a.example")).unwrap().len(),
            before,
            "{state}"
        );
        let now = store.recipient(bob).unwrap();
        assert_eq!(now.at(state), Some(t(10)), "{state}");
        assert_eq!(now.reason.as_deref(), Some("first"));
    }
}

pub(crate) fn the_end_of_the_lifetime_fails_only_recipients_not_yet_relayed<B: Backend>(db: &B) {
    let store = db.open();
    send(
        &store,
        1,
        Some("alice@a.example"),
        &["bob@b.example", "carol@c.example"],
        t(0),
        MAIL,
    );
    let item = store
        .claim_due(t(0), std::time::Duration::from_secs(60), 1)
        .unwrap()
        .remove(0);
    let bob = rcpts(&store, 1)
        .into_iter()
        .find(|r| r.address.to_string() == "bob@b.example")
        .unwrap();
    store
        .track(bob.id, TrackingState::Relayed, t(5), None)
        .unwrap();
    store.fail(&item, "lifetime over", t(10)).unwrap();
    for r in rcpts(&store, 1) {
        let want = if r.id == bob.id {
            TrackingState::Relayed
        } else {
            TrackingState::Failed
        };
        assert_eq!(r.state, want, "{r:?}");
    }
}

pub(crate) fn several_steps_are_made_together_or_not_at_all<B: Backend>(db: &B) {
    let store = db.open();
    let bob = mail_to_bob(&store, 1);
    store
        .track(bob, TrackingState::Relayed, t(1), None)
        .unwrap();
    let done = store
        .track_steps(
            bob,
            &[TrackingState::Processed, TrackingState::Delivered],
            t(2),
            Some("processed MDN received"),
        )
        .unwrap();
    assert_eq!(done.state, TrackingState::Delivered);
    assert_eq!(done.at(TrackingState::Processed), Some(t(2)));
    // A second step that is not allowed undoes the first.
    let other = mail_to_bob(&store, 2);
    store
        .track(other, TrackingState::Relayed, t(1), None)
        .unwrap();
    assert!(store
        .track_steps(
            other,
            &[TrackingState::Processed, TrackingState::Queued],
            t(2),
            None
        )
        .is_err());
    assert_eq!(
        store.recipient(other).unwrap().state,
        TrackingState::Relayed
    );
}

/// Implementation Guide for Delivery Notification in Direct 1.0: the
/// `dispatched` MDN may overtake the `processed` one. The late processed
/// step gets its time, the state stays, and a second one is refused.
pub(crate) fn a_processed_step_overtaken_by_dispatched_gets_its_time_and_the_state_stays<
    B: Backend,
>(
    db: &B,
) {
    use TrackingState::*;
    let store = db.open();
    let bob = mail_to_bob(&store, 1);
    store.track(bob, Relayed, t(1), None).unwrap();
    let err = store.note_overtaken_step(bob, Processed, t(2)).unwrap_err();
    assert!(err.is_transition(), "not yet past processed: {err}");
    store
        .track_steps(bob, &[Dispatched, Delivered], t(3), Some("dispatched"))
        .unwrap();
    let before = store.audit_events(&mid("1@a.example")).unwrap().len();
    let noted = store.note_overtaken_step(bob, Processed, t(4)).unwrap();
    assert_eq!(noted.state, Delivered);
    assert_eq!(noted.at(Processed), Some(t(4)));
    assert_eq!(noted.at(Dispatched), Some(t(3)));
    assert_eq!(noted.reason.as_deref(), Some("dispatched"));
    assert_eq!(
        store.audit_events(&mid("1@a.example")).unwrap().len(),
        before + 1
    );
    let again = store.note_overtaken_step(bob, Processed, t(5)).unwrap_err();
    assert!(again.is_transition(), "{again}");
    assert_eq!(store.recipient(bob).unwrap().at(Processed), Some(t(4)));
}

/// A failed recipient keeps the RFC 3463 status of its refusal as a value,
/// read back by `unnotified_failures` for the DSN (RFC 3464 §2.3.4); other
/// failures carry none.
pub(crate) fn a_failure_keeps_its_rfc3463_status_for_the_dsn<B: Backend>(db: &B) {
    let store = with_alice(db);
    let refused = mail_to_bob(&store, 1);
    let timed_out = mail_to_bob(&store, 2);
    let status = DeliveryStatus::new(5, 1, 1).unwrap();
    let r = store
        .track_failed(
            refused,
            t(5),
            "550 5.1.1 <bob@b.example>: no such user",
            Some(status),
        )
        .unwrap();
    assert_eq!(r.state, TrackingState::Failed);
    assert_eq!(r.status, Some(status));
    assert_eq!(
        r.reason.as_deref(),
        Some("550 5.1.1 <bob@b.example>: no such user")
    );
    store
        .track(
            timed_out,
            TrackingState::Failed,
            t(6),
            Some("no processed MDN"),
        )
        .unwrap();
    let failures = store.unnotified_failures().unwrap();
    let status_of = |id| failures.iter().find(|r| r.id == id).map(|r| r.status);
    assert_eq!(status_of(refused), Some(Some(status)));
    assert_eq!(status_of(timed_out), Some(None));
    // A move the state does not allow is refused and keeps nothing.
    assert!(store.track_failed(refused, t(7), "again", None).is_err());
    assert_eq!(rcpts(&store, 1)[0].status, Some(status));
}
