//! The queue, for every backend: enqueueing a message with its recipients
//! and audit event (once under a mark, when asked), claims within their
//! per-destination limits, leases, and finishing a claimed entry.

use std::time::Duration;

use time::OffsetDateTime;

use super::audit;
use super::tracking;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::expect::Expectation;
use crate::message::{HeaderSummary, MessageDirection, MessageRecordId};
use crate::queue::{ClaimLimits, Lease, QueueItem, QueueItemId, QueueState, RetrySelection};
use crate::tracking::TrackingState;
use crate::tx::{NewMessage, Tx};
use hisp_address::{DirectAddress, Domain};

/// Commits a message, what tracking expects of it, its queue entry and one
/// recipient each, and the `queued` event
/// ([`Store::enqueue_expecting`](crate::Store::enqueue_expecting)).
pub(crate) fn enqueue<T: Tx + ?Sized>(
    tx: &mut T,
    direction: MessageDirection,
    envelope_from: Option<&DirectAddress>,
    recipients: &[DirectAddress],
    bytes: &[u8],
    received_at: OffsetDateTime,
    expect: Expectation,
) -> Result<MessageRecordId, StoreError> {
    if recipients.is_empty() {
        return Err(StoreError::Invalid {
            what: "envelope",
            value: "no recipients".into(),
            reason: "a message needs at least one recipient".into(),
        });
    }
    let summary = HeaderSummary::read(bytes);
    let message_id = summary.message_id;
    let at = whole_seconds(received_at);
    let message = tx.insert_message(&NewMessage {
        direction,
        message_id: message_id.as_ref(),
        envelope_from,
        received_at: at,
        bytes,
    })?;
    tx.insert_message_tracking(message, expect, summary.subject.as_deref())?;
    tx.insert_queue_entry(message, at, received_at)?;
    for r in recipients {
        if !tx.insert_recipient(message, r, at)? {
            return Err(StoreError::Duplicate {
                entity: Entity::Recipient,
                name: r.to_string(),
            });
        }
    }
    let to: Vec<String> = recipients.iter().map(ToString::to_string).collect();
    let mut detail = format!(
        "{direction} from {} to {} ({} bytes)",
        envelope_from.map_or_else(|| "<>".to_string(), ToString::to_string),
        to.join(", "),
        bytes.len()
    );
    // The default stays unmentioned, so events read as they always did.
    if direction == MessageDirection::Outbound && expect != Expectation::default() {
        detail.push_str(&format!(", expecting {expect}"));
    }
    audit::write(
        tx,
        AuditKind::Queued,
        message_id.as_ref(),
        Some(message),
        &detail,
    )?;
    Ok(message)
}

/// A time cut to whole seconds, as the store keeps most times.
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Refuses an empty mark, which would name nothing.
fn check_mark(mark: &str) -> Result<(), StoreError> {
    if mark.trim().is_empty() {
        return Err(StoreError::Invalid {
            what: "queue mark",
            value: mark.to_string(),
            reason: "a mark needs a name".into(),
        });
    }
    Ok(())
}

/// The message queued under `mark`, if any.
pub(crate) fn queued_once<T: Tx + ?Sized>(
    tx: &mut T,
    mark: &str,
) -> Result<Option<MessageRecordId>, StoreError> {
    check_mark(mark)?;
    tx.queue_mark(mark)
}

/// Queues the message and records `mark` in the caller's transaction;
/// `None`, with nothing written, when `mark` is recorded already.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enqueue_once<T: Tx + ?Sized>(
    tx: &mut T,
    mark: &str,
    direction: MessageDirection,
    envelope_from: Option<&DirectAddress>,
    recipients: &[DirectAddress],
    bytes: &[u8],
    received_at: OffsetDateTime,
    expect: Expectation,
) -> Result<Option<MessageRecordId>, StoreError> {
    if queued_once(tx, mark)?.is_some() {
        return Ok(None);
    }
    let message = enqueue(
        tx,
        direction,
        envelope_from,
        recipients,
        bytes,
        received_at,
        expect,
    )?;
    // Were the mark written by another transaction since the read above
    // (SQLite's write lock rules that out), the insert's error drops the
    // whole transaction, the message with it.
    tx.insert_queue_mark(mark, message, whole_seconds(received_at))?;
    Ok(Some(message))
}

