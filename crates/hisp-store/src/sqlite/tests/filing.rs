//! Filing an inbound message with its MDNs in one transaction
//! (Implementation Guide for Delivery Notification in Direct 1.0 §3.3):
//! all or nothing, and nothing twice.

use time::OffsetDateTime;

use super::*;
use crate::error::Entity;

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn mid(text: &str) -> MessageId {
    MessageId::parse(text).unwrap()
}

/// The message as it arrived (encrypted in life): its Message-ID is the one
/// on the queued record, which the MdnSent events name.
const QUEUED: &[u8] = b"From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <outer-1@a.example>\r\n\
Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
\r\n\
(ciphertext)\r\n";

/// The opened message that goes in the Inbox.
const OPENED: &[u8] = b"From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
\r\n\
hello\r\n";

fn mdn(kind: &str) -> Answer {
    Answer {
        from: addr("bob@b.example"),
        to: addr("alice@a.example"),
        bytes: format!(
            "From: bob@b.example\r\n\
To: alice@a.example\r\n\
Subject: {kind}\r\n\
Message-ID: <mdn-{kind}@b.example>\r\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\
\r\n\
--b--\r\n"
        )
        .into_bytes(),
        kind: kind.to_string(),
    }
}

/// A store where bob@b.example is local, with alice's message to him queued
/// inbound; returns his recipient row.
fn queued_for_bob(dir: &Path) -> (SqliteStore, RecipientId) {
    let store = open(dir);
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("bob@b.example"), &[]).unwrap();
    let message = store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            QUEUED,
            t(0),
        )
        .unwrap();
    let r = store.tracking(&mid("outer-1@a.example")).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].message, message);
    (store, r[0].id)
}

/// Rows in every table a filing writes: messages, queue, recipients,
/// mailbox, audit events.
fn counts(store: &SqliteStore) -> [i64; 5] {
    let conn = store.conn();
    ["messages", "queue", "recipients", "mailbox", "audit_events"].map(|table| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    })
}

/// The outbound notifications on the queue: (Message-ID, from, to, bytes).
fn notifications(store: &SqliteStore) -> Vec<(MessageId, DirectAddress, DirectAddress, Vec<u8>)> {
    store
        .queue(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.direction == MessageDirection::Outbound)
        .map(|e| {
            assert_eq!(e.expect, Expectation::Notification);
            assert_eq!(e.state, QueueState::Pending);
            assert_eq!(e.recipients.len(), 1);
            let body: Vec<u8> = store
                .conn()
                .query_row(
                    "SELECT body FROM messages WHERE id = ?1",
                    [e.message.0],
                    |r| r.get(0),
                )
                .unwrap();
            (
                e.message_id.unwrap(),
                e.envelope_from.unwrap(),
                e.recipients[0].address.clone(),
                body,
            )
        })
        .collect()
}

fn kinds(store: &SqliteStore, id: &str) -> Vec<AuditKind> {
    store
        .audit_events(&mid(id))
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect()
}

fn details(store: &SqliteStore, id: &str, kind: AuditKind) -> Vec<String> {
    store
        .audit_events(&mid(id))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.detail)
        .collect()
}

