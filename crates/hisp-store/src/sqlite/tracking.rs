//! Delivery notification tracking in SQLite (Implementation Guide for
//! Delivery Notification in Direct 1.0): the recipients the MDN timeout must
//! fail, the failures whose sender has not been told, the one final notice
//! per recipient, and listings of outbound messages.
//!
//! None of these reads a message body: recipients and listings come from
//! `recipients`, `message_tracking` and the columns of `messages` before
//! `body`.

use super::cached::Cached;
use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Params, Row, Transaction};
use time::OffsetDateTime;

use super::audit;
use super::mailbox;
use super::queue::{recipient, recipients_of, recipients_query};
use super::rows::{address_opt, message_id_opt, parsed, time_at};
use crate::audit::AuditKind;
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::mailbox::{Folder, MailboxEntryId};
use crate::message::{MessageId, MessageRecordId};
use crate::tracking::{RecipientId, RecipientRecord, TrackFilter, TrackedMessage, TrackingState};
use hisp_address::DirectAddress;

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

/// Marks `recipients` notified and files `notice` in `sender`'s Inbox, or
/// does nothing if any of them was already notified.
pub(crate) fn notify_sender(
    tx: &Transaction<'_>,
    sender: &DirectAddress,
    notice: &[u8],
    recipients: &[RecipientId],
    at: OffsetDateTime,
) -> Result<Option<MailboxEntryId>, StoreError> {
    if recipients.is_empty() {
        return Err(StoreError::Invalid {
            what: "final notice",
            value: format!("to {sender}"),
            reason: "it names no recipient it reports on".into(),
        });
    }
    let ids: BTreeSet<RecipientId> = recipients.iter().copied().collect();
    let records = ids
        .iter()
        .map(|id| recipient(tx, *id))
        .collect::<Result<Vec<_>, _>>()?;
    // One final notice per recipient: a notice already sent for any of them
    // (by an earlier call that committed before a crash, or by a racing
    // worker) means this one is a repeat.
    if records.iter().any(|r| r.notified_at.is_some()) {
        return Ok(None);
    }
    if let Some(r) = records
        .iter()
        .find(|r| r.state != TrackingState::Failed || !r.expect.expects_mdn())
    {
        return Err(StoreError::Invalid {
            what: "final notice",
            value: format!(
                "recipient {} ({}) of message {}",
                r.id.0, r.address, r.message
            ),
            reason: if r.expect.expects_mdn() {
                format!(
                    "it is {}; only a failed recipient gets a failure notice",
                    r.state
                )
            } else {
                "it is a recipient of a notification, whose failure is not reported".into()
            },
        });
    }
    for r in &records {
        tx.exec(
            "UPDATE recipients SET notified_at = ?2 WHERE id = ?1",
            (r.id.0, at.unix_timestamp()),
        )
        .map_err(StoreError::sqlite("marking a recipient notified"))?;
    }
    let filed = match mailbox::deliver(tx, sender, notice, Folder::Inbox, at) {
        Ok(entry) => Some(entry),
        // A sender without a local mailbox (sending under a domain grant, or
        // removed since): the notice cannot be filed, and trying again
        // would not change that. The recipients count as told; the audit
        // says the notice was dropped.
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    // The notice's own Delivered event names the notice; this one is about
    // each original message, so its audit trail shows the DSN.
    let mut by_message: BTreeMap<MessageRecordId, (Option<&MessageId>, Vec<String>)> =
        BTreeMap::new();
    for r in &records {
        by_message
            .entry(r.message)
            .or_insert_with(|| (r.message_id.as_ref(), Vec::new()))
            .1
            .push(r.address.to_string());
    }
    for (message, (message_id, failed)) in by_message {
        audit::write(
            tx,
            AuditKind::DsnSent,
            message_id,
            Some(message),
            &match filed {
                Some(entry) => format!(
                    "to {sender} (mailbox entry {entry}): failed {}",
                    failed.join(", ")
                ),
                None => format!(
                    "not filed: {sender} has no local mailbox; failed {}",
                    failed.join(", ")
                ),
            },
        )?;
    }
    Ok(filed)
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