/// [`Store::claim_due`](crate::Store::claim_due): a claim with no cap per
/// destination.
pub(crate) fn claim_due<T: Tx + ?Sized>(
    tx: &mut T,
    now: OffsetDateTime,
    lease: Duration,
    limit: usize,
) -> Result<Vec<QueueItem>, StoreError> {
    let mut limits = ClaimLimits {
        limit,
        ..ClaimLimits::default()
    };
    claim_due_within(tx, now, lease, &mut limits)
}

/// The end of a lease taken at `now`: whole seconds, rounded up, so a
/// lease is never shorter than asked.
fn lease_end(now: OffsetDateTime, lease: Duration) -> Result<OffsetDateTime, StoreError> {
    let lease_secs = i64::try_from(lease.as_secs() + u64::from(lease.subsec_nanos() > 0))
        .unwrap_or(i64::MAX)
        .max(1);
    let until = now.unix_timestamp().saturating_add(lease_secs);
    OffsetDateTime::from_unix_timestamp(until).map_err(|_| StoreError::Invalid {
        what: "lease",
        value: until.to_string(),
        reason: "the end of the lease is out of range".into(),
    })
}

/// Claims due entries in queue order within `limits`, counting each one
/// taken in `limits.in_hand`. Entries with a destination already full are
/// left out by the backend's query; of the rest, an entry that would
/// overfill one of its destinations is skipped (it stays due for a later
/// claim).
pub(crate) fn claim_due_within<T: Tx + ?Sized>(
    tx: &mut T,
    now: OffsetDateTime,
    lease: Duration,
    limits: &mut ClaimLimits,
) -> Result<Vec<QueueItem>, StoreError> {
    if limits.limit == 0 {
        return Ok(Vec::new());
    }
    let until = lease_end(now, lease)?;
    // A few more candidates than the limit, for those skipped because an
    // earlier one of this claim filled their destination.
    let candidates = limits.limit.saturating_mul(4).saturating_add(16);
    let found = tx.due_candidates(now, candidates, &limits.full())?;
    let mut items = Vec::new();
    for candidate in found {
        if items.len() >= limits.limit {
            break;
        }
        let destinations = if candidate.direction == MessageDirection::Outbound {
            let mut domains: Vec<Domain> = tx.queued_destinations(candidate.message)?;
            domains.sort();
            domains.dedup();
            domains
        } else {
            Vec::new()
        };
        if !limits.take(&destinations) {
            continue;
        }
        let lease = Lease {
            token: lease_token()?,
            until,
        };
        tx.take_lease(candidate.id, &lease, now)?;
        let mut item = tx.queue_item(candidate.id)?;
        item.recipients = tx.recipients_of(item.message)?;
        items.push(item);
    }
    Ok(items)
}

