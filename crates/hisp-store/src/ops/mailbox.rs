//! Mailboxes, for every backend: filing a message with its audit event
//! (once per folder by Message-ID, when asked), reading, moving, and the
//! owner's calls on an entry inside a retention view. Nothing is deleted:
//! a user's "delete" is a move to Disregarded, and a refused delete is
//! audited.

use time::OffsetDateTime;

use super::audit;
use super::queue::whole_seconds;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
use crate::mailbox_view::MailboxView;
use crate::message::HeaderSummary;
use crate::tx::{NewMailboxEntry, Tx};
use hisp_address::DirectAddress;

fn not_found(id: MailboxEntryId) -> StoreError {
    StoreError::NotFound {
        entity: Entity::MailboxMessage,
        name: id.to_string(),
    }
}

/// Refuses filing straight into Disregarded, which is reached by a move.
fn check_folder(folder: Folder) -> Result<(), StoreError> {
    if folder == Folder::Disregarded {
        return Err(StoreError::Invalid {
            what: "folder",
            value: folder.to_string(),
            reason: "mail is delivered to inbox or sent; disregarded is reached by a move".into(),
        });
    }
    Ok(())
}

/// Files a message in the Inbox or Sent folder of a local address
/// ([`Store::deliver_to_mailbox`](crate::Store::deliver_to_mailbox)).
pub(crate) fn deliver<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    bytes: &[u8],
    folder: Folder,
    received_at: OffsetDateTime,
) -> Result<MailboxEntryId, StoreError> {
    check_folder(folder)?;
    let summary = HeaderSummary::read(bytes);
    deliver_summarised(tx, address, bytes, &summary, folder, received_at)
}

/// [`deliver`] with the header already read (and the folder checked).
pub(crate) fn deliver_summarised<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    bytes: &[u8],
    summary: &HeaderSummary,
    folder: Folder,
    received_at: OffsetDateTime,
) -> Result<MailboxEntryId, StoreError> {
    // The mailbox must belong to a local address.
    if !tx.is_local_address(address)? {
        return Err(StoreError::NotFound {
            entity: Entity::Address,
            name: address.to_string(),
        });
    }
    let id = tx.insert_mailbox_entry(&NewMailboxEntry {
        address,
        folder,
        summary,
        received_at: whole_seconds(received_at),
        // Mail received is new; a Sent copy is what the owner wrote, so read.
        unread: folder == Folder::Inbox,
        bytes,
    })?;
    if folder == Folder::Inbox {
        record_sender(tx, id, summary)?;
    }
    audit::write_about(
        tx,
        AuditKind::Delivered,
        address,
        summary.message_id.as_ref(),
        &format!("mailbox {address} folder {folder} entry {id}"),
    )?;
    Ok(id)
}

/// Notes who sent an Inbox entry, if it is mail from a Direct address (not
/// a report such as the DSN hisp files itself), for the correspondents.
pub(crate) fn record_sender<T: Tx + ?Sized>(
    tx: &mut T,
    entry: MailboxEntryId,
    summary: &HeaderSummary,
) -> Result<(), StoreError> {
    if summary.report {
        return Ok(());
    }
    let Some(address) = summary
        .from_address
        .as_deref()
        .and_then(|a| DirectAddress::parse(a).ok())
    else {
        return Ok(());
    };
    tx.insert_mailbox_sender(entry, &address, summary.from_name.as_deref())
}

/// [`deliver`] unless `folder` of `address` already had a message with the
/// same Message-ID filed in it (a copy moved since still counts)
/// ([`Store::deliver_to_mailbox_once`](crate::Store::deliver_to_mailbox_once)).
pub(crate) fn deliver_once<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    bytes: &[u8],
    folder: Folder,
    received_at: OffsetDateTime,
) -> Result<Option<MailboxEntryId>, StoreError> {
    check_folder(folder)?;
    let summary = HeaderSummary::read(bytes);
    if let Some(id) = &summary.message_id {
        if tx.mailbox_has(address, folder, id)? {
            return Ok(None);
        }
    }
    deliver_summarised(tx, address, bytes, &summary, folder, received_at).map(Some)
}

/// One entry, or NotFound.
pub(crate) fn entry<T: Tx + ?Sized>(
    tx: &mut T,
    id: MailboxEntryId,
) -> Result<MailboxEntry, StoreError> {
    tx.mailbox_entry(id)?.ok_or_else(|| not_found(id))
}

