//! Quarantined messages in SQLite.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Row, Transaction};

use super::audit;
use super::rows::{address_opt, count_at, len_i64, message_id_opt, now, parsed, time_at};
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::message::{Envelope, HeaderSummary, MessageId, MessageRecordId};
use crate::quarantine::{QuarantineId, QuarantineReason, QuarantineRecord, QuarantinedMessage};
use hisp_address::DirectAddress;

const COLUMNS: &str = "q.id, q.message_id, q.envelope_from, q.recipients, q.received_at,
    q.reason, q.detail, q.size, q.quarantined_at";

pub(crate) fn add(
    tx: &Transaction<'_>,
    bytes: &[u8],
    reason: QuarantineReason,
    detail: &str,
    envelope: &Envelope,
) -> Result<QuarantineId, StoreError> {
    let message_id = HeaderSummary::read(bytes).message_id;
    let recipients: Vec<String> = envelope
        .recipients
        .iter()
        .map(ToString::to_string)
        .collect();
    tx.exec(
        "INSERT INTO quarantine (message_id, envelope_from, recipients, received_at, reason,
                                 detail, size, quarantined_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        (
            message_id.as_ref().map(MessageId::as_str),
            envelope.from.as_ref().map(ToString::to_string),
            recipients.join("\n"),
            envelope.received_at.unix_timestamp(),
            reason.as_str(),
            detail,
            len_i64(bytes.len()),
            now(),
            bytes,
        ),
    )
    .map_err(StoreError::sqlite("quarantining a message"))?;
    let id = QuarantineId(tx.last_insert_rowid());
    audited(tx, id, message_id.as_ref(), None, reason, detail)
}

/// Quarantines a message the store holds already (the queue's copy): the
/// entry refers to it, and its bytes are not copied.
pub(crate) fn add_queued(
    tx: &Transaction<'_>,
    message: MessageRecordId,
    reason: QuarantineReason,
    detail: &str,
    envelope: &Envelope,
) -> Result<QuarantineId, StoreError> {
    let recipients: Vec<String> = envelope
        .recipients
        .iter()
        .map(ToString::to_string)
        .collect();
    let changed = tx
        .exec(
            "INSERT INTO quarantine (message_id, envelope_from, recipients, received_at, reason,
                                     detail, size, quarantined_at, message)
             SELECT message_id, ?2, ?3, ?4, ?5, ?6, size, ?7, id FROM messages WHERE id = ?1",
            (
                message.0,
                envelope.from.as_ref().map(ToString::to_string),
                recipients.join("\n"),
                envelope.received_at.unix_timestamp(),
                reason.as_str(),
                detail,
                now(),
            ),
        )
        .map_err(StoreError::sqlite("quarantining a message"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::Message,
            name: message.to_string(),
        });
    }
    let id = QuarantineId(tx.last_insert_rowid());
    let message_id: Option<String> = tx
        .row(
            "SELECT message_id FROM quarantine WHERE id = ?1",
            [id.0],
            |r| r.get(0),
        )
        .map_err(StoreError::sqlite("quarantining a message"))?;
    let message_id = message_id.and_then(|m| MessageId::parse(&m).ok());
    audited(tx, id, message_id.as_ref(), Some(message), reason, detail)
}

/// Writes the audit event of a new quarantine entry.
fn audited(
    tx: &Transaction<'_>,
    id: QuarantineId,
    message_id: Option<&MessageId>,
    message: Option<MessageRecordId>,
    reason: QuarantineReason,
    detail: &str,
) -> Result<QuarantineId, StoreError> {
    audit::write(
        tx,
        AuditKind::Quarantined,
        message_id,
        message,
        &format!("quarantine entry {id}: {reason}: {detail}"),
    )?;
    Ok(id)
}

fn record_row(r: &Row<'_>) -> rusqlite::Result<QuarantineRecord> {
    let recipients: String = r.get(3)?;
    let recipients = recipients
        .lines()
        .map(|a| {
            DirectAddress::parse(a).map_err(|_| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Text,
                    "bad address".into(),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(QuarantineRecord {
        id: QuarantineId(r.get(0)?),
        message_id: message_id_opt(r, 1)?,
        envelope: Envelope {
            from: address_opt(r, 2)?,
            recipients,
            received_at: time_at(r, 4)?,
        },
        reason: parsed(r, 5, "quarantine reason", |s| s.parse().ok())?,
        detail: r.get(6)?,
        size: count_at(r, 7)?,
        quarantined_at: time_at(r, 8)?,
    })
}

pub(crate) fn list(tx: &Transaction<'_>) -> Result<Vec<QuarantineRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM quarantine q ORDER BY q.id");
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("listing the quarantine"))?;
    let rows = stmt
        .query_map([], record_row)
        .map_err(StoreError::sqlite("listing the quarantine"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing the quarantine"))
}

pub(crate) fn message(
    tx: &Transaction<'_>,
    id: QuarantineId,
) -> Result<QuarantinedMessage, StoreError> {
    // An entry made from a queued message holds no bytes of its own.
    let sql = format!(
        "SELECT {COLUMNS}, coalesce(q.body, m.body) FROM quarantine q
         LEFT JOIN messages m ON m.id = q.message WHERE q.id = ?1"
    );
    tx.row(&sql, [id.0], |r| {
        Ok(QuarantinedMessage {
            record: record_row(r)?,
            bytes: r.get(9)?,
        })
    })
    .optional()
    .map_err(StoreError::sqlite("reading a quarantined message"))?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Quarantined,
        name: id.to_string(),
    })
}
