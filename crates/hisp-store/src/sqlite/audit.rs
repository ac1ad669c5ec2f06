//! The audit log in SQLite: every other module writes its events through
//! [`write`], inside the transaction that makes the change, so a change and
//! its event commit together.

use rusqlite::{Row, Transaction};

use super::rows::{message_id_opt, now, parsed, time_at};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::StoreError;
use crate::message::{MessageId, MessageRecordId};

/// Appends one event.
pub(crate) fn write(
    tx: &Transaction<'_>,
    kind: AuditKind,
    message_id: Option<&MessageId>,
    message: Option<MessageRecordId>,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_events (at, kind, message_id, message, detail)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            now(),
            kind.as_str(),
            message_id.map(MessageId::as_str),
            message.map(|m| m.0),
            detail,
        ),
    )
    .map_err(StoreError::sqlite("writing an audit event"))?;
    Ok(())
}

/// The events about one Message-ID, oldest first.
pub(crate) fn events(
    tx: &Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut stmt = tx
        .prepare(
            "SELECT id, at, kind, message_id, message, detail FROM audit_events
             WHERE message_id = ?1 ORDER BY id",
        )
        .map_err(StoreError::sqlite("reading audit events"))?;
    let rows = stmt
        .query_map([message_id.as_str()], event_row)
        .map_err(StoreError::sqlite("reading audit events"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("reading audit events"))
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(0)?,
        at: time_at(r, 1)?,
        kind: parsed(r, 2, "audit kind", AuditKind::from_name)?,
        message_id: message_id_opt(r, 3)?,
        message: r.get::<_, Option<i64>>(4)?.map(MessageRecordId),
        detail: r.get(5)?,
    })
}
