//! The e-mail notice of new secure mail (issue 11 item 9): queued in the
//! filing's transaction for an opted-in portal user only, never twice.

use time::OffsetDateTime;

use super::{addr, domain, Backend};
use crate::portal_user::EmailAddress;
use crate::{
    AuditCheck, AuditEvent, AuditFilter, AuditKind, Expectation, Filing, MessageDirection,
    MessageId, NewMailNotice, NotifySettings, QueueEntry, QueueState, RecipientId, Store,
    TrackingState,
};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

const QUEUED: &[u8] = b"From: alice@a.example\r\n\
To: bob@b.example\r\n\
Message-ID: <outer-1@a.example>\r\n\
\r\n\
(ciphertext)\r\n";

const OPENED: &[u8] = b"From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
\r\n\
hello\r\n";

/// A store where bob@b.example is local (with a portal account set as
/// `settings`, if any), with a message to him queued inbound.
fn queued_for_bob<B: Backend>(
    db: &B,
    settings: Option<NotifySettings>,
) -> (B::Handle, RecipientId) {
    let store = db.open();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("bob@b.example"), &[]).unwrap();
    if let Some(settings) = settings {
        store
            .add_portal_user(&addr("bob@b.example"), "a long password here", &settings)
            .unwrap();
    }
    store
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            QUEUED,
            t(0),
        )
        .unwrap();
    let r = store
        .tracking(&MessageId::parse("outer-1@a.example").unwrap())
        .unwrap();
    (store, r[0].id)
}

fn opted_in() -> NotifySettings {
    NotifySettings {
        notify: true,
        email: Some(EmailAddress::parse("bob.home@mail.example").unwrap()),
    }
}

fn compose(to: &EmailAddress) -> Vec<u8> {
    format!("From: no-reply@b.example\r\nTo: {to}\r\nSubject: New secure message\r\n\r\nsee the portal\r\n")
        .into_bytes()
}

fn file(store: &dyn Store, bob: RecipientId) -> Filing {
    let notice = NewMailNotice {
        from: addr("no-reply@b.example"),
        compose: &compose,
    };
    store
        .file_inbound_notifying(
            bob,
            &addr("bob@b.example"),
            OPENED,
            t(5),
            &[],
            &[],
            Some(&notice),
        )
        .unwrap()
}

fn portal_notices(store: &dyn Store) -> Vec<QueueEntry> {
    store
        .queue(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.expect == Expectation::PortalNotice)
        .collect()
}

fn audit_kinds(store: &dyn Store) -> Vec<AuditKind> {
    store
        .audit_export(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub(crate) fn an_opted_in_portal_user_gets_one_notice_queued_with_the_filing<B: Backend>(db: &B) {
    let (store, bob) = queued_for_bob(db, Some(opted_in()));
    assert!(matches!(file(&store, bob), Filing::Filed(_)));
    let notices = portal_notices(&store);
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(n.direction, MessageDirection::Outbound);
    assert_eq!(n.state, QueueState::Pending);
    assert_eq!(n.envelope_from, Some(addr("no-reply@b.example")));
    assert_eq!(n.recipients.len(), 1);
    assert_eq!(n.recipients[0].address, addr("bob.home@mail.example"));
    let body = db.message_bytes(n.message);
    assert_eq!(
        body,
        compose(&EmailAddress::parse("bob.home@mail.example").unwrap())
    );
    let queued: Vec<AuditEvent> = store
        .audit_export(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::NotificationQueued)
        .collect();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].address, Some(addr("bob@b.example")));
    assert!(
        queued[0].detail.contains("bob.home@mail.example"),
        "{}",
        queued[0].detail
    );
    // A notice expects no MDN: it never times out and its failure causes no DSN.
    assert!(store.overdue(t(1_000_000)).unwrap().is_empty());

    // A retry after the commit (a lapsed lease) files nothing and queues no
    // second notice.
    assert!(matches!(file(&store, bob), Filing::AlreadyDone(_)));
    assert_eq!(portal_notices(&store).len(), 1);

    // The smart host took it: relayed, and audited about bob's mailbox.
    let r = store
        .portal_notice_sent(n.recipients[0].id, t(9), "250 2.0.0 ok")
        .unwrap();
    assert_eq!(r.state, TrackingState::Relayed);
    let sent: Vec<AuditEvent> = store
        .audit_export(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::NotificationSent)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].address, Some(addr("bob@b.example")));
    assert_eq!(sent[0].message, Some(n.message));
    assert!(store.overdue(t(1_000_000)).unwrap().is_empty());
    assert!(store.unnotified_failures().unwrap().is_empty());
    assert!(matches!(
        store.verify_audit_chain().unwrap(),
        AuditCheck::Intact { .. }
    ));
}

pub(crate) fn no_notice_without_a_portal_account_an_address_notices_on_or_an_enabled_account<
    B: Backend,
>(
    _: &B,
) {
    let cases: [(&str, Option<NotifySettings>, bool); 4] = [
        ("no portal account", None, false),
        (
            "opted out",
            Some(NotifySettings {
                notify: false,
                ..opted_in()
            }),
            false,
        ),
        (
            "no e-mail address",
            Some(NotifySettings {
                notify: true,
                email: None,
            }),
            false,
        ),
        ("disabled account", Some(opted_in()), true),
    ];
    for (case, settings, disable) in cases {
        let db = B::fresh();
        let (store, bob) = queued_for_bob(&db, settings);
        if disable {
            store.disable_portal_user(&addr("bob@b.example")).unwrap();
        }
        assert!(matches!(file(&store, bob), Filing::Filed(_)), "{case}");
        assert!(portal_notices(&store).is_empty(), "{case}");
        assert!(
            !audit_kinds(&store).contains(&AuditKind::NotificationQueued),
            "{case}"
        );
    }
}

pub(crate) fn filing_without_a_notice_queues_none_even_for_an_opted_in_user<B: Backend>(db: &B) {
    let (store, bob) = queued_for_bob(db, Some(opted_in()));
    let filing = store
        .file_inbound(bob, &addr("bob@b.example"), OPENED, t(5), &[], &[])
        .unwrap();
    assert!(matches!(filing, Filing::Filed(_)));
    assert!(portal_notices(&store).is_empty());
}
