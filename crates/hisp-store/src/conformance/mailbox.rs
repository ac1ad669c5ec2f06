//! Mailboxes and quarantine: nothing a user does deletes mail.

use time::OffsetDateTime;

use super::{addr, domain, Backend, Rows};
use crate::error::Entity;
use crate::{
    AuditKind, Envelope, Folder, MessageDirection, MessageId, MessageRecordId, QuarantineId,
    QuarantineReason, Store, StoreError,
};

const MESSAGE: &[u8] = b"From: Alice <alice@a.example>\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
\r\n\
hello\r\n";

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn with_bob<B: Backend>(db: &B) -> B::Handle {
    let store = db.open();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("Bob@b.example"), &[]).unwrap();
    store
}

pub(crate) fn a_delivered_message_is_listed_unread_with_its_header_summary<B: Backend>(db: &B) {
    let store = with_bob(db);
    let id = store
        .deliver_to_mailbox(&addr("bob@b.example"), MESSAGE, Folder::Inbox, t(0))
        .unwrap();
    let list = store
        .mailbox(&addr("BOB@b.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(list.len(), 1);
    let e = &list[0];
    assert_eq!(e.id, id);
    assert_eq!(e.from.as_deref(), Some("Alice <alice@a.example>"));
    assert_eq!(e.subject.as_deref(), Some("lab results"));
    assert_eq!(e.date.map(|d| d.unix_timestamp()), Some(1_704_067_200));
    assert_eq!(e.message_id, Some(MessageId::parse("1@a.example").unwrap()));
    assert_eq!(e.size, MESSAGE.len() as u64);
    assert!(e.unread);
    assert_eq!(e.received_at, t(0));
    assert_eq!(store.read_message(id).unwrap().bytes, MESSAGE);
    assert!(store
        .mailbox(&addr("bob@b.example"), Folder::Sent)
        .unwrap()
        .is_empty());
}

pub(crate) fn mark_read_clears_unread_once<B: Backend>(db: &B) {
    let store = with_bob(db);
    let id = store
        .deliver_to_mailbox(&addr("bob@b.example"), MESSAGE, Folder::Inbox, t(0))
        .unwrap();
    assert!(
        store.read_message(id).unwrap().entry.unread,
        "reading is not marking"
    );
    store.mark_read(id).unwrap();
    store.mark_read(id).unwrap();
    assert!(!store.read_message(id).unwrap().entry.unread);
    let kinds: Vec<AuditKind> = store
        .audit_events(&MessageId::parse("1@a.example").unwrap())
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [AuditKind::Delivered, AuditKind::Read]);
}

pub(crate) fn disregard_moves_and_deletes_nothing<B: Backend>(db: &B) {
    let store = with_bob(db);
    let bob = addr("bob@b.example");
    let inbox = store
        .deliver_to_mailbox(&bob, MESSAGE, Folder::Inbox, t(0))
        .unwrap();
    let sent = store
        .deliver_to_mailbox(&bob, MESSAGE, Folder::Sent, t(1))
        .unwrap();
    store.move_to(inbox, Folder::Disregarded).unwrap();
    store.move_to(sent, Folder::Disregarded).unwrap();
    assert!(store.mailbox(&bob, Folder::Inbox).unwrap().is_empty());
    assert_eq!(store.mailbox(&bob, Folder::Disregarded).unwrap().len(), 2);
    assert_eq!(db.count(Rows::Mailbox), 2);
    // Back only to where each came from.
    let err = store.move_to(sent, Folder::Inbox).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid folder move 'disregarded -> inbox': a message moves only to disregarded \
         and back to where it came from (sent)"
    );
    assert_eq!(
        store.move_to(sent, Folder::Sent).unwrap().folder,
        Folder::Sent
    );
    assert_eq!(
        store.move_to(inbox, Folder::Inbox).unwrap().folder,
        Folder::Inbox
    );
    assert!(store.move_to(inbox, Folder::Sent).is_err());
    assert_eq!(db.count(Rows::Mailbox), 2);
}

