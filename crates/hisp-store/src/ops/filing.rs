//! Filing an inbound message for one recipient, for every backend: the
//! mailbox entry, the tracking move, the queued MDNs and the portal notice
//! in the caller's transaction, written by the same operations as the
//! separate calls, so the rows and audit events are the same. Also the
//! quarantine of an inbound message with its recipients, and the portal
//! notice taken by the smart host.

use time::OffsetDateTime;

use super::audit;
use super::mailbox;
use super::quarantine;
use super::queue;
use super::tracking::{self, track};
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::expect::Expectation;
use crate::filing::{Answer, Filing, NewMailNotice};
use crate::mailbox::{Folder, MailboxEntryId};
use crate::message::{Envelope, HeaderSummary, MessageDirection, MessageRecordId};
use crate::quarantine::{QuarantineId, QuarantineReason};
use crate::tracking::{RecipientId, RecipientRecord, TrackingState};
use crate::tx::Tx;
use hisp_address::DirectAddress;

/// [`Store::file_inbound_notifying`](crate::Store::file_inbound_notifying).
#[allow(clippy::too_many_arguments)]
pub(crate) fn file_inbound<T: Tx + ?Sized>(
    tx: &mut T,
    recipient: RecipientId,
    address: &DirectAddress,
    bytes: &[u8],
    at: OffsetDateTime,
    if_filed: &[Answer],
    if_missing: &[Answer],
    notice: Option<&NewMailNotice<'_>>,
) -> Result<Filing, StoreError> {
    let record = tracking::recipient(tx, recipient)?;
    // A final state means an earlier attempt committed (a worker whose lease
    // ran out, or a retry after a crash past the commit): filing again would
    // put the message in the Inbox twice and send its MDNs twice.
    if record.state.is_final() {
        return Ok(Filing::AlreadyDone(record.state));
    }
    let summary = HeaderSummary::read(bytes);
    if let Some(entry) = already_filed(tx, address, &summary)? {
        // The sender sent it again without having learnt of the first
        // delivery (it stopped between our 250 and recording it): the
        // recipient has it, so it is delivered, and the answers go again
        // so that the sender's tracking completes.
        track(tx, recipient, TrackingState::Delivered, at, None)?;
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
    let filed = mailbox::deliver_summarised(tx, address, bytes, &summary, Folder::Inbox, at);
    let (filing, answers) = match filed {
        Ok(entry) => {
            track(tx, recipient, TrackingState::Delivered, at, None)?;
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
            track(tx, recipient, TrackingState::Failed, at, Some(&why))?;
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
/// the message already: the same Message-ID (RFC 5322 §3.6.4: one
/// message, one Message-ID) from the same From. None for a message without
/// a Message-ID.
fn already_filed<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    summary: &HeaderSummary,
) -> Result<Option<MailboxEntryId>, StoreError> {
    let Some(message_id) = &summary.message_id else {
        return Ok(None);
    };
    tx.inbox_copy(address, message_id, summary.from.as_deref())
}

/// Quarantines an inbound message and fails its recipients in one
/// transaction ([`Store::quarantine_inbound`](crate::Store::quarantine_inbound)).
pub(crate) fn quarantine_inbound<T: Tx + ?Sized>(
    tx: &mut T,
    message: MessageRecordId,
    reason: QuarantineReason,
    detail: &str,
    envelope: &Envelope,
    recipients: &[RecipientId],
    at: OffsetDateTime,
) -> Result<Option<QuarantineId>, StoreError> {
    let mut open = Vec::new();
    for id in recipients {
        let record = tracking::recipient(tx, *id)?;
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
        track(tx, id, TrackingState::Failed, at, Some(&why))?;
    }
    Ok(Some(quarantined))
}

/// Queues one answer as an outbound notification and records, about the
/// inbound message, that it was sent.
fn queue_answer<T: Tx + ?Sized>(
    tx: &mut T,
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
fn queue_notice<T: Tx + ?Sized>(
    tx: &mut T,
    about: &RecipientRecord,
    address: &DirectAddress,
    entry: MailboxEntryId,
    notice: &NewMailNotice<'_>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let Some(user) = tx.portal_user(address)? else {
        return Ok(());
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
    tx.insert_portal_notice(queued, address, about.message)?;
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
/// `relayed` and a `notification-sent` event names the mailbox it is about
/// ([`Store::portal_notice_sent`](crate::Store::portal_notice_sent)).
pub(crate) fn portal_notice_sent<T: Tx + ?Sized>(
    tx: &mut T,
    recipient: RecipientId,
    at: OffsetDateTime,
    reply: &str,
) -> Result<RecipientRecord, StoreError> {
    let record = track(tx, recipient, TrackingState::Relayed, at, Some(reply))?;
    let owner = tx.portal_notice_owner(record.message)?;
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
