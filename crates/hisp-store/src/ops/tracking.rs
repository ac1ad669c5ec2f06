//! Per-recipient tracking, for every backend: moves of a recipient's state
//! with their audit events, and the one final notice to a failed
//! recipient's sender (Implementation Guide for Delivery Notification in
//! Direct 1.0).

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::audit;
use super::mailbox;
use super::queue::whole_seconds;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::mailbox::{Folder, MailboxEntryId};
use crate::message::{MessageId, MessageRecordId};
use crate::queue::Held;
use crate::tracking::{DeliveryStatus, RecipientId, RecipientRecord, TrackingState};
use crate::tx::Tx;
use hisp_address::DirectAddress;

/// One recipient, or NotFound.
pub(crate) fn recipient<T: Tx + ?Sized>(
    tx: &mut T,
    recipient: RecipientId,
) -> Result<RecipientRecord, StoreError> {
    tx.recipient(recipient)?
        .ok_or_else(|| StoreError::NotFound {
            entity: Entity::Recipient,
            name: recipient.0.to_string(),
        })
}

/// Moves a recipient to `next` if [`TrackingState`] allows it, audited
/// ([`Store::track`](crate::Store::track)).
pub(crate) fn track<T: Tx + ?Sized>(
    tx: &mut T,
    id: RecipientId,
    next: TrackingState,
    at: OffsetDateTime,
    reason: Option<&str>,
) -> Result<RecipientRecord, StoreError> {
    let current = recipient(tx, id)?;
    // A move to the state already reached is refused too (TrackingState
    // allows none), so a duplicate MDN changes nothing and is not audited.
    let next = current.state.to(next)?;
    // Moved only from the state read above: a backend whose transactions
    // do not hold the row meanwhile refuses a move another one made first.
    if !tx.move_recipient(id, current.state, next, whole_seconds(at), reason)? {
        return Err(StoreError::Transition {
            from: current.state.as_str(),
            to: next.as_str(),
        });
    }
    let detail = match reason {
        Some(why) => format!("{}: {} -> {next}: {why}", current.address, current.state),
        None => format!("{}: {} -> {next}", current.address, current.state),
    };
    audit::write(
        tx,
        AuditKind::Tracked,
        current.message_id.as_ref(),
        Some(current.message),
        &detail,
    )?;
    recipient(tx, id)
}

/// LeaseLost unless the caller still holds `held`'s entry, which then stays
/// its until the transaction ends.
pub(crate) fn in_hand<T: Tx + ?Sized>(tx: &mut T, held: &Held) -> Result<(), StoreError> {
    if tx.holds_lease(held.id, &held.token)? {
        Ok(())
    } else {
        Err(StoreError::LeaseLost { item: held.id.0 })
    }
}

/// Makes the moves `steps` in order; the record after the last
/// ([`Store::track_steps`](crate::Store::track_steps)).
pub(crate) fn track_steps<T: Tx + ?Sized>(
    tx: &mut T,
    id: RecipientId,
    steps: &[TrackingState],
    at: OffsetDateTime,
    reason: Option<&str>,
) -> Result<RecipientRecord, StoreError> {
    let mut last = recipient(tx, id)?;
    for step in steps {
        last = track(tx, id, *step, at, reason)?;
    }
    Ok(last)
}

/// Moves a recipient to failed with `reason` (see [`track`]) and keeps
/// the RFC 3463 `status` its refusal carried.
pub(crate) fn track_failed<T: Tx + ?Sized>(
    tx: &mut T,
    id: RecipientId,
    at: OffsetDateTime,
    reason: &str,
    status: Option<DeliveryStatus>,
) -> Result<RecipientRecord, StoreError> {
    track(tx, id, TrackingState::Failed, at, Some(reason))?;
    tx.set_recipient_status(id, status.as_ref())?;
    recipient(tx, id)
}

/// Writes the missing time of `step` for a recipient already past it (see
/// [`crate::Store::note_overtaken_step`]); the state does not move.
pub(crate) fn note_overtaken_step<T: Tx + ?Sized>(
    tx: &mut T,
    id: RecipientId,
    step: TrackingState,
    at: OffsetDateTime,
) -> Result<RecipientRecord, StoreError> {
    let current = recipient(tx, id)?;
    if !current.state.went_past(step) || current.at(step).is_some() {
        return Err(StoreError::Transition {
            from: current.state.as_str(),
            to: step.as_str(),
        });
    }
    tx.set_step_time(id, step, whole_seconds(at))?;
    audit::write(
        tx,
        AuditKind::Tracked,
        current.message_id.as_ref(),
        Some(current.message),
        &format!(
            "{}: {step} reached after {} (state stays {})",
            current.address, current.state, current.state
        ),
    )?;
    recipient(tx, id)
}

/// Marks `recipients` notified and files `notice` in `sender`'s Inbox, or
/// does nothing if any of them was already notified
/// ([`Store::notify_sender`](crate::Store::notify_sender)).
pub(crate) fn notify_sender<T: Tx + ?Sized>(
    tx: &mut T,
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
    let told_at = whole_seconds(at);
    for r in &records {
        tx.mark_notified(r.id, told_at)?;
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
