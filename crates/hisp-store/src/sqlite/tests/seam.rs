//! The generic operations' answer when a primitive finds the row changed
//! under it: what a backend without SQLite's one writer (PostgreSQL under
//! READ COMMITTED) meets when another instance moved a recipient first.
//! SQLite never races there, so a temporary trigger of the test's makes
//! the move touch no row.

use super::*;
use crate::conformance::tracking::{kinds, mid, send, t, MAIL};

#[test]
fn a_move_another_transaction_made_first_is_refused_and_not_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    send(
        &store,
        1,
        Some("alice@a.example"),
        &["bob@b.example"],
        t(0),
        MAIL,
    );
    let bob = store.tracking(&mid("1@a.example")).unwrap()[0].id;
    store
        .conn()
        .execute_batch(
            "CREATE TEMP TRIGGER moved_elsewhere BEFORE UPDATE OF state ON recipients
             BEGIN SELECT RAISE(IGNORE); END;",
        )
        .unwrap();
    let err = store
        .track(bob, TrackingState::Relayed, t(5), Some("250 ok"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Transition {
                from: "queued",
                to: "relayed"
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.recipient(bob).unwrap().state, TrackingState::Queued);
    assert_eq!(kinds(&store, 1), [AuditKind::Queued]);

    store
        .conn()
        .execute_batch("DROP TRIGGER moved_elsewhere;")
        .unwrap();
    let moved = store
        .track(bob, TrackingState::Relayed, t(6), Some("250 ok"))
        .unwrap();
    assert_eq!(moved.state, TrackingState::Relayed);
    assert_eq!(kinds(&store, 1), [AuditKind::Queued, AuditKind::Tracked]);
}
