//! A mailbox as its owner sees it: own entries only, unread counts,
//! disregard and restore, retention against a passed-in clock, and the
//! correspondents the owner may answer.

use time::{Duration, OffsetDateTime};

use super::{addr, domain, Backend};
use crate::mailbox_view::MailboxView;
use crate::{AuditCheck, AuditFilter, AuditKind, Folder, MailboxEntryId, MessageId, Store};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn message(from: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: bob@b.example\r\nSubject: note {id}\r\n\
         Message-ID: <{id}>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhello\r\n"
    )
    .into_bytes()
}

const DSN: &[u8] = b"From: postmaster@b.example\r\n\
To: bob@b.example\r\n\
Subject: Delivery Status Notification (Failure)\r\n\
Message-ID: <dsn-1@b.example>\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\
\r\n\
--x--\r\n";

/// bob and carol at b.example.
fn with_bob_and_carol<B: Backend>(db: &B) -> B::Handle {
    let store = db.open();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("bob@b.example"), &[]).unwrap();
    store.add_address(&addr("carol@b.example"), &[]).unwrap();
    store
}

fn view(secs: i64) -> MailboxView {
    MailboxView::new(t(secs), 30)
}

fn counts(store: &dyn Store, owner: &str, v: &MailboxView) -> Vec<(Folder, u64, u64)> {
    store
        .folder_counts(&addr(owner), v)
        .unwrap()
        .into_iter()
        .map(|c| (c.folder, c.total, c.unread))
        .collect()
}

pub(crate) fn new_mail_is_unread_sent_copies_are_read_and_counts_follow_reading<B: Backend>(
    db: &B,
) {
    let store = with_bob_and_carol(db);
    let bob = addr("bob@b.example");
    let first = store
        .deliver_to_mailbox(
            &bob,
            &message("alice@a.example", "1@a.example"),
            Folder::Inbox,
            t(0),
        )
        .unwrap();
    let second = store
        .deliver_to_mailbox(
            &bob,
            &message("alice@a.example", "2@a.example"),
            Folder::Inbox,
            t(1),
        )
        .unwrap();
    store
        .deliver_to_mailbox(
            &bob,
            &message("bob@b.example", "3@b.example"),
            Folder::Sent,
            t(2),
        )
        .unwrap();
    let v = view(10);
    assert_eq!(
        counts(&store, "BOB@b.example", &v),
        [
            (Folder::Inbox, 2, 2),
            (Folder::Sent, 1, 0),
            (Folder::Disregarded, 0, 0)
        ]
    );
    let listed: Vec<MailboxEntryId> = store
        .folder_view(&bob, Folder::Inbox, &v)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(listed, [second, first], "newest first");

    let opened = store.open_message(&bob, first, &v).unwrap();
    assert_eq!(opened.bytes, message("alice@a.example", "1@a.example"));
    assert!(!opened.entry.unread);
    store.open_message(&bob, first, &v).unwrap();
    assert!(!store.mark_read_in_view(&bob, second, &v).unwrap().unread);
    assert_eq!(
        counts(&store, "bob@b.example", &v)[0],
        (Folder::Inbox, 2, 0)
    );
    let kinds: Vec<AuditKind> = store
        .audit_events(&MessageId::parse("1@a.example").unwrap())
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [AuditKind::Delivered, AuditKind::Read], "read once");
}

