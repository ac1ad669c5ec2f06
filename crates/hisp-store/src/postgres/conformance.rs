//! The conformance suite of the `Store` trait against PostgreSQL:
//! `postgres::conformance::<part>::<case>`, every case SQLite runs, on a
//! fresh database of the test process's own server (`hisp-testpg`) each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::{Client, NoTls};
use hisp_testpg::{Server, TestDatabase, TEST_ROLE};

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
    _owned: Option<CaseDatabase>,
}

/// The database of one case: a copy (`CREATE DATABASE ... TEMPLATE`) of one
/// migrated once per test process, so a case starts with the schema in
/// place without running the migrations again; dropped with the value.
struct CaseDatabase {
    name: String,
}

impl CaseDatabase {
    fn new() -> CaseDatabase {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let template = template();
        let name = format!(
            "hisp_case_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = Server::shared().admin("postgres");
        let create = format!("CREATE DATABASE {name} TEMPLATE {template} OWNER {TEST_ROLE}");
        let mut attempts = 0;
        // 55006: the migration's connections to the template may take a
        // moment to end after the pool closed them.
        while let Err(e) = admin.batch_execute(&create) {
            attempts += 1;
            assert!(
                attempts < 100 && e.code() == Some(&SqlState::OBJECT_IN_USE),
                "cannot create {name}: {e}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        CaseDatabase { name }
    }
}

impl Drop for CaseDatabase {
    fn drop(&mut self) {
        // WITH (FORCE) ends the connections a case left open; a failure
        // only leaves the database to the server's end with the process.
        let _ = Server::shared().admin("postgres").batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// The name of this process's migrated template database.
fn template() -> &'static str {
    static TEMPLATE: OnceLock<TestDatabase> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let db = TestDatabase::new();
            let url = PostgresUrl::parse(&format!("{}?sslmode=disable", db.url())).unwrap();
            super::PostgresPool::open(&url, Some(db.password()), 1)
                .unwrap()
                .migrate()
                .unwrap();
            db
        })
        .name()
}

impl PostgresDb {
    /// A store of the instance named `instance`.
    pub(super) fn open_as(&self, instance: &str) -> PostgresStore {
        let url = PostgresUrl::parse(&format!("{}?sslmode=disable", self.url)).unwrap();
        PostgresStore::open(&url, Some(&self.password), POOL_SIZE, instance).unwrap()
    }

    /// A connection of the test's own, for looking beneath the trait.
    pub(super) fn peek(&self) -> Client {
        let mut config: ::postgres::Config = self.url.parse().unwrap();
        config.password(&self.password);
        config.connect(NoTls).unwrap()
    }
}

impl Backend for PostgresDb {
    type Handle = PostgresStore;

    fn fresh() -> PostgresDb {
        let db = CaseDatabase::new();
        let server = Server::shared();
        PostgresDb {
            url: format!(
                "postgres://{TEST_ROLE}@127.0.0.1:{}/{}",
                server.port(),
                db.name
            ),
            password: server.password().to_string(),
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
