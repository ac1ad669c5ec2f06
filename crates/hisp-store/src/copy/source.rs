//! The SQLite side: the source of a copy, read in one read transaction so
//! that every table comes from one snapshot, row by row; message bytes are
//! handed on as a reader over SQLite's incremental blob I/O, so a message
//! of tens of MiB is never held whole.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::blob::Blob;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row, MAIN_DB};

use super::error::CopyError;
use super::tables::{Kind, Table};
use crate::error::StoreError;
use crate::sqlite::DB_FILE;

/// How long opening the snapshot waits for a writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One value of a row, as both backends give it.
pub(crate) enum Cell<'a> {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A flag.
    Bool(bool),
    /// Text, as stored (UTF-8 unless someone wrote otherwise).
    Text(&'a [u8]),
    /// Bytes held whole.
    Bytes(&'a [u8]),
    /// Message bytes to be read in pieces: `len` bytes from `reader`.
    Body {
        /// How many bytes.
        len: u64,
        /// Where to read them.
        reader: Box<dyn Read + 'a>,
    },
}

/// The database file a `sqlite:PATH` names: `PATH`, or `PATH/hisp.db` when
/// `PATH` is a directory (a data directory).
pub fn sqlite_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(DB_FILE)
    } else {
        path.to_path_buf()
    }
}

/// `path` (see [`sqlite_file`]) when it exists; never created here.
pub(crate) fn existing(path: &Path) -> Result<PathBuf, CopyError> {
    let file = sqlite_file(path);
    if file.is_file() {
        Ok(file)
    } else {
        Err(CopyError::NoSource { path: file })
    }
}

/// A read transaction on an SQLite store: one snapshot of every table.
pub(crate) struct Snapshot {
    conn: Connection,
    version: i64,
}

impl Snapshot {
    /// Opens `file` read-only and starts a read transaction on it (its
    /// first read fixes the snapshot every later read sees).
    pub(crate) fn open(file: &Path) -> Result<Snapshot, CopyError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(file, flags)
            .map_err(StoreError::sqlite("opening the source read-only"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(StoreError::sqlite("setting the busy timeout"))?;
        conn.execute_batch("BEGIN DEFERRED")
            .map_err(StoreError::sqlite("starting the read transaction"))?;
        let version: i64 = conn
            .query_row(
                "SELECT coalesce(max(version), 0) FROM schema_version",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::sqlite("reading schema_version"))?;
        Ok(Snapshot { conn, version })
    }

    /// The schema version of the snapshot.
    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    /// Calls `f` with every row of `table` in key order, its cells in the
    /// order of the table's columns; returns how many rows there were.
    pub(crate) fn for_each_row(
        &self,
        table: &'static Table,
        mut f: impl FnMut(&mut [Cell<'_>]) -> Result<(), CopyError>,
    ) -> Result<u64, CopyError> {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| match c.kind {
                // The length only: the bytes are read through a blob handle.
                Kind::Body => format!("length({})", c.name),
                _ => c.name.to_string(),
            })
            .collect();
        let sql = format!(
            "SELECT rowid, {} FROM {} ORDER BY {}",
            columns.join(", "),
            table.name,
            table.key
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(StoreError::sqlite("reading a table of the source"))?;
        let mut rows = stmt
            .query([])
            .map_err(StoreError::sqlite("reading a table of the source"))?;
        let mut count = 0u64;
        while let Some(row) = rows
            .next()
            .map_err(StoreError::sqlite("reading a row of the source"))?
        {
            let rowid: i64 = row
                .get(0)
                .map_err(StoreError::sqlite("reading a row of the source"))?;
            let mut cells = Vec::with_capacity(table.columns.len());
            for (i, column) in table.columns.iter().enumerate() {
                let value = row
                    .get_ref(i + 1)
                    .map_err(StoreError::sqlite("reading a row of the source"))?;
                let bad = |found: &str| CopyError::Value {
                    table: table.name,
                    column: column.name,
                    key: key_of(table, row),
                    reason: format!("expected {:?}, found {found}", column.kind),
                };
                let cell = match (column.kind, value) {
                    (_, ValueRef::Null) => Cell::Null,
                    (Kind::Int, ValueRef::Integer(n)) => Cell::Int(n),
                    (Kind::Bool, ValueRef::Integer(0)) => Cell::Bool(false),
                    (Kind::Bool, ValueRef::Integer(1)) => Cell::Bool(true),
                    (Kind::Text, ValueRef::Text(t)) => Cell::Text(t),
                    (Kind::Bytes, ValueRef::Blob(b)) => Cell::Bytes(b),
                    (Kind::Body, ValueRef::Integer(len)) => {
                        let blob =
                            self.blob(table, column.name, rowid)
                                .map_err(|e| CopyError::Value {
                                    table: table.name,
                                    column: column.name,
                                    key: key_of(table, row),
                                    reason: format!("cannot read it as bytes: {e}"),
                                })?;
                        Cell::Body {
                            len: u64::try_from(len).unwrap_or(0),
                            reader: Box::new(blob),
                        }
                    }
                    (_, ValueRef::Integer(n)) => return Err(bad(&format!("the integer {n}"))),
                    (_, ValueRef::Real(_)) => return Err(bad("a real number")),
                    (_, ValueRef::Text(_)) => return Err(bad("text")),
                    (_, ValueRef::Blob(_)) => return Err(bad("bytes")),
                };
                cells.push(cell);
            }
            f(&mut cells)?;
            count += 1;
        }
        Ok(count)
    }

    /// A read-only handle on one stored value's bytes.
    fn blob(&self, table: &Table, column: &str, rowid: i64) -> rusqlite::Result<Blob<'_>> {
        self.conn
            .blob_open(MAIN_DB, table.name, column, rowid, true)
    }
}

/// The key of `row` for an error message: `id 7`, `mark welcome`.
fn key_of(table: &Table, row: &Row<'_>) -> String {
    let index = table
        .columns
        .iter()
        .position(|c| c.name == table.key)
        .map_or(0, |i| i + 1);
    let value = match row.get_ref(index) {
        Ok(ValueRef::Integer(n)) => n.to_string(),
        Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        _ => "?".to_string(),
    };
    format!("{} {value}", table.key)
}

/// The key of a row already read, for an error message: `id 7`.
pub(crate) fn key_text(table: &Table, cells: &[Cell<'_>]) -> String {
    let value = table
        .columns
        .iter()
        .position(|c| c.name == table.key)
        .and_then(|i| cells.get(i))
        .map_or_else(
            || "?".to_string(),
            |cell| match cell {
                Cell::Int(n) => n.to_string(),
                Cell::Text(t) => String::from_utf8_lossy(t).into_owned(),
                _ => "?".to_string(),
            },
        );
    format!("{} {value}", table.key)
}