pub(crate) fn another_mailboxs_entry_is_not_found_by_every_call<B: Backend>(db: &B) {
    let store = with_bob_and_carol(db);
    let bobs = store
        .deliver_to_mailbox(
            &addr("bob@b.example"),
            &message("alice@a.example", "1@a.example"),
            Folder::Inbox,
            t(0),
        )
        .unwrap();
    let carol = addr("carol@b.example");
    let v = view(10);
    assert!(store
        .view_entry(&carol, bobs, &v)
        .unwrap_err()
        .is_not_found());
    assert!(store
        .open_message(&carol, bobs, &v)
        .unwrap_err()
        .is_not_found());
    assert!(store
        .mark_read_in_view(&carol, bobs, &v)
        .unwrap_err()
        .is_not_found());
    assert!(store
        .disregard(&carol, bobs, &v)
        .unwrap_err()
        .is_not_found());
    assert!(store.restore(&carol, bobs, &v).unwrap_err().is_not_found());
    let entry = store.read_message(bobs).unwrap().entry;
    assert!(entry.unread, "untouched");
    assert_eq!(entry.folder, Folder::Inbox);
    assert!(counts(&store, "carol@b.example", &v)
        .iter()
        .all(|(_, total, _)| *total == 0));
}

pub(crate) fn disregard_and_restore_move_an_entry_out_and_back_audited<B: Backend>(db: &B) {
    let store = with_bob_and_carol(db);
    let bob = addr("bob@b.example");
    let id = store
        .deliver_to_mailbox(
            &bob,
            &message("alice@a.example", "1@a.example"),
            Folder::Inbox,
            t(0),
        )
        .unwrap();
    let v = view(10);
    let err = store.restore(&bob, id, &v).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid folder move 'inbox -> restore': only a disregarded message can be restored"
    );
    assert_eq!(
        store.disregard(&bob, id, &v).unwrap().folder,
        Folder::Disregarded
    );
    assert_eq!(
        counts(&store, "bob@b.example", &v),
        [
            (Folder::Inbox, 0, 0),
            (Folder::Sent, 0, 0),
            (Folder::Disregarded, 1, 1)
        ]
    );
    assert_eq!(store.restore(&bob, id, &v).unwrap().folder, Folder::Inbox);
    let moves: Vec<String> = store
        .audit_events(&MessageId::parse("1@a.example").unwrap())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::Moved)
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        moves,
        [
            format!("mailbox bob@b.example entry {id}: inbox -> disregarded"),
            format!("mailbox bob@b.example entry {id}: disregarded -> inbox"),
        ]
    );
}

pub(crate) fn entries_leave_every_view_retention_days_after_arrival_and_stay_in_the_store<
    B: Backend,
>(
    db: &B,
) {
    let store = with_bob_and_carol(db);
    let bob = addr("bob@b.example");
    let old = store
        .deliver_to_mailbox(
            &bob,
            &message("alice@a.example", "1@a.example"),
            Folder::Inbox,
            t(0),
        )
        .unwrap();
    let sent = store
        .deliver_to_mailbox(
            &bob,
            &message("bob@b.example", "2@b.example"),
            Folder::Sent,
            t(0),
        )
        .unwrap();
    let young = store
        .deliver_to_mailbox(
            &bob,
            &message("alice@a.example", "3@a.example"),
            Folder::Inbox,
            t(86_400),
        )
        .unwrap();
    let day = 86_400;
    let just_before = view(30 * day - 1);
    assert_eq!(
        store
            .folder_view(&bob, Folder::Inbox, &just_before)
            .unwrap()
            .len(),
        2
    );
    let after = MailboxView::new(t(0) + Duration::days(30), 30);
    let ids: Vec<MailboxEntryId> = store
        .folder_view(&bob, Folder::Inbox, &after)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [young]);
    assert!(store
        .folder_view(&bob, Folder::Sent, &after)
        .unwrap()
        .is_empty());
    assert_eq!(
        counts(&store, "bob@b.example", &after)[0],
        (Folder::Inbox, 1, 1)
    );
    assert_eq!(
        counts(&store, "bob@b.example", &after)[1],
        (Folder::Sent, 0, 0)
    );
    for id in [old, sent] {
        assert!(store
            .view_entry(&bob, id, &after)
            .unwrap_err()
            .is_not_found());
        assert!(store
            .open_message(&bob, id, &after)
            .unwrap_err()
            .is_not_found());
        assert!(store
            .disregard(&bob, id, &after)
            .unwrap_err()
            .is_not_found());
        assert_eq!(store.read_message(id).unwrap().entry.id, id, "still stored");
    }
    assert_eq!(store.mailbox(&bob, Folder::Inbox).unwrap().len(), 2);
}

