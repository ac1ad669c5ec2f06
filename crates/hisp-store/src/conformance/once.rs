//! Messages queued once under a name (`enqueue_once`, `queued_once`).

use time::OffsetDateTime;

use super::{addr, Backend};
use crate::{Expectation, MessageDirection, MessageRecordId, Store, StoreError};

const WELCOME: &[u8] = b"From: doc@b.example\r\n\
To: pat@a.example\r\n\
Subject: welcome\r\n\
Message-ID: <w@b.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
\r\n\
hello\r\n";

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn once(store: &dyn Store, mark: &str, secs: i64) -> Option<MessageRecordId> {
    store
        .enqueue_once(
            mark,
            MessageDirection::Outbound,
            Some(&addr("doc@b.example")),
            &[addr("pat@a.example")],
            WELCOME,
            at(secs),
            Expectation::Mail {
                final_delivery: true,
            },
        )
        .unwrap()
}

pub(crate) fn a_message_is_queued_once_under_its_mark_and_again_under_another<B: Backend>(db: &B) {
    let store = db.open();
    assert_eq!(store.queued_once("welcome").unwrap(), None);
    let first = once(&store, "welcome", 0).expect("queued the first time");
    assert_eq!(store.queued_once("welcome").unwrap(), Some(first));
    assert_eq!(once(&store, "welcome", 5), None, "nothing queued again");
    assert_eq!(store.queue(None).unwrap().len(), 1);
    let other = once(&store, "another", 6).expect("another mark queues");
    assert_ne!(other, first);
    assert_eq!(store.queue(None).unwrap().len(), 2);
}

pub(crate) fn the_mark_outlives_the_store_being_opened_again<B: Backend>(db: &B) {
    let first = once(&db.open(), "welcome", 0).unwrap();
    let store = db.open();
    assert_eq!(store.queued_once("welcome").unwrap(), Some(first));
    assert_eq!(once(&store, "welcome", 1), None);
    assert_eq!(store.queue(None).unwrap().len(), 1);
}

/// The mark and the message are one transaction: a refused enqueue (no
/// recipients) leaves no mark, so the next try queues it.
pub(crate) fn a_refused_enqueue_leaves_no_mark<B: Backend>(db: &B) {
    let store = db.open();
    let e = store
        .enqueue_once(
            "welcome",
            MessageDirection::Outbound,
            Some(&addr("doc@b.example")),
            &[],
            WELCOME,
            at(0),
            Expectation::default(),
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    assert_eq!(store.queued_once("welcome").unwrap(), None);
    assert!(once(&store, "welcome", 1).is_some());
}

pub(crate) fn an_empty_mark_is_refused<B: Backend>(db: &B) {
    let store = db.open();
    let e = store.queued_once(" ").unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
}