/// One entry with its bytes ([`Store::read_message`](crate::Store::read_message)).
pub(crate) fn read<T: Tx + ?Sized>(
    tx: &mut T,
    id: MailboxEntryId,
) -> Result<MailboxMessage, StoreError> {
    let entry = entry(tx, id)?;
    let bytes = tx.mailbox_body(id)?;
    Ok(MailboxMessage { entry, bytes })
}

/// Marks an entry read, audited the first time
/// ([`Store::mark_read`](crate::Store::mark_read)).
pub(crate) fn mark_read<T: Tx + ?Sized>(tx: &mut T, id: MailboxEntryId) -> Result<(), StoreError> {
    let entry = entry(tx, id)?;
    if !entry.unread {
        return Ok(());
    }
    tx.mark_entry_read(id)?;
    audit::write_about(
        tx,
        AuditKind::Read,
        &entry.address,
        entry.message_id.as_ref(),
        &format!("mailbox {} entry {id}", entry.address),
    )
}

/// Moves an entry to Disregarded, or from Disregarded back to the folder
/// it came from; any other move is refused
/// ([`Store::move_to`](crate::Store::move_to)).
pub(crate) fn move_to<T: Tx + ?Sized>(
    tx: &mut T,
    id: MailboxEntryId,
    to: Folder,
) -> Result<MailboxEntry, StoreError> {
    let current = entry(tx, id)?;
    let home = tx.mailbox_home(id)?;
    let allowed = match (current.folder, to) {
        (Folder::Disregarded, back) => back == home,
        (from, Folder::Disregarded) => from != Folder::Disregarded,
        _ => false,
    };
    if !allowed {
        return Err(StoreError::Invalid {
            what: "folder move",
            value: format!("{} -> {to}", current.folder),
            reason: format!(
                "a message moves only to disregarded and back to where it came from ({home})"
            ),
        });
    }
    tx.set_entry_folder(id, to)?;
    audit::write_about(
        tx,
        AuditKind::Moved,
        &current.address,
        current.message_id.as_ref(),
        &format!(
            "mailbox {} entry {id}: {} -> {to}",
            current.address, current.folder
        ),
    )?;
    entry(tx, id)
}

/// One entry of `owner`'s mailbox inside the view, or NotFound as for an
/// id that does not exist.
pub(crate) fn view_entry<T: Tx + ?Sized>(
    tx: &mut T,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    tx.owned_entry(owner, id, view.cutoff())?
        .ok_or_else(|| not_found(id))
}

/// Reads an entry of the view and marks it read
/// ([`Store::open_message`](crate::Store::open_message)).
pub(crate) fn open<T: Tx + ?Sized>(
    tx: &mut T,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxMessage, StoreError> {
    view_entry(tx, owner, id, view)?;
    mark_read(tx, id)?;
    read(tx, id)
}

/// Marks an entry of the view read
/// ([`Store::mark_read_in_view`](crate::Store::mark_read_in_view)).
pub(crate) fn mark_read_in_view<T: Tx + ?Sized>(
    tx: &mut T,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    view_entry(tx, owner, id, view)?;
    mark_read(tx, id)?;
    view_entry(tx, owner, id, view)
}

/// Moves an Inbox (or Sent) entry of the view to Disregarded
/// ([`Store::disregard`](crate::Store::disregard)).
pub(crate) fn disregard<T: Tx + ?Sized>(
    tx: &mut T,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    view_entry(tx, owner, id, view)?;
    move_to(tx, id, Folder::Disregarded)
}

/// Moves a Disregarded entry of the view back to the folder it came from
/// ([`Store::restore`](crate::Store::restore)).
pub(crate) fn restore<T: Tx + ?Sized>(
    tx: &mut T,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    let current = view_entry(tx, owner, id, view)?;
    if current.folder != Folder::Disregarded {
        return Err(StoreError::Invalid {
            what: "folder move",
            value: format!("{} -> restore", current.folder),
            reason: "only a disregarded message can be restored".into(),
        });
    }
    let home = tx.mailbox_home(id)?;
    move_to(tx, id, home)
}

/// Writes a refused delete of an entry in the view as an audit event about
/// its mailbox; the entry itself is left as it is
/// ([`Store::refuse_delete`](crate::Store::refuse_delete)).
pub(crate) fn refuse_delete<T: Tx + ?Sized>(
    tx: &mut T,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    let found = view_entry(tx, owner, id, view)?;
    audit::write_about(
        tx,
        AuditKind::DeleteRefused,
        &found.address,
        found.message_id.as_ref(),
        &format!(
            "delete of mailbox message {} in {} refused: nothing is deleted",
            found.id, found.folder
        ),
    )?;
    Ok(found)
}
