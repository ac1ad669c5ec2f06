//! What can stop a copy or a check.

use std::path::PathBuf;

use thiserror::Error;

use crate::error::StoreError;

/// Why `copy_sqlite_to_postgres` or `check_sqlite_against_postgres` did not
/// finish. A copy that fails leaves the destination as it was: its one
/// transaction is rolled back.
#[derive(Debug, Error)]
pub enum CopyError {
    /// Opening, migrating or reading one of the stores failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source names no SQLite database.
    #[error("no SQLite store at {}: the file does not exist", path.display())]
    NoSource {
        /// The path looked at.
        path: PathBuf,
    },
    /// The destination holds data; a copy never merges into a used
    /// database.
    #[error(
        "the destination {database} is not empty: table {table} has {rows} rows; \
         hisp store copy writes only into an empty database (create a new one)"
    )]
    NotEmpty {
        /// The destination's URL.
        database: String,
        /// The first table found with rows.
        table: &'static str,
        /// How many rows it has.
        rows: i64,
    },
    /// A store's schema is not the version this hisp copies and compares.
    #[error(
        "the {which} {database} has schema version {found}, but this hisp compares version \
         {expected}: {hint}"
    )]
    SchemaVersion {
        /// `"source"` or `"destination"`.
        which: &'static str,
        /// The database.
        database: String,
        /// The version found.
        found: i64,
        /// The version this build knows.
        expected: i64,
        /// What to do.
        hint: &'static str,
    },
    /// A value of the source cannot be written to the destination.
    #[error("cannot copy {table}.{column} of the row {key}: {reason}")]
    Value {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the rows of a table to the destination failed.
    #[error("cannot write the rows of {table} to the destination: {message}")]
    Write {
        /// The table.
        table: &'static str,
        /// The cause.
        message: String,
    },
}
