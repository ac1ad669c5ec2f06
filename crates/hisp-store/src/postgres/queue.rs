//! The queue and per-recipient tracking in PostgreSQL: the reads (the
//! queue's listing, when the next entry is due, recipients with their
//! tracking, the delivery notification sweep's lists, listings of outbound
//! messages) and the release of an instance's own leases. What the queue
//! and tracking do is written once in `crate::ops` over `postgres/tx.rs`.

use ::postgres::types::ToSql;
use ::postgres::{Row, Transaction};
use time::OffsetDateTime;

use super::rows::{
    address_at, address_opt, col, count_at, message_id_opt, millis_opt, now, parsed, time_at,
    time_opt,
};
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::message::{MessageDirection, MessageId, MessageRecordId};
use crate::queue::{QueueEntry, QueueItemId, QueueState};
use crate::tracking::{
    DeliveryStatus, RecipientId, RecipientRecord, TrackFilter, TrackedMessage, TrackingState,
};

/// When the next pending entry is due: its next attempt, or the end of the
/// lease holding it if that is later.
pub(super) fn next_due(tx: &mut Transaction<'_>) -> Result<Option<OffsetDateTime>, StoreError> {
    let row = tx
        .query_one(
            "SELECT min(greatest(next_attempt_at, coalesce(lease_until, next_attempt_at)))
             FROM queue WHERE state = 'pending'",
            &[],
        )
        .map_err(StoreError::postgres("finding the next due entry"))?;
    time_opt(&row, 0)
}

