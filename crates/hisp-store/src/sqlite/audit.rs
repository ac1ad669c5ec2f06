//! The audit log in SQLite: its reads, the check of the chain, and the
//! migration that chains events written before the chain. Events are
//! appended by `crate::ops::audit`, inside the transaction that makes the
//! change, so a change and its event commit together.
//!
//! Each event carries `hash = SHA-256(previous event's hash || this event's
//! columns)` (`ops::audit::chain_hash`); the first event's previous hash is
//! 32 zero bytes. An event is written under the write lock (every write
//! transaction is IMMEDIATE), so "the previous event" is well defined
//! across processes. Triggers refuse UPDATE and DELETE; someone who edits
//! the file around them breaks the chain at the first event touched, which
//! [`verify_chain`] names.

use super::cached::Cached;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Row, Transaction};

use super::rows::{address_opt, message_id_opt, parsed, time_at};
use crate::audit::{AuditCheck, AuditEvent, AuditFilter, AuditHash, AuditKind};
use crate::error::StoreError;
use crate::message::{MessageId, MessageRecordId};
use crate::ops::audit::{chain_hash, hash_array, HashValue, GENESIS};
use hisp_address::DirectAddress;

/// A column's value as the chain hashes it.
fn hash_value(value: ValueRef<'_>) -> HashValue<'_> {
    match value {
        ValueRef::Null => HashValue::Null,
        ValueRef::Integer(i) => HashValue::Integer(i),
        ValueRef::Real(f) => HashValue::Real(f),
        ValueRef::Text(t) => HashValue::Text(t),
        ValueRef::Blob(b) => HashValue::Blob(b),
    }
}

/// The columns covered by the hash, in the order hashed.
const HASHED_COLUMNS: &str = "id, at, kind, message_id, message, address, detail";

/// Hashes every event that has none yet, oldest first, each over the one
/// before it: the migration that brings in the chain does this once for
/// the events written before it.
pub(crate) fn chain_unhashed(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let rows: Vec<(i64, Vec<Value>, Option<Vec<u8>>)> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {HASHED_COLUMNS}, hash FROM audit_events ORDER BY id"
            ))
            .map_err(StoreError::sqlite("reading audit events to chain"))?;
        let rows = stmt
            .query_map([], |r| {
                let columns = (0..7)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<_, _>>()?;
                Ok((r.get(0)?, columns, r.get(7)?))
            })
            .map_err(StoreError::sqlite("reading audit events to chain"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sqlite("reading audit events to chain"))?
    };
    let mut prev = GENESIS;
    let mut chained = 0;
    for (id, columns, hash) in rows {
        let hash = match hash_array(hash.as_deref()) {
            Some(h) => h,
            None => {
                let h = chain_hash(&prev, columns.iter().map(|v| hash_value(ValueRef::from(v))));
                tx.exec(
                    "UPDATE audit_events SET hash = ?2 WHERE id = ?1",
                    (id, &h[..]),
                )
                .map_err(StoreError::sqlite("chaining an audit event"))?;
                chained += 1;
                h
            }
        };
        prev = hash;
    }
    Ok(chained)
}

/// Walks the whole chain, oldest first, and stops at the first event whose
/// stored hash is not the hash of the event before it and its own columns.
pub(crate) fn verify_chain(tx: &Transaction<'_>) -> Result<AuditCheck, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {HASHED_COLUMNS}, hash FROM audit_events ORDER BY id"
        ))
        .map_err(StoreError::sqlite("reading audit events"))?;
    let mut rows = stmt
        .query([])
        .map_err(StoreError::sqlite("reading audit events"))?;
    let mut prev = GENESIS;
    let mut intact = 0u64;
    while let Some(row) = rows
        .next()
        .map_err(StoreError::sqlite("reading audit events"))?
    {
        let id = match row.get_ref(0) {
            Ok(ValueRef::Integer(id)) => id,
            _ => 0,
        };
        let columns = (0..7)
            .map(|i| row.get_ref(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::sqlite("reading audit events"))?;
        let expected = chain_hash(&prev, columns.into_iter().map(hash_value));
        let stored: Option<Vec<u8>> = match row.get_ref(7) {
            Ok(ValueRef::Blob(b)) => Some(b.to_vec()),
            _ => None,
        };
        let reason = match hash_array(stored.as_deref()) {
            None => Some("it has no hash".to_string()),
            Some(h) if h != expected => Some(
                "its hash does not match its content and the event before it: \
                 it, or the event before it, was changed or removed after it was written"
                    .to_string(),
            ),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            return Ok(AuditCheck::Broken { id, intact, reason });
        }
        prev = expected;
        intact += 1;
    }
    Ok(AuditCheck::Intact { events: intact })
}

const EVENT_COLUMNS: &str =
    "e.id, e.at, e.kind, e.message_id, e.message, e.detail, e.address, e.hash";

/// The events about one Message-ID, oldest first.
pub(crate) fn events(
    tx: &Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events e WHERE e.message_id = ?1 ORDER BY e.id"
        ))
        .map_err(StoreError::sqlite("reading audit events"))?;
    let rows = stmt
        .query_map([message_id.as_str()], event_row)
        .map_err(StoreError::sqlite("reading audit events"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("reading audit events"))
}

/// The events `filter` selects, oldest first.
pub(crate) fn export(
    tx: &Transaction<'_>,
    filter: &AuditFilter,
) -> Result<Vec<AuditEvent>, StoreError> {
    // An event naming an address belongs to that address only; one naming
    // none (queue, tracking, sealing) belongs to every address its message
    // went from, to, or into the mailbox of.
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events e
             WHERE (?1 IS NULL OR e.at >= ?1)
               AND (?2 IS NULL
                    OR e.address = ?2
                    OR (e.address IS NULL AND (
                        e.message IN (SELECT id FROM messages WHERE envelope_from = ?2
                                      UNION SELECT message FROM recipients WHERE address = ?2)
                        OR e.message_id IN (SELECT message_id FROM mailbox
                                            WHERE address = ?2 AND message_id IS NOT NULL))))
             ORDER BY e.id"
        ))
        .map_err(StoreError::sqlite("exporting audit events"))?;
    let rows = stmt
        .query_map(
            (
                filter.since.map(|t| t.unix_timestamp()),
                filter.address.as_ref().map(ToString::to_string),
            ),
            event_row,
        )
        .map_err(StoreError::sqlite("exporting audit events"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("exporting audit events"))
}

/// The `login-failed` events about `address` written at or after `since`
/// (Unix seconds), for throttling logins.
pub(crate) fn failed_logins_since(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    since: i64,
) -> Result<u64, StoreError> {
    tx.row(
        "SELECT count(*) FROM audit_events
         WHERE kind = ?1 AND address = ?2 AND at >= ?3",
        (AuditKind::LoginFailed.as_str(), address.to_string(), since),
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
    .map_err(StoreError::sqlite("counting failed logins"))
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let hash: Option<Vec<u8>> = r.get(7)?;
    Ok(AuditEvent {
        id: r.get(0)?,
        at: time_at(r, 1)?,
        kind: parsed(r, 2, "audit kind", AuditKind::from_name)?,
        message_id: message_id_opt(r, 3)?,
        message: r.get::<_, Option<i64>>(4)?.map(MessageRecordId),
        detail: r.get(5)?,
        address: address_opt(r, 6)?,
        hash: hash_array(hash.as_deref()).map(AuditHash),
    })
}
