//! The check: an SQLite store and a PostgreSQL database compared table by
//! table, by row count and by a hash over each table's rows in one
//! canonical form, and the destination's audit chain verified.
//!
//! The canonical form of a table is SHA-256 over `"hisp store check
//! v1\0"`, the table's name, then every row in key order (bytewise for a
//! text key), each copied column in the order of the table list
//! (`tables.rs`) as a type tag and its value: NULL `0`; an integer or a
//! flag `1` and the eight bytes of the integer (a flag as 0 or 1, as SQLite
//! stores it); text `3`, bytes `4`, each with its length as eight bytes and
//! then the bytes. The columns of one backend only (the `*_key` ones,
//! `lease_owner`) are not part of it.

use std::io::Read;
use std::path::{Path, PathBuf};

use ::postgres::{IsolationLevel, Row, Transaction};
use openssl::sha::Sha256;

use super::error::CopyError;
use super::source::{self, Cell, Snapshot};
use super::tables::{Kind, Table, TABLES};
use crate::audit::AuditCheck;
use crate::error::StoreError;
use crate::postgres::{self, PostgresPool, PostgresUrl};
use crate::sqlite;

/// Rows fetched per round trip from a table holding message bytes (each
/// may be tens of MiB) and from any other table.
const BODY_BATCH: i32 = 1;
const ROW_BATCH: i32 = 1000;

/// One table compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    /// The table.
    pub table: &'static str,
    /// Its rows in the source.
    pub source_rows: u64,
    /// Its rows in the destination.
    pub destination_rows: u64,
    /// The hash of its rows in the source.
    pub source_hash: [u8; 32],
    /// The hash of its rows in the destination.
    pub destination_hash: [u8; 32],
}

impl TableCheck {
    /// Whether both sides hold the same rows.
    pub fn matches(&self) -> bool {
        self.source_rows == self.destination_rows && self.source_hash == self.destination_hash
    }
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The source's database file.
    pub source: PathBuf,
    /// Every table, in the order of the table list.
    pub tables: Vec<TableCheck>,
    /// The destination's audit chain, verified as
    /// [`Store::verify_audit_chain`](crate::Store::verify_audit_chain) does.
    pub audit_chain: AuditCheck,
}

impl CheckReport {
    /// The tables whose rows differ.
    pub fn differing(&self) -> Vec<&'static str> {
        self.tables
            .iter()
            .filter(|t| !t.matches())
            .map(|t| t.table)
            .collect()
    }

    /// Whether every table matches and the destination's audit chain is
    /// intact.
    pub fn matches(&self) -> bool {
        self.differing().is_empty() && matches!(self.audit_chain, AuditCheck::Intact { .. })
    }
}

/// Compares the SQLite store at `source` (a file, or a data directory
/// holding `hisp.db`) with the PostgreSQL database `destination`, each read
/// in one snapshot; neither is changed (a store at another schema version
/// is refused rather than migrated).
pub fn check_sqlite_against_postgres(
    source: &Path,
    destination: &PostgresUrl,
    password: Option<&str>,
) -> Result<CheckReport, CopyError> {
    let file = source::existing(source)?;
    let snapshot = Snapshot::open(&file)?;
    if snapshot.version() != sqlite::SCHEMA_VERSION {
        return Err(CopyError::SchemaVersion {
            which: "source",
            database: file.display().to_string(),
            found: snapshot.version(),
            expected: sqlite::SCHEMA_VERSION,
            hint: "run hisp store migrate on it first",
        });
    }
    let pool = PostgresPool::open(destination, password, 1)?;
    let version = pool.schema_version()?;
    if version != postgres::SCHEMA_VERSION {
        return Err(CopyError::SchemaVersion {
            which: "destination",
            database: destination.as_str().to_string(),
            found: version,
            expected: postgres::SCHEMA_VERSION,
            hint: "copy into it with hisp store copy, or migrate it with hisp store migrate",
        });
    }
    let mut conn = pool.connection()?;
    let mut tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(StoreError::postgres("starting the check's transaction"))?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let mut hash = TableHash::new(table);
        let source_rows = snapshot.for_each_row(table, |cells| hash.row(table, cells))?;
        let source_hash = hash.finish();
        let (destination_rows, destination_hash) = hash_postgres(&mut tx, table)?;
        tables.push(TableCheck {
            table: table.name,
            source_rows,
            destination_rows,
            source_hash,
            destination_hash,
        });
    }
    let audit_chain = postgres::verify_chain(&mut tx)?;
    tx.commit()
        .map_err(StoreError::postgres("ending the check's transaction"))?;
    Ok(CheckReport {
        source: file,
        tables,
        audit_chain,
    })
}

