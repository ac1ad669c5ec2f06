//! The SQLite store against a real file in a temporary directory: the
//! conformance suite of the `Store` trait (`conformance::...`), and what is
//! SQLite's own (the file and its modes, pragmas, migrations from older
//! schemas, query plans, and states made or checked with raw SQL).

mod audit_chain;
mod file;
mod filing;
mod migration;
mod portal_notice;
mod queue;
mod seam;
mod tracking;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub(super) use crate::conformance::{addr, ca_anchor, domain};
use crate::conformance::{Accounts, Backend, Rows};

use super::*;

/// The conformance suite against SQLite: `sqlite::tests::conformance::<part>::<case>`.
mod conformance {
    crate::conformance::suite!(super::SqliteDb);
}

/// SQLite as a backend of the conformance suite: `hisp.db` in a temporary
/// directory of its own, removed with it (or, in a child process, the
/// parent's directory, left in place).
pub(super) struct SqliteDb {
    dir: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl SqliteDb {
    /// A connection of the test's own on the file, for looking beneath the
    /// trait (reads only).
    fn peek(&self) -> Connection {
        Connection::open(self.dir.join(DB_FILE)).unwrap()
    }
}

impl Backend for SqliteDb {
    type Handle = SqliteStore;

    fn fresh() -> SqliteDb {
        let owned = tempfile::tempdir().unwrap();
        SqliteDb {
            dir: owned.path().to_path_buf(),
            _owned: Some(owned),
        }
    }

    fn open(&self) -> SqliteStore {
        SqliteStore::open_in(&self.dir).unwrap()
    }

    fn location(&self) -> String {
        self.dir.to_str().unwrap().to_string()
    }

    fn at(location: &str) -> SqliteDb {
        SqliteDb {
            dir: PathBuf::from(location),
            _owned: None,
        }
    }

    fn count(&self, rows: Rows) -> u64 {
        let sql = match rows {
            Rows::Messages => "SELECT count(*) FROM messages",
            Rows::Queue => "SELECT count(*) FROM queue",
            Rows::Recipients => "SELECT count(*) FROM recipients",
            Rows::Mailbox => "SELECT count(*) FROM mailbox",
            Rows::AuditEvents => "SELECT count(*) FROM audit_events",
            Rows::QuarantineCopies => "SELECT count(*) FROM quarantine WHERE body IS NOT NULL",
        };
        let n: i64 = self.peek().query_row(sql, [], |r| r.get(0)).unwrap();
        u64::try_from(n).unwrap()
    }

    fn message_bytes(&self, message: MessageRecordId) -> Vec<u8> {
        self.peek()
            .query_row(
                "SELECT body FROM messages WHERE id = ?1",
                [message.0],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn password_hashes(&self, accounts: Accounts) -> Vec<String> {
        let sql = match accounts {
            Accounts::Submission => "SELECT password_hash FROM users ORDER BY id",
            Accounts::Portal => "SELECT password_hash FROM portal_users ORDER BY id",
        };
        let conn = self.peek();
        let mut stmt = conn.prepare(sql).unwrap();
        let hashes = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<String>, _>>()
            .unwrap();
        hashes
    }
}

pub(super) fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open_in(dir).unwrap()
}

pub(super) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
