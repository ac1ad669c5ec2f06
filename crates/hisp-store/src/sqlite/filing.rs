//! Filing an inbound message for one recipient in SQLite: the mailbox
//! entry, the tracking move and the queued MDNs in the caller's transaction,
//! written by the same functions as the separate calls, so the rows and
//! audit events are the same.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Transaction};
use time::OffsetDateTime;

use super::audit;
use super::mailbox;
use super::portal_user;
use super::quarantine;
use super::queue;
use super::rows::parsed;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::expect::Expectation;
use crate::filing::{Answer, Filing, NewMailNotice};
use crate::mailbox::{Folder, MailboxEntryId};
use crate::message::{Envelope, HeaderSummary, MessageDirection, MessageRecordId};
use crate::quarantine::{QuarantineId, QuarantineReason};
use crate::tracking::{RecipientId, RecipientRecord, TrackingState};
use hisp_address::DirectAddress;

#[allow(clippy::too_many_arguments)]
pub(crate) fn file_inbound(
    tx: &Transaction<'_>,
    recipient: RecipientId,
    address: &DirectAddress,
    bytes: &[u8],
    at: OffsetDateTime,
    if_filed: &[Answer],
    if_missing: &[Answer],
    notice: Option<&NewMailNotice<'_>>,
) -> Result<Filing, StoreError> {
    let record = queue::recipient(tx, recipient)?;
    // A final state means an earlier attempt committed (a worker whose lease
    // ran out, or a retry after a crash past the commit): filing again would
    // put the message in the Inbox twice and send its MDNs twice.
    if record.state.is_final() {
        return Ok(Filing::AlreadyDone(record.state));
    }
    if let Some(entry) = already_filed(tx, address, bytes)? {
        // The sender sent it again without having learnt of the first
        // delivery (it stopped between our 250 and recording it): the
        // recipient has it, so it is delivered, and the answers go again
        // so that the sender's tracking completes.
        queue::track(tx, recipient, TrackingState::Delivered, at, None)?;
        audit::write_about(
            tx,
            AuditKind::Duplicate,
            address,
            record.message_id.as_ref(),
            &format!("mailbox {address} holds it already as entry {entry}: not filed again"),
        )?;
        for answer in if_filed {
            queue_answer(tx, &record, answer, at)?;
        }
        return Ok(Filing::Duplicate(entry));
    }
    let (filing, answers) = match mailbox::deliver(tx, address, bytes, Folder::Inbox, at) {
        Ok(entry) => {
            queue::track(tx, recipient, TrackingState::Delivered, at, None)?;
            if let Some(notice) = notice {
                queue_notice(tx, &record, address, entry, notice, at)?;
            }
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

/// The Inbox entry (wherever it was moved since) of `address` that holds
/// the message `bytes` already: the same Message-ID (RFC 5322 §3.6.4: one
/// message, one Message-ID) from the same From. None for a message without
/// a Message-ID.
fn already_filed(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    bytes: &[u8],
) -> Result<Option<MailboxEntryId>, StoreError> {
    let summary = HeaderSummary::read(bytes);
    let Some(message_id) = summary.message_id else {
        return Ok(None);
    };
    tx.row(
        "SELECT id FROM mailbox
         WHERE message_id = ?1 AND address = ?2 AND home = 'inbox' AND from_field IS ?3
         ORDER BY id LIMIT 1",
        (
            message_id.as_str(),
            address.to_string(),
            summary.from.as_deref(),
        ),
        |r| r.get(0).map(MailboxEntryId),
    )
    .optional()
    .map_err(StoreError::sqlite(
        "looking for an earlier copy in the mailbox",
    ))
}

/// Quarantines an inbound message and fails its recipients in one
/// transaction ([`Store::quarantine_inbound`](crate::Store::quarantine_inbound)).
pub(crate) fn quarantine_inbound(
    tx: &Transaction<'_>,
    message: MessageRecordId,
    reason: QuarantineReason,
    detail: &str,
    envelope: &Envelope,
    recipients: &[RecipientId],
    at: OffsetDateTime,
) -> Result<Option<QuarantineId>, StoreError> {
    let mut open = Vec::new();
    for id in recipients {
        let record = queue::recipient(tx, *id)?;
        if !record.state.is_final() {
            open.push(record.id);
        }
    }
    if open.is_empty() {
        return Ok(None);
    }
    // The queue keeps the message as received; the entry refers to it.
    let quarantined = quarantine::add_queued(tx, message, reason, detail, envelope)?;
    let why = format!("quarantined ({reason}): {detail}");
    for id in open {
        queue::track(tx, id, TrackingState::Failed, at, Some(&why))?;
    }
    Ok(Some(quarantined))
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

/// Queues the e-mail notice of new secure mail for `address`'s portal user,
/// in the filing's transaction, when there is one to tell: an enabled
/// account with an e-mail address and notices on. Otherwise nothing.
fn queue_notice(
    tx: &Transaction<'_>,
    about: &RecipientRecord,
    address: &DirectAddress,
    entry: MailboxEntryId,
    notice: &NewMailNotice<'_>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let user = match portal_user::user(tx, address) {
        Ok(user) => user,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    // A disabled account cannot log in to read the message.
    if !user.is_enabled() {
        return Ok(());
    }
    let Some(email) = user.settings.notify_to() else {
        return Ok(());
    };
    let bytes = (notice.compose)(email);
    let queued = queue::enqueue(
        tx,
        MessageDirection::Outbound,
        Some(&notice.from),
        std::slice::from_ref(email.as_recipient()),
        &bytes,
        at,
        Expectation::PortalNotice,
    )?;
    tx.exec(
        "INSERT INTO portal_notices (message, owner, about) VALUES (?1, ?2, ?3)",
        (queued.0, address.to_string(), about.message.0),
    )
    .map_err(StoreError::sqlite("noting whom a notice is about"))?;
    audit::write_about_message(
        tx,
        AuditKind::NotificationQueued,
        address,
        about.message_id.as_ref(),
        about.message,
        &format!("notice of new secure mail (Inbox entry {entry}) to {email} queued as {queued}"),
    )
}

/// The smart host took a portal notice for `recipient`: it moves to
/// `relayed` and a `notification-sent` event names the mailbox it is about.
pub(crate) fn portal_notice_sent(
    tx: &Transaction<'_>,
    recipient: RecipientId,
    at: OffsetDateTime,
    reply: &str,
) -> Result<RecipientRecord, StoreError> {
    let record = queue::track(tx, recipient, TrackingState::Relayed, at, Some(reply))?;
    let owner: Option<DirectAddress> = tx
        .row(
            "SELECT owner FROM portal_notices WHERE message = ?1",
            [record.message.0],
            |r| parsed(r, 0, "address", |s| DirectAddress::parse(s).ok()),
        )
        .optional()
        .map_err(StoreError::sqlite("reading whom a notice is about"))?;
    let detail = format!("notice of new secure mail to {}: {reply}", record.address);
    match &owner {
        Some(owner) => audit::write_about_message(
            tx,
            AuditKind::NotificationSent,
            owner,
            record.message_id.as_ref(),
            record.message,
            &detail,
        )?,
        None => audit::write(
            tx,
            AuditKind::NotificationSent,
            record.message_id.as_ref(),
            Some(record.message),
            &detail,
        )?,
    }
    Ok(record)
}
