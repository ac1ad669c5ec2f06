//! The audit log in PostgreSQL: its reads and the check of the chain.
//! Events are appended by `crate::ops::audit` inside the transaction that
//! makes the change, under the advisory lock `postgres/tx.rs` takes, so
//! "the event before" is well defined across instances.
//!
//! The check recomputes every hash with the same `chain_hash` as SQLite's
//! from the stored columns. PostgreSQL's columns hold only their declared
//! types (integers for `id`, `at` and `message`, text for the rest), so a
//! value is hashed by the type it is stored as, exactly as SQLite's typed
//! values are.

use ::postgres::{Row, Transaction};

use super::rows::{address_opt, col, key, message_id_opt, parsed, time_at};
use crate::audit::{AuditCheck, AuditEvent, AuditFilter, AuditHash, AuditKind};
use crate::error::StoreError;
use crate::message::{MessageId, MessageRecordId};
use crate::ops::audit::{chain_hash, hash_array, HashValue, GENESIS};
use hisp_address::DirectAddress;

/// Events read per round trip while checking the chain, so a long chain is
/// never held in memory at once.
const CHECK_BATCH: i64 = 5000;

/// A nullable text column as the chain hashes it.
fn text(t: Option<&str>) -> HashValue<'_> {
    t.map_or(HashValue::Null, |t| HashValue::Text(t.as_bytes()))
}

/// Walks the whole chain, oldest first, and stops at the first event whose
/// stored hash is not the hash of the event before it and its own columns.
pub(crate) fn verify_chain(tx: &mut Transaction<'_>) -> Result<AuditCheck, StoreError> {
    let mut prev = GENESIS;
    let mut intact = 0u64;
    let mut after = i64::MIN;
    loop {
        let rows = tx
            .query(
                "SELECT id, at, kind, message_id, message, address, detail, hash
                 FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &CHECK_BATCH],
            )
            .map_err(StoreError::postgres("reading audit events"))?;
        if rows.is_empty() {
            return Ok(AuditCheck::Intact { events: intact });
        }
        for row in &rows {
            let id: i64 = col(row, 0)?;
            after = id;
            let at: i64 = col(row, 1)?;
            let kind: &str = col(row, 2)?;
            let message_id: Option<&str> = col(row, 3)?;
            let message: Option<i64> = col(row, 4)?;
            let address: Option<&str> = col(row, 5)?;
            let detail: &str = col(row, 6)?;
            let expected = chain_hash(
                &prev,
                [
                    HashValue::Integer(id),
                    HashValue::Integer(at),
                    HashValue::Text(kind.as_bytes()),
                    text(message_id),
                    message.map_or(HashValue::Null, HashValue::Integer),
                    text(address),
                    HashValue::Text(detail.as_bytes()),
                ],
            );
            let stored: Option<&[u8]> = col(row, 7)?;
            let reason = match hash_array(stored) {
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
    }
}

const EVENT_COLUMNS: &str =
    "e.id, e.at, e.kind, e.message_id, e.message, e.detail, e.address, e.hash";

fn event_row(r: &Row) -> Result<AuditEvent, StoreError> {
    let hash: Option<&[u8]> = col(r, 7)?;
    Ok(AuditEvent {
        id: col(r, 0)?,
        at: time_at(r, 1)?,
        kind: parsed(r, 2, "audit kind", AuditKind::from_name)?,
        message_id: message_id_opt(r, 3)?,
        message: col::<Option<i64>>(r, 4)?.map(MessageRecordId),
        detail: col(r, 5)?,
        address: address_opt(r, 6)?,
        hash: hash_array(hash).map(AuditHash),
    })
}

/// The events about one Message-ID, oldest first.
pub(super) fn events(
    tx: &mut Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<AuditEvent>, StoreError> {
    tx.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events e WHERE e.message_id = $1 ORDER BY e.id"
        ),
        &[&message_id.as_str()],
    )
    .map_err(StoreError::postgres("reading audit events"))?
    .iter()
    .map(event_row)
    .collect()
}

/// The events `filter` selects, oldest first: an event naming an address
/// belongs to that address only; one naming none belongs to every address
/// its message went from, to, or into the mailbox of.
pub(super) fn export(
    tx: &mut Transaction<'_>,
    filter: &AuditFilter,
) -> Result<Vec<AuditEvent>, StoreError> {
    tx.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events e
             WHERE ($1::bigint IS NULL OR e.at >= $1)
               AND ($2::text IS NULL
                    OR e.address_key = $2
                    OR (e.address IS NULL AND (
                        e.message IN (SELECT id FROM messages WHERE envelope_from_key = $2
                                      UNION SELECT message FROM recipients WHERE address_key = $2)
                        OR e.message_id IN (SELECT message_id FROM mailbox
                                            WHERE address_key = $2 AND message_id IS NOT NULL))))
             ORDER BY e.id"
        ),
        &[
            &filter.since.map(|t| t.unix_timestamp()),
            &filter.address.as_ref().map(key),
        ],
    )
    .map_err(StoreError::postgres("exporting audit events"))?
    .iter()
    .map(event_row)
    .collect()
}

/// The `login-failed` events about `address` written at or after `since`.
pub(super) fn failed_logins_since(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
    since: i64,
) -> Result<u64, StoreError> {
    let row = tx
        .query_one(
            "SELECT count(*) FROM audit_events
             WHERE address_key = $2 AND kind = $1 AND at >= $3",
            &[&AuditKind::LoginFailed.as_str(), &key(address), &since],
        )
        .map_err(StoreError::postgres("counting failed logins"))?;
    Ok(u64::try_from(col::<i64>(&row, 0)?).unwrap_or(0))
}