/// The hash of one table's rows in the canonical form.
pub(crate) struct TableHash(Sha256);

impl TableHash {
    /// The hash of no rows yet.
    pub(crate) fn new(table: &Table) -> TableHash {
        let mut h = Sha256::new();
        h.update(b"hisp store check v1\0");
        h.update(table.name.as_bytes());
        h.update(&[0]);
        TableHash(h)
    }

    /// Adds one row; message bytes are read from their reader in pieces.
    pub(crate) fn row(&mut self, table: &Table, cells: &mut [Cell<'_>]) -> Result<(), CopyError> {
        let h = &mut self.0;
        // By index: an error reads the row's key from `cells` too.
        #[allow(clippy::needless_range_loop)]
        for i in 0..cells.len() {
            let column = &table.columns[i];
            match &mut cells[i] {
                Cell::Null => h.update(&[0]),
                Cell::Int(n) => {
                    h.update(&[1]);
                    h.update(&n.to_be_bytes());
                }
                Cell::Bool(b) => {
                    h.update(&[1]);
                    h.update(&i64::from(*b).to_be_bytes());
                }
                Cell::Text(t) => {
                    h.update(&[3]);
                    h.update(&(t.len() as u64).to_be_bytes());
                    h.update(t);
                }
                Cell::Bytes(b) => {
                    h.update(&[4]);
                    h.update(&(b.len() as u64).to_be_bytes());
                    h.update(b);
                }
                Cell::Body { len, reader } => {
                    h.update(&[4]);
                    h.update(&len.to_be_bytes());
                    let mut piece = [0u8; 16 * 1024];
                    let mut left = *len;
                    while left > 0 {
                        let want = usize::try_from(left.min(piece.len() as u64)).unwrap_or(0);
                        reader
                            .read_exact(&mut piece[..want])
                            .map_err(|e| CopyError::Value {
                                table: table.name,
                                column: column.name,
                                key: String::from("(being read)"),
                                reason: format!("cannot read its bytes from the source: {e}"),
                            })?;
                        h.update(&piece[..want]);
                        left -= want as u64;
                    }
                }
            }
        }
        Ok(())
    }

    /// The hash.
    pub(crate) fn finish(self) -> [u8; 32] {
        self.0.finish()
    }
}

/// Reads one table of the destination in key order, in small batches, and
/// hashes it; returns its rows and hash.
fn hash_postgres(
    tx: &mut Transaction<'_>,
    table: &'static Table,
) -> Result<(u64, [u8; 32]), CopyError> {
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    // Bytewise order for a text key, as SQLite orders.
    let collate = if table.key_column().kind == Kind::Text {
        " COLLATE \"C\""
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}{collate}",
        columns.join(", "),
        table.name,
        table.key
    );
    let batch = if table.has_body() {
        BODY_BATCH
    } else {
        ROW_BATCH
    };
    let portal = tx
        .bind(sql.as_str(), &[])
        .map_err(StoreError::postgres("reading a table of the destination"))?;
    let mut hash = TableHash::new(table);
    let mut count = 0u64;
    loop {
        let rows = tx
            .query_portal(&portal, batch)
            .map_err(StoreError::postgres("reading a table of the destination"))?;
        for row in &rows {
            let mut cells = cells_of(table, row)?;
            hash.row(table, &mut cells)?;
            count += 1;
        }
        if rows.len() < usize::try_from(batch).unwrap_or(1) {
            break;
        }
    }
    Ok((count, hash.finish()))
}

/// The cells of one row of the destination.
fn cells_of<'a>(table: &Table, row: &'a Row) -> Result<Vec<Cell<'a>>, CopyError> {
    let mut cells = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let cell = match column.kind {
            Kind::Int => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Cell::Int)),
            Kind::Bool => row.try_get::<_, Option<bool>>(i).map(|v| v.map(Cell::Bool)),
            Kind::Text => row
                .try_get::<_, Option<&str>>(i)
                .map(|v| v.map(|t| Cell::Text(t.as_bytes()))),
            Kind::Bytes | Kind::Body => row
                .try_get::<_, Option<&[u8]>>(i)
                .map(|v| v.map(Cell::Bytes)),
        };
        match cell {
            Ok(cell) => cells.push(cell.unwrap_or(Cell::Null)),
            Err(e) => {
                return Err(StoreError::postgres("reading a row of the destination")(e).into())
            }
        }
    }
    Ok(cells)
}
