//! The conformance suite of the `Store` trait against PostgreSQL:
//! `postgres::conformance::<part>::<case>`, every case SQLite runs, on a
//! fresh database of the test process's own server (`hisp-testpg`) each.

use ::postgres::{Client, NoTls};
use hisp_testpg::TestDatabase;

use super::{PostgresStore, PostgresUrl};
use crate::conformance::{Accounts, Backend, Rows};
use crate::MessageRecordId;

crate::conformance::suite!(PostgresDb);

/// Connections each store of a case may open: enough for the cases that
/// write from several threads through one store, few enough for every
/// store of the cases running at once.
const POOL_SIZE: u32 = 4;

/// PostgreSQL as a backend of the conformance suite: a fresh database,
/// dropped with the value (or, in a child process, the parent's database,
/// left in place).
pub(super) struct PostgresDb {
    url: String,
    password: String,
    _owned: Option<TestDatabase>,
}

impl PostgresDb {
    /// A store of the instance named `instance`.
    pub(super) fn open_as(&self, instance: &str) -> PostgresStore {
        let url = PostgresUrl::parse(&format!("{}?sslmode=disable", self.url)).unwrap();
        PostgresStore::open(&url, Some(&self.password), POOL_SIZE, instance).unwrap()
    }

    /// A connection of the test's own, for looking beneath the trait.
    fn peek(&self) -> Client {
        let mut config: ::postgres::Config = self.url.parse().unwrap();
        config.password(&self.password);
        config.connect(NoTls).unwrap()
    }
}

impl Backend for PostgresDb {
    type Handle = PostgresStore;

    fn fresh() -> PostgresDb {
        let db = TestDatabase::new();
        PostgresDb {
            url: db.url(),
            password: db.password().to_string(),
            _owned: Some(db),
        }
    }

    fn open(&self) -> PostgresStore {
        // Each store another instance, as another process would be.
        self.open_as(&format!("test-{}", rand::random::<u64>()))
    }

    fn location(&self) -> String {
        format!("{}\n{}", self.url, self.password)
    }

    fn at(location: &str) -> PostgresDb {
        let (url, password) = location.split_once('\n').unwrap();
        PostgresDb {
            url: url.to_string(),
            password: password.to_string(),
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
        let n: i64 = self.peek().query_one(sql, &[]).unwrap().get(0);
        u64::try_from(n).unwrap()
    }

    fn message_bytes(&self, message: MessageRecordId) -> Vec<u8> {
        self.peek()
            .query_one("SELECT body FROM messages WHERE id = $1", &[&message.0])
            .unwrap()
            .get(0)
    }

    fn password_hashes(&self, accounts: Accounts) -> Vec<String> {
        let sql = match accounts {
            Accounts::Submission => "SELECT password_hash FROM users ORDER BY id",
            Accounts::Portal => "SELECT password_hash FROM portal_users ORDER BY id",
        };
        self.peek()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}
