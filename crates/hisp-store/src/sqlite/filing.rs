//! Filing an inbound message for one recipient in SQLite: the mailbox
//! entry, the tracking move and the queued MDNs in the caller's transaction,
//! written by the same functions as the separate calls, so the rows and
//! audit events are the same.

use rusqlite::Transaction;
use time::OffsetDateTime;

use super::audit;
use super::mailbox;
use super::queue;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::expect::Expectation;
use crate::filing::{Answer, Filing};
use crate::mailbox::Folder;
use crate::message::MessageDirection;
use crate::tracking::{RecipientId, RecipientRecord, TrackingState};
use hisp_address::DirectAddress;

pub(crate) fn file_inbound(
    tx: &Transaction<'_>,
    recipient: RecipientId,
    address: &DirectAddress,
    bytes: &[u8],
    at: OffsetDateTime,
    if_filed: &[Answer],
    if_missing: &[Answer],
) -> Result<Filing, StoreError> {
    let record = queue::recipient(tx, recipient)?;
    // A final state means an earlier attempt committed (a worker whose lease
    // ran out, or a retry after a crash past the commit): filing again would
    // put the message in the Inbox twice and send its MDNs twice.
    if record.state.is_final() {
        return Ok(Filing::AlreadyDone(record.state));
    }
    let (filing, answers) = match mailbox::deliver(tx, address, bytes, Folder::Inbox, at) {
        Ok(entry) => {
            queue::track(tx, recipient, TrackingState::Delivered, at, None)?;
            (Filing::Filed(entry), if_filed)
        }
        Err(StoreError::NotFound {
            entity: Entity::Address,
            ..
        }) => {
            let why = format!("{address}: no such local address");
            queue::track(tx, recipient, TrackingState::Failed, at, Some(&why))?;
            (Filing::NoSuchAddress, if_missing)
        }
        Err(e) => return Err(e),
    };
    for answer in answers {
        queue_answer(tx, &record, answer, at)?;
    }
    Ok(filing)
}

/// Queues one answer as an outbound notification and records, about the
/// inbound message, that it was sent.
fn queue_answer(
    tx: &Transaction<'_>,
    about: &RecipientRecord,
    answer: &Answer,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let queued = queue::enqueue(
        tx,
        MessageDirection::Outbound,
        Some(&answer.from),
        std::slice::from_ref(&answer.to),
        &answer.bytes,
        at,
        Expectation::Notification,
    )?;
    // MessageId displays in angle brackets, as in the header.
    let original = about.message_id.as_ref().map_or_else(
        || "a message without Message-ID".to_string(),
        ToString::to_string,
    );
    audit::write(
        tx,
        AuditKind::MdnSent,
        about.message_id.as_ref(),
        Some(about.message),
        &format!(
            "{} MDN from {} to {} about {original} queued as {queued}",
            answer.kind, answer.from, answer.to
        ),
    )
}