#[test]
fn a_filed_message_is_in_the_inbox_delivered_and_answered_with_the_filed_mdns() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    let (processed, dispatched, failed) = (mdn("processed"), mdn("dispatched"), mdn("failed"));
    let filing = store
        .file_inbound(
            bob,
            &addr("bob@b.example"),
            OPENED,
            t(5),
            &[processed.clone(), dispatched.clone()],
            std::slice::from_ref(&failed),
        )
        .unwrap();

    let inbox = store
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(filing, Filing::Filed(inbox[0].id));
    assert_eq!(inbox[0].received_at, t(5));
    assert_eq!(store.read_message(inbox[0].id).unwrap().bytes, OPENED);

    let r = store.recipient(bob).unwrap();
    assert_eq!(r.state, TrackingState::Delivered);
    assert_eq!(r.at(TrackingState::Delivered), Some(t(5)));
    assert_eq!(r.reason, None);

    // processed and dispatched, from the recipient to the sender, in order;
    // not failed.
    let queued = notifications(&store);
    let want: Vec<_> = [&processed, &dispatched]
        .iter()
        .map(|a| {
            (
                mid(&format!("mdn-{}@b.example", a.kind)),
                a.from.clone(),
                a.to.clone(),
                a.bytes.clone(),
            )
        })
        .collect();
    assert_eq!(queued, want);

    // The same events as deliver_to_mailbox, track and enqueue_expecting
    // write, and one MdnSent per answer about the queued message.
    assert_eq!(
        kinds(&store, "outer-1@a.example"),
        [
            AuditKind::Queued,
            AuditKind::Tracked,
            AuditKind::MdnSent,
            AuditKind::MdnSent
        ]
    );
    assert_eq!(
        details(&store, "outer-1@a.example", AuditKind::Tracked),
        ["bob@b.example: queued -> delivered"]
    );
    assert_eq!(
        details(&store, "1@a.example", AuditKind::Delivered),
        [format!(
            "mailbox bob@b.example folder inbox entry {}",
            inbox[0].id
        )]
    );
    let records: Vec<MessageRecordId> = store
        .queue(None)
        .unwrap()
        .iter()
        .filter(|e| e.direction == MessageDirection::Outbound)
        .map(|e| e.message)
        .collect();
    assert_eq!(
        details(&store, "outer-1@a.example", AuditKind::MdnSent),
        [
            format!(
                "processed MDN from bob@b.example to alice@a.example about \
                 <outer-1@a.example> queued as {}",
                records[0]
            ),
            format!(
                "dispatched MDN from bob@b.example to alice@a.example about \
                 <outer-1@a.example> queued as {}",
                records[1]
            ),
        ]
    );
    assert_eq!(
        details(&store, "mdn-processed@b.example", AuditKind::Queued),
        [format!(
            "outbound from bob@b.example to alice@a.example ({} bytes), expecting notification",
            processed.bytes.len()
        )]
    );
    assert!(store
        .audit_events(&mid("mdn-failed@b.example"))
        .unwrap()
        .is_empty());
}

#[test]
fn a_removed_address_fails_the_recipient_and_is_answered_with_the_missing_mdns() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    store.remove_address(&addr("bob@b.example")).unwrap();
    let (processed, dispatched, failed) = (mdn("processed"), mdn("dispatched"), mdn("failed"));
    let filing = store
        .file_inbound(
            bob,
            &addr("bob@b.example"),
            OPENED,
            t(5),
            std::slice::from_ref(&dispatched),
            &[processed.clone(), failed.clone()],
        )
        .unwrap();
    assert_eq!(filing, Filing::NoSuchAddress);

    let r = store.recipient(bob).unwrap();
    assert_eq!(r.state, TrackingState::Failed);
    assert_eq!(r.at(TrackingState::Failed), Some(t(5)));
    assert_eq!(
        r.reason.as_deref(),
        Some("bob@b.example: no such local address")
    );

    let queued: Vec<(MessageId, Vec<u8>)> = notifications(&store)
        .into_iter()
        .map(|(id, from, to, bytes)| {
            assert_eq!((from, to), (addr("bob@b.example"), addr("alice@a.example")));
            (id, bytes)
        })
        .collect();
    assert_eq!(
        queued,
        [
            (mid("mdn-processed@b.example"), processed.bytes),
            (mid("mdn-failed@b.example"), failed.bytes)
        ]
    );
    assert!(store
        .audit_events(&mid("mdn-dispatched@b.example"))
        .unwrap()
        .is_empty());

    let mailboxes: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM mailbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mailboxes, 0);
    assert!(kinds(&store, "1@a.example").is_empty(), "nothing delivered");
    let sent = details(&store, "outer-1@a.example", AuditKind::MdnSent);
    assert_eq!(sent.len(), 2);
    assert!(sent[0].starts_with("processed MDN from bob@b.example to alice@a.example"));
    assert!(sent[1].starts_with("failed MDN from bob@b.example to alice@a.example"));
}

