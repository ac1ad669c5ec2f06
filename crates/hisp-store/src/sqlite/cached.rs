//! Statements through the connection's cache of prepared statements.
//!
//! rusqlite's `execute` and `query_row` compile their SQL at every call; the
//! store runs the same few dozen statements for every message, and compiling
//! them was about a tenth of a busy instance's CPU. These run the same SQL
//! through `prepare_cached`, so each statement is compiled once per
//! connection.

use rusqlite::{Connection, Params, Row};

/// `execute` and `query_row` through the statement cache.
pub(crate) trait Cached {
    /// [`Connection::execute`] on a cached statement.
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// [`Connection::query_row`] on a cached statement.
    fn row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Statements a connection keeps compiled: more than the store's distinct
/// statements, so none is evicted in steady use.
pub(crate) const CAPACITY: usize = 256;
