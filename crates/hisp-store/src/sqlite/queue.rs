//! The queue and per-recipient tracking in SQLite.
//!
//! SQLite has one writer at a time, so a claim is an IMMEDIATE transaction
//! that picks due rows and writes a lease on them; no other claimer can pick
//! the same rows in between. PostgreSQL, with many writers, does the same
//! with `SELECT ... FOR UPDATE SKIP LOCKED` on the same columns.

use super::cached::Cached;
use std::time::Duration;

use rusqlite::{OptionalExtension, Row, Transaction};
use time::OffsetDateTime;

use super::audit;
use super::rows::{
    address_at, address_opt, count_at, is_unique_violation, len_i64, message_id_opt, millis,
    millis_opt, now, parsed, time_at, time_opt,
};
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::expect::Expectation;
use crate::message::{HeaderSummary, MessageDirection, MessageId, MessageRecordId};
use crate::queue::{
    ClaimLimits, Lease, QueueEntry, QueueItem, QueueItemId, QueueState, RetrySelection,
};
use crate::tracking::{DeliveryStatus, RecipientId, RecipientRecord, TrackingState};
use hisp_address::DirectAddress;

pub(crate) fn enqueue(
    tx: &Transaction<'_>,
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
    let at = received_at.unix_timestamp();
    tx.exec(
        "INSERT INTO messages (direction, message_id, envelope_from, received_at, size, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (
            direction.as_str(),
            message_id.as_ref().map(MessageId::as_str),
            envelope_from.map(ToString::to_string),
            at,
            len_i64(bytes.len()),
            bytes,
        ),
    )
    .map_err(StoreError::sqlite("storing a message"))?;
    let message = MessageRecordId(tx.last_insert_rowid());
    tx.exec(
        "INSERT INTO message_tracking (message, expect, subject) VALUES (?1, ?2, ?3)",
        (message.0, expect.as_str(), summary.subject.as_deref()),
    )
    .map_err(StoreError::sqlite(
        "storing what tracking expects of a message",
    ))?;
    tx.exec(
        "INSERT INTO queue (message, state, next_attempt_at, updated_at, queued_ms)
         VALUES (?1, 'pending', ?2, ?3, ?4)",
        (message.0, at, now(), millis(received_at)),
    )
    .map_err(StoreError::sqlite("queueing a message"))?;
    for r in recipients {
        tx.exec(
            "INSERT INTO recipients (message, address, state, queued_at)
             VALUES (?1, ?2, 'queued', ?3)",
            (message.0, r.to_string(), at),
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate {
                    entity: Entity::Recipient,
                    name: r.to_string(),
                }
            } else {
                StoreError::sqlite("adding a recipient")(e)
            }
        })?;
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

pub(crate) fn claim_due(
    tx: &Transaction<'_>,
    now_at: OffsetDateTime,
    lease: Duration,
    limit: usize,
) -> Result<Vec<QueueItem>, StoreError> {
    let mut limits = ClaimLimits {
        limit,
        ..ClaimLimits::default()
    };
    claim_due_within(tx, now_at, lease, &mut limits)
}

/// Whole seconds, rounded up: a lease is never shorter than asked.
fn lease_end(now_at: OffsetDateTime, lease: Duration) -> i64 {
    let lease_secs = i64::try_from(lease.as_secs() + u64::from(lease.subsec_nanos() > 0))
        .unwrap_or(i64::MAX)
        .max(1);
    now_at.unix_timestamp().saturating_add(lease_secs)
}

