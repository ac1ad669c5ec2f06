//! Moving an installation from SQLite to PostgreSQL (`hisp store copy`)
//! and comparing the two (`hisp store check`).
//!
//! - `tables.rs`: the one list of tables and columns both commands work
//!   through, parents first, with the tables and columns of one backend
//!   only that are left out, each with its reason.
//! - `source.rs`: the SQLite side, read in one read transaction (one
//!   snapshot), row by row, message bytes as readers over SQLite's blob
//!   handles.
//! - `copy.rs`: the copy, in one transaction on an empty, migrated
//!   destination through binary `COPY`, ids kept and identity counters
//!   moved past them.
//! - `check.rs`: row counts and a hash per table over a canonical form of
//!   its rows on both sides, and the destination's audit chain.
//!
//! Both sides hold the same columns with the same values; the copy only
//! leaves PostgreSQL to compute its lower-cased `*_key` columns, and leaves
//! `queue.lease_owner` empty (a lease copied from SQLite, whose process is
//! stopped, has no owning instance and runs out at its `lease_until`).

mod check;
#[allow(clippy::module_inception)]
mod copy;
mod error;
mod source;
mod tables;

#[cfg(test)]
mod tests;

pub use check::{check_sqlite_against_postgres, CheckReport, TableCheck};
pub use copy::{copy_sqlite_to_postgres, CopyReport, TableCount};
pub use error::CopyError;
pub use source::sqlite_file;