pub(crate) fn mail_goes_only_to_local_addresses_and_not_straight_to_disregarded<B: Backend>(
    db: &B,
) {
    let store = with_bob(db);
    match store.deliver_to_mailbox(&addr("carol@b.example"), MESSAGE, Folder::Inbox, t(0)) {
        Err(StoreError::NotFound {
            entity: Entity::Address,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(store
        .deliver_to_mailbox(&addr("bob@b.example"), MESSAGE, Folder::Disregarded, t(0))
        .is_err());
    assert_eq!(db.count(Rows::Mailbox), 0);
}

pub(crate) fn mail_outlives_the_removal_of_its_address<B: Backend>(db: &B) {
    let store = with_bob(db);
    store
        .deliver_to_mailbox(&addr("bob@b.example"), MESSAGE, Folder::Inbox, t(0))
        .unwrap();
    store.remove_address(&addr("bob@b.example")).unwrap();
    assert_eq!(
        store
            .mailbox(&addr("bob@b.example"), Folder::Inbox)
            .unwrap()
            .len(),
        1
    );
}

pub(crate) fn quarantine_keeps_the_message_the_reason_and_the_envelope<B: Backend>(db: &B) {
    let store = db.open();
    let envelope = Envelope {
        from: Some(addr("alice@a.example")),
        recipients: vec![addr("bob@b.example"), addr("carol@b.example")],
        received_at: t(5),
    };
    let id = store
        .quarantine(
            MESSAGE,
            QuarantineReason::Untrusted,
            "signer CN=alice (serial 1f) chains to no incoming anchor of b.example",
            &envelope,
        )
        .unwrap();
    let list = store.quarantined().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].reason, QuarantineReason::Untrusted);
    assert_eq!(list[0].envelope, envelope);
    assert_eq!(
        list[0].message_id,
        Some(MessageId::parse("1@a.example").unwrap())
    );
    let full = store.quarantined_message(id).unwrap();
    assert_eq!(full.bytes, MESSAGE);
    assert_eq!(full.record, list[0]);
    let events = store
        .audit_events(&MessageId::parse("1@a.example").unwrap())
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, AuditKind::Quarantined);
    assert!(store
        .quarantined_message(QuarantineId(99))
        .unwrap_err()
        .is_not_found());
}

pub(crate) fn quarantining_a_queued_message_refers_to_it_without_a_copy<B: Backend>(db: &B) {
    let store = db.open();
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
    let id = store
        .quarantine_queued(record, QuarantineReason::Untrusted, "no anchor", &envelope)
        .unwrap();
    let full = store.quarantined_message(id).unwrap();
    assert_eq!(full.bytes, MESSAGE);
    assert_eq!(full.record.envelope, envelope);
    assert_eq!(full.record.size, MESSAGE.len() as u64);
    assert_eq!(
        full.record.message_id,
        Some(MessageId::parse("1@a.example").unwrap())
    );
    assert_eq!(
        db.count(Rows::QuarantineCopies),
        0,
        "no second copy of the bytes"
    );
    assert!(store
        .quarantine_queued(
            MessageRecordId(99),
            QuarantineReason::Untrusted,
            "x",
            &envelope
        )
        .unwrap_err()
        .is_not_found());
}

pub(crate) fn a_copy_is_filed_once_per_folder_by_its_message_id_even_once_moved<B: Backend>(
    db: &B,
) {
    let store = with_bob(db);
    let bob = addr("bob@b.example");
    let first = store
        .deliver_to_mailbox_once(&addr("BOB@b.example"), MESSAGE, Folder::Sent, t(0))
        .unwrap()
        .expect("the first copy is filed");
    assert_eq!(
        store
            .deliver_to_mailbox_once(&bob, MESSAGE, Folder::Sent, t(1))
            .unwrap(),
        None
    );
    store.move_to(first, Folder::Disregarded).unwrap();
    assert_eq!(
        store
            .deliver_to_mailbox_once(&bob, MESSAGE, Folder::Sent, t(2))
            .unwrap(),
        None,
        "a copy the owner moved away still counts"
    );
    // Another folder, or another Message-ID, is another copy.
    assert!(store
        .deliver_to_mailbox_once(&bob, MESSAGE, Folder::Inbox, t(3))
        .unwrap()
        .is_some());
    let other = String::from_utf8_lossy(MESSAGE).replace("<1@a.example>", "<2@a.example>");
    assert!(store
        .deliver_to_mailbox_once(&bob, other.as_bytes(), Folder::Sent, t(4))
        .unwrap()
        .is_some());
    // Without a Message-ID there is nothing to know it by: always filed.
    let bare = String::from_utf8_lossy(MESSAGE).replace("Message-ID: <1@a.example>\r\n", "");
    for at in 5..7 {
        assert!(store
            .deliver_to_mailbox_once(&bob, bare.as_bytes(), Folder::Sent, t(at))
            .unwrap()
            .is_some());
    }
    assert_eq!(db.count(Rows::Mailbox), 5);
}
