//! A real PostgreSQL for hisp's tests.
//!
//! The first [`TestDatabase::new`] of a test process starts one throwaway
//! server: `initdb` into a temporary directory and `postgres` listening on a
//! free port of 127.0.0.1 only, its unix socket in that directory, TLS on
//! with a certificate made for the run ([`TestDatabase::ca_file`]). Every
//! `TestDatabase` is then a fresh `CREATE DATABASE` on that server, dropped
//! when the value is dropped; the server is shared by the tests of the
//! process and stopped, its directory removed, when the process exits.
//!
//! PostgreSQL refuses to run as root, and tests run as root in CI: then the
//! server runs as the `postgres` system user that Debian's package makes (or
//! `nobody` without it), and as the user running the tests otherwise. Should
//! the test process be killed, the server gets SIGINT from the kernel (the
//! parent-death signal) and stops by itself; a later run removes the
//! directory it left.
//!
//! The server binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`, the newest version there) or the
//! `PATH`. Without them a test fails, saying what to install; it never
//! skips.
//!
//! Roles: `postgres`, the superuser, reaches the server only through the
//! unix socket ([`TestDatabase::admin`]); over TCP every role logs in with a
//! password (SCRAM-SHA-256). Each database is owned by the role `hisp_test`,
//! whose password is [`TestDatabase::password`] and which
//! [`TestDatabase::url`] names.

mod binaries;
mod server;
mod tls;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub use server::Server;

/// The role that owns the test databases and that [`TestDatabase::url`]
/// connects as.
pub const TEST_ROLE: &str = "hisp_test";

/// One fresh, empty database on the shared test server, dropped (with any
/// connection still open to it) when this value is dropped.
pub struct TestDatabase {
    server: &'static Server,
    name: String,
}

impl TestDatabase {
    /// Starts the process's server if it is not running yet and creates a
    /// new database on it.
    ///
    /// # Panics
    ///
    /// When the server cannot start (the PostgreSQL binaries are missing,
    /// naming the package to install) or the database cannot be created.
    pub fn new() -> TestDatabase {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let server = Server::shared();
        let name = format!(
            "hisp_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        server
            .admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {TEST_ROLE}"))
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        TestDatabase { server, name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `postgres://hisp_test@127.0.0.1:PORT/NAME`: the database over TCP as
    /// its owner, without the password (which is [`TestDatabase::password`]),
    /// and without `sslmode` (append `?sslmode=...` to choose).
    pub fn url(&self) -> String {
        self.url_for(TEST_ROLE)
    }

    /// The URL of this database over TCP for another role, without a
    /// password.
    pub fn url_for(&self, role: &str) -> String {
        format!(
            "postgres://{role}@127.0.0.1:{}/{}",
            self.server.port(),
            self.name
        )
    }

    /// The password of the role `hisp_test`.
    pub fn password(&self) -> &str {
        self.server.password()
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The PEM file of the CA that issued the server's certificate (for
    /// `localhost` and 127.0.0.1), for `sslrootcert` in `verify-full`.
    pub fn ca_file(&self) -> &Path {
        self.server.ca_file()
    }

    /// A new superuser connection to this database through the server's
    /// unix socket, for what a test does beneath the code under test
    /// (creating roles, reading the catalog, writing rows by hand).
    pub fn admin(&self) -> postgres::Client {
        self.server.admin(&self.name)
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // WITH (FORCE) ends connections a test left open (a pool still
        // alive); a failure only leaves the database to the server's end.
        let _ = self.server.try_admin("postgres").and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_databases_are_separate_and_the_test_role_logs_in_with_its_password() {
        let a = TestDatabase::new();
        let b = TestDatabase::new();
        assert_ne!(a.name(), b.name());
        a.admin()
            .batch_execute("CREATE TABLE only_in_a (x int)")
            .unwrap();
        let mut config: postgres::Config = b.url().parse().unwrap();
        config.password(b.password());
        let mut client = config.connect(postgres::NoTls).unwrap();
        let found: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(found, 0);
        let mut wrong: postgres::Config = b.url().parse().unwrap();
        wrong.password("not the password");
        let Err(err) = wrong.connect(postgres::NoTls) else {
            panic!("a wrong password logs in");
        };
        assert_eq!(
            err.code(),
            Some(&postgres::error::SqlState::INVALID_PASSWORD),
            "{err}"
        );
    }

    #[test]
    fn a_dropped_database_is_gone_from_the_server() {
        let db = TestDatabase::new();
        let name = db.name().to_string();
        let server = Server::shared();
        drop(db);
        let left: i64 = server
            .admin("postgres")
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    }

    #[test]
    fn the_server_listens_on_loopback_only_and_not_as_root() {
        let db = TestDatabase::new();
        let mut admin = db.admin();
        let listen: String = admin
            .query_one("SHOW listen_addresses", &[])
            .unwrap()
            .get(0);
        assert_eq!(listen, "127.0.0.1");
        let ssl: String = admin.query_one("SHOW ssl", &[]).unwrap().get(0);
        assert_eq!(ssl, "on");
        let pid = Server::shared().pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap();
        assert_ne!(uid, "0", "the server runs as an ordinary user");
    }
}
