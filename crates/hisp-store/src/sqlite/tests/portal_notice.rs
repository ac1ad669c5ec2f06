//! Databases from before schema version 6 keep what each message expects.
//! (The notice of new secure mail is in the conformance suite,
//! `conformance::portal_notice`.)

use super::*;

#[test]
fn upgrading_from_version_5_keeps_what_each_message_expects_and_its_subject() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE);
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        crate::sqlite::migrations::migrate_to(&mut conn, &path, 5).unwrap();
        for (id, expect, subject) in [
            (1, "mail-final-delivery", Some("old results")),
            (2, "notification", None),
        ] {
            conn.execute(
                "INSERT INTO messages (id, direction, message_id, envelope_from, received_at, size, body)
                 VALUES (?1, 'outbound', ?2, 'alice@a.example', 0, 1, x'41')",
                (id, format!("{id}@a.example")),
            )
            .unwrap();
            conn.execute(
                "INSERT INTO message_tracking (message, expect, subject) VALUES (?1, ?2, ?3)",
                (id, expect, subject),
            )
            .unwrap();
        }
    }
    let store = open(tmp.path());
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let rows: Vec<(i64, String, Option<String>)> = {
        let conn = store.conn();
        let mut stmt = conn
            .prepare("SELECT message, expect, subject FROM message_tracking ORDER BY message")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        rows,
        [
            (1, "mail-final-delivery".into(), Some("old results".into())),
            (2, "notification".into(), None)
        ]
    );
}
