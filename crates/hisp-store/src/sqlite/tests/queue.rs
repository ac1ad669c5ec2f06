//! The queue's SQLite indexes. (What the queue does is in the conformance
//! suite, `conformance::queue`.)

use super::*;

#[test]
fn the_message_id_is_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let plan: String = store
        .conn()
        .query_row(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE message_id = '1@a.example'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("messages_message_id"), "{plan}");
}