pub(crate) fn correspondents_are_who_wrote_to_the_owner_newest_first_with_names<B: Backend>(
    db: &B,
) {
    let store = with_bob_and_carol(db);
    let bob = addr("bob@b.example");
    let deliver = |from: &str, id: &str, folder: Folder, at: i64| {
        store
            .deliver_to_mailbox(&bob, &message(from, id), folder, t(at))
            .unwrap()
    };
    deliver(
        "Dr Alice <alice@a.example>",
        "1@a.example",
        Folder::Inbox,
        0,
    );
    deliver("dave@d.example", "2@d.example", Folder::Inbox, 1);
    let latest = deliver("ALICE@a.example", "3@a.example", Folder::Inbox, 2);
    // Mail bob sent, bob writing to himself and a report are no correspondents.
    deliver("bob@b.example", "4@b.example", Folder::Sent, 3);
    deliver("Bob <bob@b.example>", "5@b.example", Folder::Inbox, 4);
    deliver("not an address", "6@x", Folder::Inbox, 5);
    store
        .deliver_to_mailbox(&bob, DSN, Folder::Inbox, t(6))
        .unwrap();
    store.disregard(&bob, latest, &view(10)).unwrap();

    let list: Vec<(String, Option<String>, OffsetDateTime)> = store
        .correspondents(&addr("BOB@b.example"))
        .unwrap()
        .into_iter()
        .map(|c| (c.address.to_string(), c.name, c.last_at))
        .collect();
    assert_eq!(
        list,
        [
            (
                "ALICE@a.example".to_string(),
                Some("Dr Alice".to_string()),
                t(2)
            ),
            ("dave@d.example".to_string(), None, t(1)),
        ]
    );
    assert!(store
        .correspondents(&addr("carol@b.example"))
        .unwrap()
        .is_empty());
}

pub(crate) fn a_refused_delete_is_audited_for_the_owner_and_leaves_the_entry_as_it_was<
    B: Backend,
>(
    db: &B,
) {
    let store = with_bob_and_carol(db);
    let bob = addr("bob@b.example");
    let id = store
        .deliver_to_mailbox(
            &bob,
            &message("alice@a.example", "del-1@a.example"),
            Folder::Inbox,
            t(0),
        )
        .unwrap();
    let refused = |who: &str| {
        store
            .audit_export(&AuditFilter {
                since: None,
                address: Some(addr(who)),
            })
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == AuditKind::DeleteRefused)
            .collect::<Vec<_>>()
    };
    // Another mailbox's entry, or one past retention: not found, nothing written.
    assert!(store
        .refuse_delete(&addr("carol@b.example"), id, &view(10))
        .unwrap_err()
        .is_not_found());
    assert!(store
        .refuse_delete(&bob, id, &view(31 * 86_400))
        .unwrap_err()
        .is_not_found());
    assert!(refused("bob@b.example").is_empty());
    assert!(refused("carol@b.example").is_empty());

    let entry = store.refuse_delete(&bob, id, &view(10)).unwrap();
    assert_eq!(
        (entry.id, entry.folder, entry.unread),
        (id, Folder::Inbox, true)
    );
    let events = refused("bob@b.example");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].address, Some(bob.clone()));
    assert_eq!(
        events[0].message_id.as_ref().map(|m| m.to_string()),
        Some("<del-1@a.example>".to_string())
    );
    assert!(events[0].detail.contains("refused"), "{}", events[0].detail);
    let after = store.read_message(id).unwrap().entry;
    assert_eq!((after.folder, after.unread), (Folder::Inbox, true));
    assert!(matches!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { .. }
    ));
}
