//! Delivery notification tracking in SQLite (Implementation Guide for
//! Delivery Notification in Direct 1.0): the recipients the MDN timeout must
//! fail, the failures whose sender has not been told, and listings of
//! outbound messages. (The one final notice per recipient is
//! `crate::ops::tracking::notify_sender`.)
//!
//! None of these reads a message body: recipients and listings come from
//! `recipients`, `message_tracking` and the columns of `messages` before
//! `body`.

use rusqlite::{Params, Row, Transaction};
use time::OffsetDateTime;

use super::queue::{recipients_of, recipients_query};
use super::rows::{address_opt, message_id_opt, parsed, time_at};
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::message::{MessageId, MessageRecordId};
use crate::tracking::{RecipientRecord, TrackFilter, TrackedMessage, TrackingState};

/// Recipients of outbound mail (not notifications or portal notices) relayed at or before
/// `?1` and still waiting for MDNs, oldest relay first. The state test is
/// written exactly as `recipients_awaiting_mdn`'s, so SQLite can use that
/// partial index; the unary `+` keeps it from starting at
/// `messages_received` (every outbound message) instead.
pub(super) const OVERDUE: &str = "r.state IN ('relayed', 'processed') AND r.relayed_at <= ?1
       AND +m.direction = 'outbound'
       AND coalesce(t.expect, 'mail') IN ('mail', 'mail-final-delivery')
     ORDER BY r.relayed_at, r.id";

/// Failed recipients of outbound mail with a sender to tell, not yet told;
/// read through the partial index `recipients_unnotified`.
pub(super) const UNNOTIFIED: &str = "r.state = 'failed' AND r.notified_at IS NULL
       AND +m.direction = 'outbound' AND m.envelope_from IS NOT NULL
       AND coalesce(t.expect, 'mail') IN ('mail', 'mail-final-delivery')
     ORDER BY r.message, r.id";

pub(crate) fn overdue(
    tx: &Transaction<'_>,
    relayed_before: OffsetDateTime,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_query(tx, OVERDUE, [relayed_before.unix_timestamp()])
}

pub(crate) fn unnotified_failures(
    tx: &Transaction<'_>,
) -> Result<Vec<RecipientRecord>, StoreError> {
    recipients_query(tx, UNNOTIFIED, ())
}

/// Outbound messages matching `filter`, newest first, with all their
/// recipients.
pub(crate) fn tracked_messages(
    tx: &Transaction<'_>,
    filter: TrackFilter,
) -> Result<Vec<TrackedMessage>, StoreError> {
    match filter {
        TrackFilter::All => messages_where(tx, OUTBOUND, ()),
        TrackFilter::State(state) => messages_where(
            tx,
            &format!(
                "{OUTBOUND} AND EXISTS (SELECT 1 FROM recipients r
                                        WHERE r.message = m.id AND r.state = ?1)"
            ),
            [state.as_str()],
        ),
        TrackFilter::Pending => {
            // The names come from the enum, never from input.
            let finals: Vec<String> = TrackingState::ALL
                .into_iter()
                .filter(|s| s.is_final())
                .map(|s| format!("'{s}'"))
                .collect();
            messages_where(
                tx,
                &format!(
                    "{OUTBOUND} AND EXISTS (SELECT 1 FROM recipients r
                                            WHERE r.message = m.id AND r.state NOT IN ({}))",
                    finals.join(", ")
                ),
                (),
            )
        }
    }
}

/// Outbound messages with this Message-ID, newest first.
pub(crate) fn tracked_message(
    tx: &Transaction<'_>,
    message_id: &MessageId,
) -> Result<Vec<TrackedMessage>, StoreError> {
    messages_where(tx, BY_MESSAGE_ID, [message_id.as_str()])
}

/// Outbound messages, read in order through `messages_received`.
const OUTBOUND: &str = "m.direction = 'outbound'";

/// Outbound messages with the Message-ID `?1`. The unary `+` keeps SQLite
/// from walking every outbound message in `messages_received` order instead
/// of looking the id up in `messages_message_id`.
pub(super) const BY_MESSAGE_ID: &str = "+m.direction = 'outbound' AND m.message_id = ?1";

/// The listing query for messages matching `condition` (over `m`), newest
/// first.
pub(super) fn listing_sql(condition: &str) -> String {
    format!(
        "SELECT m.id, m.message_id, m.envelope_from, m.received_at, t.subject,
                coalesce(t.expect, 'mail')
         FROM messages m LEFT JOIN message_tracking t ON t.message = m.id
         WHERE {condition}
         ORDER BY m.received_at DESC, m.id DESC"
    )
}

fn messages_where(
    tx: &Transaction<'_>,
    condition: &str,
    params: impl Params,
) -> Result<Vec<TrackedMessage>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&listing_sql(condition))
        .map_err(StoreError::sqlite("listing tracked messages"))?;
    let rows = stmt
        .query_map(params, message_row)
        .map_err(StoreError::sqlite("listing tracked messages"))?;
    let mut messages: Vec<TrackedMessage> = rows
        .collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing tracked messages"))?;
    for m in &mut messages {
        m.recipients = recipients_of(tx, m.message)?;
    }
    Ok(messages)
}

fn message_row(r: &Row<'_>) -> rusqlite::Result<TrackedMessage> {
    Ok(TrackedMessage {
        message: MessageRecordId(r.get(0)?),
        message_id: message_id_opt(r, 1)?,
        envelope_from: address_opt(r, 2)?,
        received_at: time_at(r, 3)?,
        subject: r.get(4)?,
        expect: parsed(r, 5, "expectation", Expectation::from_name)?,
        recipients: Vec::new(),
    })
}
