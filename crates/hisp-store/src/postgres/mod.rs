//! The PostgreSQL backend, for several `hisp serve` instances
//! sharing one database: the URL that names the database
//! ([`PostgresUrl`]: no password in it, TLS as its `sslmode` asks), the
//! connection pool ([`PostgresPool`]), PostgreSQL's failures classified into
//! the store's backend-neutral [`DatabaseErrorKind`](crate::DatabaseErrorKind),
//! and the schema (`migrations/postgres/`), migrated by the same runner as
//! SQLite's.
//!
//! The client is the synchronous `postgres` crate: the [`Store`](crate::Store)
//! trait is synchronous and called on tokio's blocking pool, so an async
//! client would only be blocked on again. The pool is `r2d2` (with
//! `r2d2_postgres`), which checks a connection before handing it out and
//! drops one the server closed; TLS is OpenSSL's (`postgres-openssl`), the
//! library the rest of hisp already links.
//!
//! [`PostgresStore`] serves the [`Store`](crate::Store) trait from it
//! (`store.rs`): the composite operations are the same `crate::ops` as
//! SQLite's, over PostgreSQL's statements (`tx.rs`), and the reads are its
//! own (`directory.rs`, `accounts.rs`, `queue.rs`, `mailbox.rs`,
//! `audit.rs`); `changes.rs` sees other stores' changes.

mod accounts;
mod audit;
mod changes;
mod directory;
mod errors;
mod instance_lock;
mod large;
mod mailbox;
mod migrations;
mod pool;
mod queue;
mod rows;
mod store;
mod tls;
mod tx;
mod url;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod instances;
#[cfg(test)]
mod tests;

pub(crate) use audit::verify_chain;
pub use instance_lock::{InstanceLock, Kept};
pub use migrations::SCHEMA_VERSION;
pub use pool::{default_pool_size, PostgresPool};
pub use store::PostgresStore;
pub use url::{PostgresUrl, SslMode};