/// Ends the leases `instance` holds (an instance starting again, whose
/// previous run died holding them); another instance's leases run on.
pub(super) fn release_leases(
    tx: &mut Transaction<'_>,
    instance: &str,
) -> Result<usize, StoreError> {
    let n = tx
        .execute(
            "UPDATE queue SET lease_owner = NULL, lease_token = NULL, lease_until = NULL,
                              updated_at = $1
             WHERE state = 'pending' AND lease_owner = $2 AND lease_token IS NOT NULL",
            &[&now(), &instance],
        )
        .map_err(StoreError::postgres("releasing leases"))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The queue (entries in one state, or all), oldest first.
pub(super) fn entries(
    tx: &mut Transaction<'_>,
    state: Option<QueueState>,
) -> Result<Vec<QueueEntry>, StoreError> {
    let rows = tx
        .query(
            "SELECT q.id, q.message, m.direction, m.message_id, m.envelope_from, m.size,
                    m.received_at, q.state, q.attempts, q.next_attempt_at, q.lease_until,
                    q.last_error, coalesce(t.expect, 'mail'), q.queued_ms, q.first_attempt_ms,
                    q.last_attempt_ms
             FROM queue q JOIN messages m ON m.id = q.message
                  LEFT JOIN message_tracking t ON t.message = m.id
             WHERE $1::text IS NULL OR q.state = $1
             ORDER BY q.id",
            &[&state.map(QueueState::as_str)],
        )
        .map_err(StoreError::postgres("listing the queue"))?;
    let mut entries = rows
        .iter()
        .map(|r| {
            Ok(QueueEntry {
                id: QueueItemId(col(r, 0)?),
                message: MessageRecordId(col(r, 1)?),
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
                last_error: col(r, 11)?,
                queued_at: millis_opt(r, 13)?,
                first_attempt_at: millis_opt(r, 14)?,
                last_attempt_at: millis_opt(r, 15)?,
            })
        })
        .collect::<Result<Vec<QueueEntry>, StoreError>>()?;
    for e in &mut entries {
        e.recipients = recipients_of(tx, e.message)?;
    }
    Ok(entries)
}

/// The columns [`recipient_row`] reads; none of them is a message body.
const RECIPIENT_COLUMNS: &str = "r.id, r.message, m.message_id, r.address, r.state, r.queued_at,
    r.relayed_at, r.processed_at, r.dispatched_at, r.delivered_at, r.failed_at, r.reason,
    r.notified_at, m.envelope_from, m.direction, coalesce(t.expect, 'mail'), r.status";

/// The tables [`RECIPIENT_COLUMNS`] come from.
const RECIPIENT_FROM: &str = "recipients r JOIN messages m ON m.id = r.message
    LEFT JOIN message_tracking t ON t.message = m.id";

fn recipient_row(r: &Row) -> Result<RecipientRecord, StoreError> {
    let mut reached_at = [None; 6];
    for (i, slot) in reached_at.iter_mut().enumerate() {
        *slot = time_opt(r, 5 + i)?;
    }
    Ok(RecipientRecord {
        id: RecipientId(col(r, 0)?),
        message: MessageRecordId(col(r, 1)?),
        message_id: message_id_opt(r, 2)?,
        address: address_at(r, 3)?,
        state: parsed(r, 4, "tracking state", TrackingState::from_name)?,
        reached_at,
        reason: col(r, 11)?,
        notified_at: time_opt(r, 12)?,
        envelope_from: address_opt(r, 13)?,
        direction: parsed(r, 14, "direction", MessageDirection::from_name)?,
        expect: parsed(r, 15, "expectation", Expectation::from_name)?,
        status: match col::<Option<&str>>(r, 16)? {
            Some(code) => Some(
                code.parse::<DeliveryStatus>()
                    .map_err(|_| super::rows::corrupt("delivery status"))?,
            ),
            None => None,
        },
    })
}

/// The recipients matching `condition_and_order` (the SQL after `WHERE`,
/// over the aliases `r`, `m` and `t`), with `params`.
pub(super) fn recipients_query(
    tx: &mut Transaction<'_>,
    condition_and_order: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<RecipientRecord>, StoreError> {
    let sql =
        format!("SELECT {RECIPIENT_COLUMNS} FROM {RECIPIENT_FROM} WHERE {condition_and_order}");
    tx.query(&sql, params)
        .map_err(StoreError::postgres("reading recipients"))?
        .iter()
        .map(recipient_row)
        .collect()
}

/// The recipients matching `condition_and_order` with one parameter.
pub(super) fn recipients_where(
    tx: &mut Transaction<'_>,
    condition_and_order: &str,
    value: &(dyn ToSql + Sync),
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_query(tx, condition_and_order, &[value])
}

/// The recipients of one message, by id.
pub(super) fn recipients_of(
    tx: &mut Transaction<'_>,
    message: MessageRecordId,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_where(tx, "r.message = $1 ORDER BY r.id", &message.0)
}

/// The recipients of every queued message with this Message-ID.
pub(super) fn tracking(
    tx: &mut Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_where(tx, "m.message_id = $1 ORDER BY r.id", &message_id.as_str())
}

/// Recipients of outbound mail relayed at or before `relayed_before` and
/// still waiting for MDNs, oldest relay first.
pub(super) fn overdue(
    tx: &mut Transaction<'_>,
    relayed_before: OffsetDateTime,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_query(
        tx,
        "r.state IN ('relayed', 'processed') AND r.relayed_at <= $1
           AND m.direction = 'outbound'
           AND coalesce(t.expect, 'mail') IN ('mail', 'mail-final-delivery')
         ORDER BY r.relayed_at, r.id",
        &[&relayed_before.unix_timestamp()],
    )
}

/// Failed recipients of outbound mail with a sender to tell, not yet told.
pub(super) fn unnotified_failures(
    tx: &mut Transaction<'_>,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_query(
        tx,
        "r.state = 'failed' AND r.notified_at IS NULL
           AND m.direction = 'outbound' AND m.envelope_from IS NOT NULL
           AND coalesce(t.expect, 'mail') IN ('mail', 'mail-final-delivery')
         ORDER BY r.message, r.id",
        &[],
    )
}

/// Outbound messages matching `filter`, newest first, with all their
/// recipients.
pub(super) fn tracked_messages(
    tx: &mut Transaction<'_>,
    filter: TrackFilter,
) -> Result<Vec<TrackedMessage>, StoreError> {
    match filter {
        TrackFilter::All => messages_where(tx, "m.direction = 'outbound'", &[]),
        TrackFilter::State(state) => messages_where(
            tx,
            "m.direction = 'outbound' AND EXISTS (SELECT 1 FROM recipients r
                                                  WHERE r.message = m.id AND r.state = $1)",
            &[&state.as_str()],
        ),
        TrackFilter::Pending => {
            let finals: Vec<&str> = TrackingState::ALL
                .into_iter()
                .filter(|s| s.is_final())
                .map(TrackingState::as_str)
                .collect();
            messages_where(
                tx,
                "m.direction = 'outbound' AND EXISTS (SELECT 1 FROM recipients r
                     WHERE r.message = m.id AND r.state <> ALL($1::text[]))",
                &[&finals],
            )
        }
    }
}

/// Outbound messages with this Message-ID, newest first.
pub(super) fn tracked_message(
    tx: &mut Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<TrackedMessage>, StoreError> {
    messages_where(
        tx,
        "m.direction = 'outbound' AND m.message_id = $1",
        &[&message_id.as_str()],
    )
}

fn messages_where(
    tx: &mut Transaction<'_>,
    condition: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<TrackedMessage>, StoreError> {
    let sql = format!(
        "SELECT m.id, m.message_id, m.envelope_from, m.received_at, t.subject,
                coalesce(t.expect, 'mail')
         FROM messages m LEFT JOIN message_tracking t ON t.message = m.id
         WHERE {condition}
         ORDER BY m.received_at DESC, m.id DESC"
    );
    let mut messages = tx
        .query(&sql, params)
        .map_err(StoreError::postgres("listing tracked messages"))?
        .iter()
        .map(|r| {
            Ok(TrackedMessage {
                message: MessageRecordId(col(r, 0)?),
                message_id: message_id_opt(r, 1)?,
                envelope_from: address_opt(r, 2)?,
                received_at: time_at(r, 3)?,
                subject: col(r, 4)?,
                expect: parsed(r, 5, "expectation", Expectation::from_name)?,
                recipients: Vec::new(),
            })
        })
        .collect::<Result<Vec<TrackedMessage>, StoreError>>()?;
    for m in &mut messages {
        m.recipients = recipients_of(tx, m.message)?;
    }
    Ok(messages)
}