/// A fresh lease token: 16 random bytes in hex.
fn lease_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| StoreError::Invalid {
        what: "lease token",
        value: "(random)".into(),
        reason: format!("no randomness: {e}"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Moves the end of the caller's lease to `now + lease`; LeaseLost if it
/// no longer holds it.
pub(crate) fn renew_lease<T: Tx + ?Sized>(
    tx: &mut T,
    item: &QueueItem,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<OffsetDateTime, StoreError> {
    let until = lease_end(now, lease)?;
    if !tx.extend_lease(item.id, &item.lease.token, until)? {
        return Err(StoreError::LeaseLost { item: item.id.0 });
    }
    Ok(until)
}

/// Gives a claimed entry back unfinished: its lease ends and it is due as
/// it was when claimed.
pub(crate) fn release<T: Tx + ?Sized>(tx: &mut T, item: &QueueItem) -> Result<(), StoreError> {
    if !tx.clear_lease(item.id, &item.lease.token)? {
        return Err(StoreError::LeaseLost { item: item.id.0 });
    }
    audit::write(
        tx,
        AuditKind::Released,
        item.message_id.as_ref(),
        Some(item.message),
        &format!(
            "attempt {} did not finish before the worker stopped; due again",
            item.attempts
        ),
    )
}

/// Makes pending entries due at `at`; returns those changed.
pub(crate) fn retry_now<T: Tx + ?Sized>(
    tx: &mut T,
    selection: RetrySelection,
    at: OffsetDateTime,
) -> Result<Vec<QueueItemId>, StoreError> {
    let at = whole_seconds(at);
    let chosen = match selection {
        RetrySelection::One(id) => {
            let Some(entry) = tx.queue_entry(id)? else {
                return Err(StoreError::NotFound {
                    entity: Entity::QueueItem,
                    name: id.0.to_string(),
                });
            };
            if entry.state != QueueState::Pending {
                return Err(StoreError::Invalid {
                    what: "queue entry",
                    value: id.to_string(),
                    reason: format!("it is {}: only pending entries are retried", entry.state),
                });
            }
            vec![entry]
        }
        RetrySelection::All => tx.pending_after(at)?,
    };
    let mut out = Vec::with_capacity(chosen.len());
    for entry in chosen {
        tx.make_due(entry.id, at)?;
        let message_id = audit::message_id_of(tx, entry.message)?;
        audit::write(
            tx,
            AuditKind::RetryRequested,
            message_id.as_ref(),
            Some(entry.message),
            &format!(
                "queue entry {} due now (was due at {})",
                entry.id,
                entry.next_attempt_at.unix_timestamp()
            ),
        )?;
        out.push(entry.id);
    }
    Ok(out)
}

/// Ends the caller's lease with `state`, or fails with LeaseLost if the
/// caller no longer holds it.
fn finish<T: Tx + ?Sized>(
    tx: &mut T,
    item: &QueueItem,
    state: QueueState,
    next_attempt_at: Option<OffsetDateTime>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    if !tx.finish_entry(
        item.id,
        &item.lease.token,
        state,
        next_attempt_at.map(whole_seconds),
        error,
    )? {
        return Err(StoreError::LeaseLost { item: item.id.0 });
    }
    Ok(())
}

/// Finishes a claimed entry: every recipient was handled.
pub(crate) fn complete<T: Tx + ?Sized>(tx: &mut T, item: &QueueItem) -> Result<(), StoreError> {
    finish(tx, item, QueueState::Done, None, None)?;
    audit::write(
        tx,
        AuditKind::Completed,
        item.message_id.as_ref(),
        Some(item.message),
        &format!("attempt {}", item.attempts),
    )
}

/// Puts a claimed entry off until `next_attempt_at`, keeping the error.
pub(crate) fn retry_later<T: Tx + ?Sized>(
    tx: &mut T,
    item: &QueueItem,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> Result<(), StoreError> {
    finish(
        tx,
        item,
        QueueState::Pending,
        Some(next_attempt_at),
        Some(error),
    )?;
    audit::write(
        tx,
        AuditKind::Deferred,
        item.message_id.as_ref(),
        Some(item.message),
        &format!(
            "attempt {} failed: {error}; next attempt at {}",
            item.attempts,
            next_attempt_at.unix_timestamp()
        ),
    )
}

/// Gives the entry up. Every recipient still waiting to be sent is marked
/// failed with the reason.
pub(crate) fn fail<T: Tx + ?Sized>(
    tx: &mut T,
    item: &QueueItem,
    reason: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    finish(tx, item, QueueState::Failed, None, Some(reason))?;
    audit::write(
        tx,
        AuditKind::Failed,
        item.message_id.as_ref(),
        Some(item.message),
        reason,
    )?;
    // Only recipients still waiting to be sent: a relayed one is the MDN
    // timeout's to fail, measured from its relaying.
    for r in tx.recipients_of(item.message)? {
        if r.state == TrackingState::Queued {
            tracking::track(tx, r.id, TrackingState::Failed, at, Some(reason))?;
        }
    }
    Ok(())
}