/// Claims due entries in queue order within `limits`, counting each one
/// taken in `limits.in_hand`. Entries with a destination already full are
/// left out by the query; of the rest, an entry that would overfill one of
/// its destinations is skipped (it stays due for a later claim).
pub(crate) fn claim_due_within(
    tx: &Transaction<'_>,
    now_at: OffsetDateTime,
    lease: Duration,
    limits: &mut ClaimLimits,
) -> Result<Vec<QueueItem>, StoreError> {
    use rusqlite::types::Value;
    if limits.limit == 0 {
        return Ok(Vec::new());
    }
    let now_secs = now_at.unix_timestamp();
    let until = lease_end(now_at, lease);
    let full: Vec<String> = limits.full().iter().map(|d| d.to_string()).collect();
    // A few more candidates than the limit, for those skipped because an
    // earlier one of this claim filled their destination.
    let candidates = limits.limit.saturating_mul(4).saturating_add(16);
    let mut params = vec![
        Value::Integer(now_secs),
        Value::Integer(len_i64(candidates)),
    ];
    let mut busy = String::new();
    if !full.is_empty() {
        let marks: Vec<String> = (0..full.len()).map(|i| format!("?{}", i + 3)).collect();
        busy = format!(
            "AND (m.direction <> 'outbound' OR NOT EXISTS (
                 SELECT 1 FROM recipients r
                 WHERE r.message = q.message AND r.state = 'queued'
                   AND substr(r.address, instr(r.address, '@') + 1) IN ({})))",
            marks.join(", ")
        );
        params.extend(full.into_iter().map(Value::Text));
    }
    let sql = format!(
        "SELECT q.id, q.message, m.direction FROM queue q JOIN messages m ON m.id = q.message
         WHERE q.state = 'pending' AND q.next_attempt_at <= ?1
           AND (q.lease_until IS NULL OR q.lease_until <= ?1) {busy}
         ORDER BY q.next_attempt_at, q.id LIMIT ?2"
    );
    let found: Vec<(i64, i64, MessageDirection)> = {
        let mut stmt = tx
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite("finding due messages"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    parsed(r, 2, "direction", MessageDirection::from_name)?,
                ))
            })
            .map_err(StoreError::sqlite("finding due messages"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sqlite("finding due messages"))?
    };
    let mut items = Vec::new();
    for (id, message, direction) in found {
        if items.len() >= limits.limit {
            break;
        }
        let destinations = if direction == MessageDirection::Outbound {
            destinations_of(tx, MessageRecordId(message))?
        } else {
            Vec::new()
        };
        if !limits.take(&destinations) {
            continue;
        }
        let token = lease_token()?;
        tx.exec(
            "UPDATE queue SET lease_token = ?2, lease_until = ?3, attempts = attempts + 1,
                              updated_at = ?4, last_attempt_ms = ?5,
                              first_attempt_ms = coalesce(first_attempt_ms, ?5)
             WHERE id = ?1",
            (id, &token, until, now(), millis(now_at)),
        )
        .map_err(StoreError::sqlite("claiming a message"))?;
        items.push(item(tx, QueueItemId(id))?);
    }
    Ok(items)
}

/// The distinct domains of an outbound message's recipients still queued,
/// in order: [`QueueItem::destinations`] read from the rows.
fn destinations_of(
    tx: &Transaction<'_>,
    message: MessageRecordId,
) -> Result<Vec<hisp_address::Domain>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT DISTINCT substr(address, instr(address, '@') + 1) FROM recipients
             WHERE message = ?1 AND state = 'queued'",
        )
        .map_err(StoreError::sqlite("reading destinations"))?;
    let rows = stmt
        .query_map([message.0], |r| {
            parsed(r, 0, "domain", |s| hisp_address::Domain::parse(s).ok())
        })
        .map_err(StoreError::sqlite("reading destinations"))?;
    let mut out: Vec<hisp_address::Domain> = rows
        .collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("reading destinations"))?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Moves the end of the caller's lease to `now_at + lease`; LeaseLost if it
/// no longer holds it.
pub(crate) fn renew_lease(
    tx: &Transaction<'_>,
    item: &QueueItem,
    now_at: OffsetDateTime,
    lease: Duration,
) -> Result<OffsetDateTime, StoreError> {
    let until = lease_end(now_at, lease);
    let changed = tx
        .exec(
            "UPDATE queue SET lease_until = ?3, updated_at = ?4
             WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            (item.id.0, &item.lease.token, until, now()),
        )
        .map_err(StoreError::sqlite("renewing a lease"))?;
    if changed == 0 {
        return Err(StoreError::LeaseLost { item: item.id.0 });
    }
    OffsetDateTime::from_unix_timestamp(until).map_err(|_| StoreError::Invalid {
        what: "lease",
        value: until.to_string(),
        reason: "the end of the lease is out of range".into(),
    })
}

