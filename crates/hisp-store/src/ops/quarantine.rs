//! Quarantine, for every backend: a message kept exactly as received with
//! the reason code and what exactly failed, audited.

use time::OffsetDateTime;

use super::audit;
use super::queue::whole_seconds;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::message::{Envelope, HeaderSummary, MessageId, MessageRecordId};
use crate::quarantine::{QuarantineId, QuarantineReason};
use crate::tx::{NewQuarantine, Tx};

/// Quarantines `bytes` in an entry of their own
/// ([`Store::quarantine`](crate::Store::quarantine)).
pub(crate) fn add<T: Tx + ?Sized>(
    tx: &mut T,
    bytes: &[u8],
    reason: QuarantineReason,
    detail: &str,
    envelope: &Envelope,
) -> Result<QuarantineId, StoreError> {
    let message_id = HeaderSummary::read(bytes).message_id;
    let entry = NewQuarantine {
        reason,
        detail,
        envelope,
        at: whole_seconds(OffsetDateTime::now_utc()),
    };
    let id = tx.insert_quarantine(&entry, message_id.as_ref(), bytes)?;
    audited(tx, id, message_id.as_ref(), None, reason, detail)
}

/// Quarantines a message the store holds already (the queue's copy): the
/// entry refers to it, and its bytes are not copied
/// ([`Store::quarantine_queued`](crate::Store::quarantine_queued)).
pub(crate) fn add_queued<T: Tx + ?Sized>(
    tx: &mut T,
    message: MessageRecordId,
    reason: QuarantineReason,
    detail: &str,
    envelope: &Envelope,
) -> Result<QuarantineId, StoreError> {
    let entry = NewQuarantine {
        reason,
        detail,
        envelope,
        at: whole_seconds(OffsetDateTime::now_utc()),
    };
    let Some((id, message_id)) = tx.insert_quarantine_of_queued(message, &entry)? else {
        return Err(StoreError::NotFound {
            entity: Entity::Message,
            name: message.to_string(),
        });
    };
    audited(tx, id, message_id.as_ref(), Some(message), reason, detail)
}

/// Writes the audit event of a new quarantine entry.
fn audited<T: Tx + ?Sized>(
    tx: &mut T,
    id: QuarantineId,
    message_id: Option<&MessageId>,
    message: Option<MessageRecordId>,
    reason: QuarantineReason,
    detail: &str,
) -> Result<QuarantineId, StoreError> {
    audit::write(
        tx,
        AuditKind::Quarantined,
        message_id,
        message,
        &format!("quarantine entry {id}: {reason}: {detail}"),
    )?;
    Ok(id)
}