#[test]
fn filing_a_delivered_recipient_again_is_already_done_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    let bob_address = addr("bob@b.example");
    let first = store
        .file_inbound(
            bob,
            &bob_address,
            OPENED,
            t(5),
            &[mdn("processed")],
            &[mdn("failed")],
        )
        .unwrap();
    assert!(matches!(first, Filing::Filed(_)));
    let before = counts(&store);
    // A second worker, after the first one's lease ran out.
    let again = store
        .file_inbound(
            bob,
            &bob_address,
            OPENED,
            t(70),
            &[mdn("processed")],
            &[mdn("failed")],
        )
        .unwrap();
    assert_eq!(again, Filing::AlreadyDone(TrackingState::Delivered));
    assert_eq!(counts(&store), before);
    assert_eq!(store.mailbox(&bob_address, Folder::Inbox).unwrap().len(), 1);
    assert_eq!(
        store.recipient(bob).unwrap().at(TrackingState::Delivered),
        Some(t(5))
    );
}

#[test]
fn filing_a_failed_recipient_again_is_already_done_even_once_the_address_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    let bob_address = addr("bob@b.example");
    store.remove_address(&bob_address).unwrap();
    let first = store
        .file_inbound(bob, &bob_address, OPENED, t(5), &[], &[mdn("failed")])
        .unwrap();
    assert_eq!(first, Filing::NoSuchAddress);
    store.add_address(&bob_address, &[]).unwrap();
    let before = counts(&store);
    let again = store
        .file_inbound(bob, &bob_address, OPENED, t(70), &[mdn("processed")], &[])
        .unwrap();
    assert_eq!(again, Filing::AlreadyDone(TrackingState::Failed));
    assert_eq!(counts(&store), before);
    assert!(store
        .mailbox(&bob_address, Folder::Inbox)
        .unwrap()
        .is_empty());
}

#[test]
fn a_failure_after_the_filing_and_the_first_mdn_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    // Refuse the second answer's message row only: by then the mailbox
    // entry, the tracking move and the first answer are written.
    store
        .conn()
        .execute_batch(
            "CREATE TEMP TRIGGER refuse_poison BEFORE INSERT ON messages
             WHEN NEW.message_id = 'mdn-poison@b.example'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
    let before = counts(&store);
    let err = store
        .file_inbound(
            bob,
            &addr("bob@b.example"),
            OPENED,
            t(5),
            &[mdn("processed"), mdn("poison")],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Database {
                context: "storing a message",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(counts(&store), before);
    assert_eq!(store.recipient(bob).unwrap().state, TrackingState::Queued);
    assert!(kinds(&store, "1@a.example").is_empty());
    assert!(store
        .audit_events(&mid("mdn-processed@b.example"))
        .unwrap()
        .is_empty());

    // Still queued, so the retry files it once.
    let filing = store
        .file_inbound(
            bob,
            &addr("bob@b.example"),
            OPENED,
            t(70),
            &[mdn("processed")],
            &[],
        )
        .unwrap();
    assert!(matches!(filing, Filing::Filed(_)));
    assert_eq!(notifications(&store).len(), 1);
}

#[test]
fn a_recipient_that_may_not_be_delivered_is_refused_after_the_inbox_write_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    // relayed -> delivered is no move TrackingState allows; the refusal
    // comes after the message went into the Inbox.
    store
        .track(bob, TrackingState::Relayed, t(1), None)
        .unwrap();
    let before = counts(&store);
    let err = store
        .file_inbound(
            bob,
            &addr("bob@b.example"),
            OPENED,
            t(5),
            &[mdn("processed")],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Transition {
                from: "relayed",
                to: "delivered"
            }
        ),
        "{err:?}"
    );
    assert_eq!(counts(&store), before);
    assert_eq!(store.recipient(bob).unwrap().state, TrackingState::Relayed);
}

#[test]
fn an_unknown_recipient_is_not_found_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, bob) = queued_for_bob(tmp.path());
    let before = counts(&store);
    let err = store
        .file_inbound(
            RecipientId(bob.0 + 100),
            &addr("bob@b.example"),
            OPENED,
            t(5),
            &[mdn("processed")],
            &[mdn("failed")],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: Entity::Recipient,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(counts(&store), before);
}