/// Gives a claimed entry back unfinished: its lease ends and it is due as
/// it was when claimed.
pub(crate) fn release(tx: &Transaction<'_>, item: &QueueItem) -> Result<(), StoreError> {
    let changed = tx
        .exec(
            "UPDATE queue SET lease_token = NULL, lease_until = NULL, updated_at = ?3
             WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            (item.id.0, &item.lease.token, now()),
        )
        .map_err(StoreError::sqlite("releasing a claimed message"))?;
    if changed == 0 {
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
pub(crate) fn retry_now(
    tx: &Transaction<'_>,
    selection: RetrySelection,
    at: OffsetDateTime,
) -> Result<Vec<QueueItemId>, StoreError> {
    let at_secs = at.unix_timestamp();
    let chosen: Vec<(i64, i64, i64)> = match selection {
        RetrySelection::One(id) => {
            let row: Option<(i64, String, i64, i64)> = tx
                .row(
                    "SELECT id, state, next_attempt_at, message FROM queue WHERE id = ?1",
                    [id.0],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(StoreError::sqlite("reading a queue entry"))?;
            let Some((id, state, next, message)) = row else {
                return Err(StoreError::NotFound {
                    entity: Entity::QueueItem,
                    name: id.0.to_string(),
                });
            };
            if state != QueueState::Pending.as_str() {
                return Err(StoreError::Invalid {
                    what: "queue entry",
                    value: id.to_string(),
                    reason: format!("it is {state}: only pending entries are retried"),
                });
            }
            vec![(id, next, message)]
        }
        RetrySelection::All => {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, next_attempt_at, message FROM queue
                     WHERE state = 'pending' AND next_attempt_at > ?1 ORDER BY id",
                )
                .map_err(StoreError::sqlite("finding pending entries"))?;
            let rows = stmt
                .query_map([at_secs], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(StoreError::sqlite("finding pending entries"))?;
            rows.collect::<Result<_, _>>()
                .map_err(StoreError::sqlite("finding pending entries"))?
        }
    };
    let mut out = Vec::with_capacity(chosen.len());
    for (id, next, message) in chosen {
        tx.exec(
            "UPDATE queue SET next_attempt_at = min(next_attempt_at, ?2), updated_at = ?3
             WHERE id = ?1",
            (id, at_secs, now()),
        )
        .map_err(StoreError::sqlite("making a queue entry due"))?;
        let message = MessageRecordId(message);
        let message_id = message_id_of(tx, message)?;
        audit::write(
            tx,
            AuditKind::RetryRequested,
            message_id.as_ref(),
            Some(message),
            &format!("queue entry {id} due now (was due at {next})"),
        )?;
        out.push(QueueItemId(id));
    }
    Ok(out)
}

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

fn lease_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| StoreError::Invalid {
        what: "lease token",
        value: "(random)".into(),
        reason: format!("no randomness: {e}"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn item(tx: &Transaction<'_>, id: QueueItemId) -> Result<QueueItem, StoreError> {
    let mut item = tx
        .row(
            "SELECT q.id, q.message, m.direction, m.message_id, m.envelope_from, m.body,
                    m.received_at, q.attempts, q.last_error, q.lease_token, q.lease_until,
                    coalesce(t.expect, 'mail')
             FROM queue q JOIN messages m ON m.id = q.message
                  LEFT JOIN message_tracking t ON t.message = m.id
             WHERE q.id = ?1",
            [id.0],
            |r| {
                Ok(QueueItem {
                    id: QueueItemId(r.get(0)?),
                    message: MessageRecordId(r.get(1)?),
                    direction: parsed(r, 2, "direction", MessageDirection::from_name)?,
                    message_id: message_id_opt(r, 3)?,
                    envelope_from: address_opt(r, 4)?,
                    expect: parsed(r, 11, "expectation", Expectation::from_name)?,
                    recipients: Vec::new(),
                    bytes: r.get(5)?,
                    received_at: time_at(r, 6)?,
                    attempts: count_at(r, 7)?,
                    last_error: r.get(8)?,
                    lease: Lease {
                        token: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                        until: time_opt(r, 10)?.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    },
                })
            },
        )
        .map_err(StoreError::sqlite("reading a claimed message"))?;
    item.recipients = recipients_of(tx, item.message)?;
    Ok(item)
}

/// Ends the caller's lease with `state`, or fails with LeaseLost if the
/// caller no longer holds it.
fn finish(
    tx: &Transaction<'_>,
    item: &QueueItem,
    state: QueueState,
    next_attempt_at: Option<OffsetDateTime>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let changed = tx
        .exec(
            "UPDATE queue SET state = ?3, lease_token = NULL, lease_until = NULL,
                              next_attempt_at = coalesce(?4, next_attempt_at),
                              last_error = coalesce(?5, last_error), updated_at = ?6
             WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            (
                item.id.0,
                &item.lease.token,
                state.as_str(),
                next_attempt_at.map(OffsetDateTime::unix_timestamp),
                error,
                now(),
            ),
        )
        .map_err(StoreError::sqlite("finishing a claimed message"))?;
    if changed == 0 {
        return Err(StoreError::LeaseLost { item: item.id.0 });
    }
    Ok(())
}

pub(crate) fn complete(tx: &Transaction<'_>, item: &QueueItem) -> Result<(), StoreError> {
    finish(tx, item, QueueState::Done, None, None)?;
    audit::write(
        tx,
        AuditKind::Completed,
        item.message_id.as_ref(),
        Some(item.message),
        &format!("attempt {}", item.attempts),
    )
}

pub(crate) fn retry_later(
    tx: &Transaction<'_>,
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

/// Gives the entry up. Every recipient that may still fail (not delivered,
/// not failed, not dispatched) is marked failed with the reason.
pub(crate) fn fail(
    tx: &Transaction<'_>,
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
    for r in recipients_of(tx, item.message)? {
        if r.state == TrackingState::Queued {
            track(tx, r.id, TrackingState::Failed, at, Some(reason))?;
        }
    }
    Ok(())
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

fn recipients_where(
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

/// One recipient, or NotFound.
pub(crate) fn recipient(
    tx: &Transaction<'_>,
    recipient: RecipientId,
) -> Result<RecipientRecord, StoreError> {
    recipients_where(tx, "r.id = ?1", &recipient.0)?
        .pop()
        .ok_or_else(|| StoreError::NotFound {
            entity: Entity::Recipient,
            name: recipient.0.to_string(),
        })
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

pub(crate) fn track(
    tx: &Transaction<'_>,
    recipient: RecipientId,
    next: TrackingState,
    at: OffsetDateTime,
    reason: Option<&str>,
) -> Result<RecipientRecord, StoreError> {
    let current = self::recipient(tx, recipient)?;
    // A move to the state already reached is refused too (TrackingState
    // allows none), so a duplicate MDN changes nothing and is not audited.
    let next = current.state.to(next)?;
    // The column name comes from the enum, never from input.
    let sql = format!(
        "UPDATE recipients SET state = ?2, {}_at = ?3, reason = coalesce(?4, reason)
         WHERE id = ?1",
        next.as_str()
    );
    tx.exec(
        &sql,
        (recipient.0, next.as_str(), at.unix_timestamp(), reason),
    )
    .map_err(StoreError::sqlite("moving a recipient"))?;
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
    self::recipient(tx, recipient)
}

/// Moves a recipient to failed with `reason` (see [`track`]) and keeps
/// the RFC 3463 `status` its refusal carried.
pub(crate) fn track_failed(
    tx: &Transaction<'_>,
    recipient: RecipientId,
    at: OffsetDateTime,
    reason: &str,
    status: Option<DeliveryStatus>,
) -> Result<RecipientRecord, StoreError> {
    track(tx, recipient, TrackingState::Failed, at, Some(reason))?;
    tx.exec(
        "UPDATE recipients SET status = ?2 WHERE id = ?1",
        (recipient.0, status.map(|s| s.to_string())),
    )
    .map_err(StoreError::sqlite("keeping a recipient's status"))?;
    self::recipient(tx, recipient)
}

/// Writes the missing time of `step` for a recipient already past it (see
/// [`crate::Store::note_overtaken_step`]); the state does not move.
pub(crate) fn note_overtaken_step(
    tx: &Transaction<'_>,
    recipient: RecipientId,
    step: TrackingState,
    at: OffsetDateTime,
) -> Result<RecipientRecord, StoreError> {
    let current = self::recipient(tx, recipient)?;
    if !current.state.went_past(step) || current.at(step).is_some() {
        return Err(StoreError::Transition {
            from: current.state.as_str(),
            to: step.as_str(),
        });
    }
    // The column name comes from the enum, never from input.
    let sql = format!(
        "UPDATE recipients SET {}_at = ?2 WHERE id = ?1",
        step.as_str()
    );
    tx.exec(&sql, (recipient.0, at.unix_timestamp()))
        .map_err(StoreError::sqlite("noting an overtaken step"))?;
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
    self::recipient(tx, recipient)
}

/// The Message-ID of a queued message, for audit events written about it.
pub(crate) fn message_id_of(
    tx: &Transaction<'_>,
    message: MessageRecordId,
) -> Result<Option<MessageId>, StoreError> {
    tx.row(
        "SELECT message_id FROM messages WHERE id = ?1",
        [message.0],
        |r| message_id_opt(r, 0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading a message"))?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Message,
        name: message.0.to_string(),
    })
}
