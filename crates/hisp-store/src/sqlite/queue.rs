//! The queue and per-recipient tracking in SQLite: the reads (the queue's
//! listing, when the next entry is due, recipients with their tracking) and
//! the release of every lease at start. What the queue and tracking do
//! (enqueueing, claims, leases, moves) is written once in `crate::ops` over
//! the statements in `sqlite/tx.rs`.
//!
//! SQLite has one writer at a time, so a claim is an IMMEDIATE transaction
//! that picks due rows and writes a lease on them; no other claimer can pick
//! the same rows in between. PostgreSQL, with many writers, does the same
//! with `SELECT ... FOR UPDATE SKIP LOCKED` on the same columns.

use super::cached::Cached;

use rusqlite::{Row, Transaction};
use time::OffsetDateTime;

use super::rows::{
    address_at, address_opt, count_at, message_id_opt, millis_opt, now, parsed, time_at, time_opt,
};
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::message::{MessageDirection, MessageId, MessageRecordId};
use crate::queue::{QueueEntry, QueueItemId, QueueState};
use crate::tracking::{DeliveryStatus, RecipientId, RecipientRecord, TrackingState};

/// When the next pending entry is due: its next attempt, or the end of the
/// lease holding it if that is later.
pub(crate) fn next_due(tx: &Transaction<'_>) -> Result<Option<OffsetDateTime>, StoreError> {
    let secs: Option<i64> = tx
        .row(
            "SELECT min(max(next_attempt_at, coalesce(lease_until, next_attempt_at)))
             FROM queue WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .map_err(StoreError::sqlite("finding the next due entry"))?;
    secs.map(|s| {
        OffsetDateTime::from_unix_timestamp(s).map_err(|_| StoreError::Invalid {
            what: "queue entry",
            value: s.to_string(),
            reason: "its next attempt is out of range".into(),
        })
    })
    .transpose()
}

/// Ends every lease still running: the entries are claimable at once.
pub(crate) fn release_leases(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    tx.exec(
        "UPDATE queue SET lease_token = NULL, lease_until = NULL, updated_at = ?1
         WHERE state = 'pending' AND lease_token IS NOT NULL",
        [now()],
    )
    .map_err(StoreError::sqlite("releasing leases"))
}

pub(crate) fn entries(
    tx: &Transaction<'_>,
    state: Option<QueueState>,
) -> Result<Vec<QueueEntry>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT q.id, q.message, m.direction, m.message_id, m.envelope_from, m.size,
                    m.received_at, q.state, q.attempts, q.next_attempt_at, q.lease_until,
                    q.last_error, coalesce(t.expect, 'mail'), q.queued_ms, q.first_attempt_ms,
                    q.last_attempt_ms
             FROM queue q JOIN messages m ON m.id = q.message
                  LEFT JOIN message_tracking t ON t.message = m.id
             WHERE ?1 IS NULL OR q.state = ?1
             ORDER BY q.id",
        )
        .map_err(StoreError::sqlite("listing the queue"))?;
    let rows = stmt
        .query_map([state.map(QueueState::as_str)], |r| {
            Ok(QueueEntry {
                id: QueueItemId(r.get(0)?),
                message: MessageRecordId(r.get(1)?),
                direction: parsed(r, 2, "direction", MessageDirection::from_name)?,
                message_id: message_id_opt(r, 3)?,
                envelope_from: address_opt(r, 4)?,
                expect: parsed(r, 12, "expectation", Expectation::from_name)?,
                recipients: Vec::new(),
                size: count_at(r, 5)?,
                received_at: time_at(r, 6)?,
                state: parsed(r, 7, "queue state", QueueState::from_name)?,
                attempts: count_at(r, 8)?,
                next_attempt_at: time_at(r, 9)?,
                leased_until: time_opt(r, 10)?,
                last_error: r.get(11)?,
                queued_at: millis_opt(r, 13)?,
                first_attempt_at: millis_opt(r, 14)?,
                last_attempt_at: millis_opt(r, 15)?,
            })
        })
        .map_err(StoreError::sqlite("listing the queue"))?;
    let mut entries: Vec<QueueEntry> = rows
        .collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing the queue"))?;
    for e in &mut entries {
        e.recipients = recipients_of(tx, e.message)?;
    }
    Ok(entries)
}

/// The columns [`recipient_row`] reads. Every one of them is in `recipients`,
/// `message_tracking` or before `body` in `messages`, so reading them never
/// touches a message body.
pub(super) const RECIPIENT_COLUMNS: &str =
    "r.id, r.message, m.message_id, r.address, r.state, r.queued_at,
    r.relayed_at, r.processed_at, r.dispatched_at, r.delivered_at, r.failed_at, r.reason,
    r.notified_at, m.envelope_from, m.direction, coalesce(t.expect, 'mail'), r.status";

/// The tables [`RECIPIENT_COLUMNS`] come from.
pub(super) const RECIPIENT_FROM: &str = "recipients r JOIN messages m ON m.id = r.message
    LEFT JOIN message_tracking t ON t.message = m.id";

fn recipient_row(r: &Row<'_>) -> rusqlite::Result<RecipientRecord> {
    let mut reached_at = [None; 6];
    for (i, slot) in reached_at.iter_mut().enumerate() {
        *slot = time_opt(r, 5 + i)?;
    }
    Ok(RecipientRecord {
        id: RecipientId(r.get(0)?),
        message: MessageRecordId(r.get(1)?),
        message_id: message_id_opt(r, 2)?,
        address: address_at(r, 3)?,
        state: parsed(r, 4, "tracking state", TrackingState::from_name)?,
        reached_at,
        reason: r.get(11)?,
        notified_at: time_opt(r, 12)?,
        envelope_from: address_opt(r, 13)?,
        direction: parsed(r, 14, "direction", MessageDirection::from_name)?,
        expect: parsed(r, 15, "expectation", Expectation::from_name)?,
        status: match r.get::<_, Option<String>>(16)? {
            Some(_) => Some(parsed(r, 16, "delivery status", |code| {
                code.parse::<DeliveryStatus>().ok()
            })?),
            None => None,
        },
    })
}

pub(super) fn recipients_where(
    tx: &Transaction<'_>,
    condition: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_query(tx, &format!("{condition} ORDER BY r.id"), [value])
}

/// The recipients matching `condition_and_order` (the SQL after `WHERE`,
/// over the aliases `r`, `m` and `t`), with `params`.
pub(super) fn recipients_query(
    tx: &Transaction<'_>,
    condition_and_order: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecipientRecord>, StoreError> {
    let sql =
        format!("SELECT {RECIPIENT_COLUMNS} FROM {RECIPIENT_FROM} WHERE {condition_and_order}");
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("reading recipients"))?;
    let rows = stmt
        .query_map(params, recipient_row)
        .map_err(StoreError::sqlite("reading recipients"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("reading recipients"))
}

pub(super) fn recipients_of(
    tx: &Transaction<'_>,
    message: MessageRecordId,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_where(tx, "r.message = ?1", &message.0)
}

/// The recipients of every queued message with this Message-ID (an MDN or
/// DSN names the original's Message-ID).
pub(crate) fn tracking(
    tx: &Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_where(tx, "m.message_id = ?1", &message_id.as_str())
}
