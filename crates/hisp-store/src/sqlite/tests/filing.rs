//! A filing that fails midway, made to fail by a trigger of the test's on
//! the store's connection. (What filing does is in the conformance suite,
//! `conformance::filing`.)

use super::*;
use crate::conformance::filing::{
    counts, kinds, mdn, mid, notifications, queued_for_bob, t, OPENED,
};

#[test]
fn a_failure_after_the_filing_and_the_first_mdn_leaves_nothing_behind() {
    let db = SqliteDb::fresh();
    let (store, bob) = queued_for_bob(&db);
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
    let before = counts(&db);
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
    assert_eq!(counts(&db), before);
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
    assert_eq!(notifications(&db, &store).len(), 1);
}
