//! Reading typed values out of PostgreSQL rows, and the forms values take
//! in its columns (Unix seconds, lower-cased address keys).

use ::postgres::types::FromSql;
use ::postgres::Row;
use time::OffsetDateTime;

use crate::cert::{CertInfo, Fingerprint, Serial};
use crate::error::{DatabaseErrorKind, StoreError};
use crate::message::MessageId;
use hisp_address::{DirectAddress, Domain};

/// A time as stored: Unix seconds.
pub(super) fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Now, as stored: Unix seconds.
pub(super) fn now() -> i64 {
    secs(OffsetDateTime::now_utc())
}

/// A time as stored in the queue's millisecond columns.
pub(super) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A stored size from a Rust length.
pub(super) fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The key an address is compared on: the `<column>_key` columns are
/// `lower(<column> COLLATE "C")`, which folds ASCII letters only, as this
/// does (Direct addresses are ASCII).
pub(super) fn key(address: &DirectAddress) -> String {
    address.to_string().to_ascii_lowercase()
}

/// The local part's key (`addresses.local_part_key`).
pub(super) fn local_key(address: &DirectAddress) -> String {
    address.local_part().to_ascii_lowercase()
}

/// A value the schema guarantees well-formed that is not (a database
/// edited by hand).
pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Database {
        context: "reading a row",
        kind: DatabaseErrorKind::Other,
        message: format!("bad {what} in the database"),
    }
}

/// One column.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(StoreError::postgres("reading a row"))
}

/// A time column.
pub(super) fn time_at(row: &Row, idx: usize) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(col(row, idx)?).map_err(|_| corrupt("time"))
}

/// A nullable time column.
pub(super) fn time_opt(row: &Row, idx: usize) -> Result<Option<OffsetDateTime>, StoreError> {
    col::<Option<i64>>(row, idx)?
        .map(|s| OffsetDateTime::from_unix_timestamp(s).map_err(|_| corrupt("time")))
        .transpose()
}

/// A nullable millisecond time column.
pub(super) fn millis_opt(row: &Row, idx: usize) -> Result<Option<OffsetDateTime>, StoreError> {
    col::<Option<i64>>(row, idx)?
        .map(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map_err(|_| corrupt("time"))
        })
        .transpose()
}

/// A text column read through `parse`, which returns `None` for a bad value.
pub(super) fn parsed<T>(
    row: &Row,
    idx: usize,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text: &str = col(row, idx)?;
    parse(text).ok_or_else(|| corrupt(what))
}

/// A domain name column.
pub(super) fn domain_at(row: &Row, idx: usize) -> Result<Domain, StoreError> {
    parsed(row, idx, "domain", |s| Domain::parse(s).ok())
}

/// An address column.
pub(super) fn address_at(row: &Row, idx: usize) -> Result<DirectAddress, StoreError> {
    parsed(row, idx, "address", |s| DirectAddress::parse(s).ok())
}

/// A nullable address column.
pub(super) fn address_opt(row: &Row, idx: usize) -> Result<Option<DirectAddress>, StoreError> {
    col::<Option<&str>>(row, idx)?
        .map(|s| DirectAddress::parse(s).map_err(|_| corrupt("address")))
        .transpose()
}

/// A nullable Message-ID column.
pub(super) fn message_id_opt(row: &Row, idx: usize) -> Result<Option<MessageId>, StoreError> {
    col::<Option<&str>>(row, idx)?
        .map(|s| MessageId::parse(s).map_err(|_| corrupt("Message-ID")))
        .transpose()
}

/// A non-negative integer column (sizes, counts).
pub(super) fn count_at<T: TryFrom<i64>>(row: &Row, idx: usize) -> Result<T, StoreError> {
    T::try_from(col::<i64>(row, idx)?).map_err(|_| corrupt("count"))
}

/// The columns `subject, issuer, serial, fingerprint, not_before, not_after`.
pub(super) const CERT_INFO_COLUMNS: &str =
    "subject, issuer, serial, fingerprint, not_before, not_after";

/// Reads [`CERT_INFO_COLUMNS`] starting at `idx`. The SAN lists are not kept.
pub(super) fn cert_info_at(row: &Row, idx: usize) -> Result<CertInfo, StoreError> {
    let fingerprint: &[u8] = col(row, idx + 3)?;
    Ok(CertInfo {
        subject: col(row, idx)?,
        issuer: col(row, idx + 1)?,
        serial: parsed(row, idx + 2, "serial", |s| Serial::parse(s).ok())?,
        fingerprint: Fingerprint::from_slice(fingerprint).ok_or_else(|| corrupt("fingerprint"))?,
        not_before: time_at(row, idx + 4)?,
        not_after: time_at(row, idx + 5)?,
        emails: Vec::new(),
        dns_names: Vec::new(),
    })
}

/// Whether an error is a UNIQUE (or PRIMARY KEY) violation (23505).
pub(super) fn is_unique_violation(e: &::postgres::Error) -> bool {
    e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION)
}
