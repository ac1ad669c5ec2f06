//! Quarantined messages in SQLite: the listing and one entry with its
//! bytes. Quarantining is `crate::ops::quarantine`'s.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Row, Transaction};

use super::rows::{address_opt, count_at, message_id_opt, parsed, time_at};
use crate::error::{Entity, StoreError};
use crate::message::Envelope;
use crate::quarantine::{QuarantineId, QuarantineRecord, QuarantinedMessage};
use hisp_address::DirectAddress;

const COLUMNS: &str = "q.id, q.message_id, q.envelope_from, q.recipients, q.received_at,
    q.reason, q.detail, q.size, q.quarantined_at";

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
