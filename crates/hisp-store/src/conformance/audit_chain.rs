//! The audit chain: every event hashed over the one before it, verified
//! after real activity, and exported by the address an event concerns.

use time::OffsetDateTime;

use super::{addr, domain, Backend, Rows};
use crate::audit::{AuditCheck, AuditFilter};
use crate::portal_user::NotifySettings;
use crate::{AuditKind, Folder, MessageDirection, Store};

pub(crate) const MESSAGE: &[u8] = b"From: Alice <alice@a.example>\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
\r\n\
hello\r\n";

pub(crate) fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

/// A store of `db` with some of everything audited in it ([`fill`]).
fn busy_store<B: Backend>(db: &B) -> B::Handle {
    let store = db.open();
    fill(&store);
    store
}

/// Writes some of everything audited: mail queued, delivered, read, moved,
/// a portal account and its logins.
pub(crate) fn fill(store: &dyn Store) {
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("bob@b.example"), &[]).unwrap();
    store.add_address(&addr("carol@b.example"), &[]).unwrap();
    store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            MESSAGE,
            t(0),
        )
        .unwrap();
    let id = store
        .deliver_to_mailbox(&addr("bob@b.example"), MESSAGE, Folder::Inbox, t(1))
        .unwrap();
    store.mark_read(id).unwrap();
    store.move_to(id, Folder::Disregarded).unwrap();
    store
        .add_portal_user(
            &addr("carol@b.example"),
            "correct horse battery staple",
            &NotifySettings::default(),
        )
        .unwrap();
    let _ = store.verify_portal_login(&addr("carol@b.example"), "wrong wrong wrong");
}

pub(crate) fn the_chain_of_a_store_after_real_activity_verifies<B: Backend>(db: &B) {
    let store = busy_store(db);
    let n = db.count(Rows::AuditEvents) as i64;
    assert_eq!(
        n, 6,
        "queued, delivered, read, moved, portal-user-added, login-failed"
    );
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { events: n as u64 }
    );
    let all = store.audit_export(&AuditFilter::default()).unwrap();
    assert_eq!(all.len() as i64, n);
    assert!(all.iter().all(|e| e.hash.is_some()));
    let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=n).collect::<Vec<_>>(),
        "oldest first, numbered in order"
    );
}

pub(crate) fn export_selects_by_the_address_an_event_concerns<B: Backend>(db: &B) {
    let store = busy_store(db);
    let bob: Vec<AuditKind> = store
        .audit_export(&AuditFilter {
            address: Some(addr("BOB@b.example")),
            since: None,
        })
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    // The queue event names no address but is about mail to bob.
    assert_eq!(
        bob,
        [
            AuditKind::Queued,
            AuditKind::Delivered,
            AuditKind::Read,
            AuditKind::Moved
        ]
    );
    let alice: Vec<AuditKind> = store
        .audit_export(&AuditFilter {
            address: Some(addr("alice@a.example")),
            since: None,
        })
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        alice,
        [AuditKind::Queued],
        "the sender of the queued message"
    );
    let carol = store
        .audit_export(&AuditFilter {
            address: Some(addr("carol@b.example")),
            since: None,
        })
        .unwrap();
    assert_eq!(
        carol.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [AuditKind::PortalUserAdded, AuditKind::LoginFailed]
    );
    assert!(carol
        .iter()
        .all(|e| e.address == Some(addr("carol@b.example"))));
}
