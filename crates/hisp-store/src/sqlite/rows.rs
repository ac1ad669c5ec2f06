//! Reading typed values out of rows, and telling constraint failures apart.

use super::cached::Cached;
use rusqlite::types::Type;
use rusqlite::{Row, Transaction};
use time::OffsetDateTime;

use crate::cert::{CertInfo, Fingerprint, Serial};
use crate::error::{Entity, StoreError};
use crate::message::MessageId;
use hisp_address::DirectAddress;
use hisp_address::Domain;

/// Now, as stored: Unix seconds.
pub(crate) fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A time as stored in the queue's millisecond columns.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A nullable millisecond time column.
pub(crate) fn millis_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(ms) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map(Some)
            .map_err(|_| corrupt(idx, "time")),
    }
}

/// A column the schema guarantees well-formed, turned into a conversion
/// error if it is not (a database edited by hand).
fn corrupt(idx: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, format!("bad {what}").into())
}

/// A time column.
pub(crate) fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    let secs: i64 = row.get(idx)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| corrupt(idx, "time"))
}

/// A nullable time column.
pub(crate) fn time_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(secs) => OffsetDateTime::from_unix_timestamp(secs)
            .map(Some)
            .map_err(|_| corrupt(idx, "time")),
    }
}

/// A domain name column.
pub(crate) fn domain_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Domain> {
    let name: String = row.get(idx)?;
    Domain::parse(&name).map_err(|_| corrupt(idx, "domain"))
}

/// A column read through `parse`, which returns `None` for a bad value.
pub(crate) fn parsed<T>(
    row: &Row<'_>,
    idx: usize,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| corrupt(idx, what))
}

/// The columns `subject, issuer, serial, fingerprint, not_before, not_after`
/// starting at `idx`.
pub(crate) const CERT_INFO_COLUMNS: &str =
    "subject, issuer, serial, fingerprint, not_before, not_after";

/// Reads [`CERT_INFO_COLUMNS`] starting at `idx`. The SAN lists are not kept.
pub(crate) fn cert_info_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<CertInfo> {
    let fingerprint: Vec<u8> = row.get(idx + 3)?;
    Ok(CertInfo {
        subject: row.get(idx)?,
        issuer: row.get(idx + 1)?,
        serial: parsed(row, idx + 2, "serial", |s| Serial::parse(s).ok())?,
        fingerprint: Fingerprint::from_slice(&fingerprint)
            .ok_or_else(|| corrupt(idx + 3, "fingerprint"))?,
        not_before: time_at(row, idx + 4)?,
        not_after: time_at(row, idx + 5)?,
        emails: Vec::new(),
        dns_names: Vec::new(),
    })
}

/// The values of [`CERT_INFO_COLUMNS`], for an INSERT.
pub(crate) fn cert_info_values(info: &CertInfo) -> (&str, &str, &str, &[u8], i64, i64) {
    (
        &info.subject,
        &info.issuer,
        info.serial.as_str(),
        info.fingerprint.as_bytes(),
        info.not_before.unix_timestamp(),
        info.not_after.unix_timestamp(),
    )
}

/// Whether an error is a UNIQUE (or PRIMARY KEY) constraint failure.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error().map(|e| e.extended_code),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// The id of a local domain, or NotFound.
pub(crate) fn domain_id(tx: &Transaction<'_>, domain: &Domain) -> Result<i64, StoreError> {
    use rusqlite::OptionalExtension;
    tx.row(
        "SELECT id FROM domains WHERE name = ?1",
        [domain.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("looking up a domain"))?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Domain,
        name: domain.to_string(),
    })
}

/// An address column.
pub(crate) fn address_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<DirectAddress> {
    parsed(row, idx, "address", |s| DirectAddress::parse(s).ok())
}

/// A nullable address column.
pub(crate) fn address_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DirectAddress>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(text) => DirectAddress::parse(&text)
            .map(Some)
            .map_err(|_| corrupt(idx, "address")),
    }
}

/// A nullable Message-ID column.
pub(crate) fn message_id_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<MessageId>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(text) => MessageId::parse(&text)
            .map(Some)
            .map_err(|_| corrupt(idx, "Message-ID")),
    }
}

/// A non-negative integer column (sizes, counts).
pub(crate) fn count_at<T: TryFrom<i64>>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let n: i64 = row.get(idx)?;
    T::try_from(n).map_err(|_| corrupt(idx, "count"))
}

/// A stored count or size from a Rust length (always fits: SQLite rows hold
/// at most 2^31 bytes).
pub(crate) fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}
