//! The copy: every table of an SQLite store into an empty PostgreSQL
//! database, ids kept, in one transaction on the destination.
//!
//! Each table goes in through one `COPY ... FROM STDIN (FORMAT binary)`.
//! The binary tuples are written here by hand rather than through the
//! `postgres` crate's `BinaryCopyInWriter`, which encodes a whole row into
//! one buffer: written field by field, a message's bytes pass from
//! SQLite's blob handle to the connection in 64 KiB pieces, so a message
//! of tens of MiB is never held whole (PostgreSQL documents the format
//! under COPY, "Binary Format").

use std::io::{Read, Write};
use std::path::Path;

use ::postgres::{CopyInWriter, Transaction};

use super::error::CopyError;
use super::source::{self, Cell, Snapshot};
use super::tables::{Table, TABLES};
use crate::error::StoreError;
use crate::migration::MigrationReport;
use crate::postgres::{PostgresPool, PostgresUrl};
use crate::sqlite::SqliteStore;

/// The signature, flags and header extension length that open a binary COPY.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The size of the pieces message bytes are moved in.
const PIECE: usize = 64 * 1024;

/// How many rows of one table were copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// The table.
    pub table: &'static str,
    /// Its rows.
    pub rows: u64,
}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// The source's database file.
    pub source: std::path::PathBuf,
    /// What opening the source did to its schema (an older store is
    /// migrated first, as every command does).
    pub source_migration: MigrationReport,
    /// What migrating the destination applied.
    pub destination_migration: MigrationReport,
    /// Every table in the order copied, with its rows.
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    /// The rows of every table.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Copies the SQLite store at `source` (a file, or a data directory holding
/// `hisp.db`) into the PostgreSQL database `destination`, logging in with
/// `password`.
///
/// The source is migrated to the current schema when older, then read in
/// one read transaction. The destination is migrated, must hold no rows in
/// any of the store's tables ([`CopyError::NotEmpty`] otherwise, and nothing
/// is written), and is written in one transaction that holds its tables
/// locked against other writers: every row with its id, the identity
/// counters moved past the highest id copied. Any failure rolls it back,
/// leaving the destination empty. No `hisp serve` may write to the source
/// meanwhile (its later writes would not be copied).
pub fn copy_sqlite_to_postgres(
    source: &Path,
    destination: &PostgresUrl,
    password: Option<&str>,
) -> Result<CopyReport, CopyError> {
    let file = source::existing(source)?;
    let source_migration = SqliteStore::open(&file)?.migration().clone();
    let snapshot = Snapshot::open(&file)?;
    let pool = PostgresPool::open(destination, password, 1)?;
    let destination_migration = pool.migrate()?;
    let mut conn = pool.connection()?;
    let mut tx = conn
        .transaction()
        .map_err(StoreError::postgres("starting the copy's transaction"))?;
    lock_and_check_empty(&mut tx, destination)?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let rows = copy_table(&mut tx, &snapshot, table)?;
        if table.identity {
            move_identity(&mut tx, table)?;
        }
        tracing::info!(table = table.name, rows, "copied");
        tables.push(TableCount {
            table: table.name,
            rows,
        });
    }
    tx.commit()
        .map_err(StoreError::postgres("committing the copy"))?;
    Ok(CopyReport {
        source: file,
        source_migration,
        destination_migration,
        tables,
    })
}

/// Locks every table of the store against other writers until the copy
/// commits, then refuses a destination that has rows in any of them.
fn lock_and_check_empty(tx: &mut Transaction<'_>, url: &PostgresUrl) -> Result<(), CopyError> {
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))
    .map_err(StoreError::postgres("locking the destination's tables"))?;
    for table in TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .map_err(StoreError::postgres("looking for rows in the destination"))?
            .get(0);
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                database: url.as_str().to_string(),
                table: table.name,
                rows,
            });
        }
    }
    Ok(())
}

/// Copies one table; returns its rows.
fn copy_table(
    tx: &mut Transaction<'_>,
    snapshot: &Snapshot,
    table: &'static Table,
) -> Result<u64, CopyError> {
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.name,
        columns.join(", ")
    );
    let write_error = |message: String| CopyError::Write {
        table: table.name,
        message,
    };
    let mut writer = tx
        .copy_in(&sql)
        .map_err(|e| write_error(StoreError::postgres("starting COPY")(e).to_string()))?;
    put(&mut writer, COPY_HEADER, table)?;
    let fields = i16::try_from(table.columns.len()).unwrap_or(i16::MAX);
    let mut piece = vec![0u8; PIECE];
    let rows = snapshot.for_each_row(table, |cells| {
        put(&mut writer, &fields.to_be_bytes(), table)?;
        for i in 0..cells.len() {
            let column = table.columns[i].name;
            match write_cell(&mut writer, &mut cells[i], table, &mut piece) {
                Ok(()) => {}
                Err(Refused::Write(e)) => return Err(e),
                Err(Refused::Value(reason)) => {
                    return Err(CopyError::Value {
                        table: table.name,
                        column,
                        key: source::key_text(table, cells),
                        reason,
                    })
                }
            }
        }
        Ok(())
    })?;
    // The trailer: a field count of -1.
    put(&mut writer, &(-1i16).to_be_bytes(), table)?;
    // An error the server found in the data comes back here, and the
    // transaction is then rolled back with everything copied before.
    writer
        .finish()
        .map_err(|e| write_error(StoreError::postgres("finishing COPY")(e).to_string()))?;
    Ok(rows)
}

/// Why a field was not written.
enum Refused {
    /// The value cannot go into PostgreSQL: why.
    Value(String),
    /// Writing to the server failed.
    Write(CopyError),
}

impl From<CopyError> for Refused {
    fn from(e: CopyError) -> Refused {
        Refused::Write(e)
    }
}

/// Writes one field: its length (-1 for NULL) and its bytes in
/// PostgreSQL's binary form (bigint and boolean big-endian, text as UTF-8,
/// bytea as is).
fn write_cell(
    w: &mut CopyInWriter<'_>,
    cell: &mut Cell<'_>,
    table: &'static Table,
    piece: &mut [u8],
) -> Result<(), Refused> {
    match cell {
        Cell::Null => put(w, &(-1i32).to_be_bytes(), table)?,
        Cell::Int(n) => {
            put(w, &8i32.to_be_bytes(), table)?;
            put(w, &n.to_be_bytes(), table)?;
        }
        Cell::Bool(b) => {
            put(w, &1i32.to_be_bytes(), table)?;
            put(w, &[u8::from(*b)], table)?;
        }
        Cell::Text(t) => {
            // PostgreSQL's text is UTF-8 without NUL.
            let text = std::str::from_utf8(t)
                .map_err(|e| Refused::Value(format!("text that is not UTF-8 ({e})")))?;
            if text.contains('\0') {
                return Err(Refused::Value(
                    "text with a NUL character, which PostgreSQL's text cannot hold".into(),
                ));
            }
            put(w, &field_len(t.len())?.to_be_bytes(), table)?;
            put(w, t, table)?;
        }
        Cell::Bytes(b) => {
            put(w, &field_len(b.len())?.to_be_bytes(), table)?;
            put(w, b, table)?;
        }
        Cell::Body { len, reader } => {
            let len = usize::try_from(*len).unwrap_or(usize::MAX);
            put(w, &field_len(len)?.to_be_bytes(), table)?;
            let mut left = len;
            while left > 0 {
                let want = left.min(piece.len());
                reader.read_exact(&mut piece[..want]).map_err(|e| {
                    Refused::Value(format!("cannot read its bytes from the source: {e}"))
                })?;
                put(w, &piece[..want], table)?;
                left -= want;
            }
        }
    }
    Ok(())
}

/// A field's length as the format writes it.
fn field_len(len: usize) -> Result<i32, Refused> {
    i32::try_from(len).map_err(|_| {
        Refused::Value(format!(
            "{len} bytes, more than PostgreSQL takes in one field"
        ))
    })
}

fn put(w: &mut CopyInWriter<'_>, bytes: &[u8], table: &'static Table) -> Result<(), CopyError> {
    w.write_all(bytes).map_err(|e| CopyError::Write {
        table: table.name,
        message: e.to_string(),
    })
}

/// Moves the identity counter of `table.id` past the highest id copied, so
/// the next row the store inserts gets a fresh id.
fn move_identity(tx: &mut Transaction<'_>, table: &Table) -> Result<(), CopyError> {
    tx.execute(
        &format!(
            "SELECT setval(pg_get_serial_sequence($1, 'id'), max(id)) FROM {} \
             HAVING max(id) IS NOT NULL",
            table.name
        ),
        &[&table.name],
    )
    .map_err(StoreError::postgres(
        "moving an identity past the copied ids",
    ))?;
    Ok(())
}
