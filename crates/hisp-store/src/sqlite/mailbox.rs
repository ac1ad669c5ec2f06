//! Mailboxes in SQLite. Rows are never deleted here: a user's "delete" is a
//! move to Disregarded.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Row, Transaction};
use time::OffsetDateTime;

use super::audit;
use super::directory::address_id;
use super::mailbox_view;
use super::rows::{address_at, count_at, len_i64, message_id_opt, parsed, time_at, time_opt};
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
use crate::message::{HeaderSummary, MessageId};
use hisp_address::DirectAddress;

pub(crate) const ENTRY_COLUMNS: &str =
    "id, address, folder, message_id, from_field, subject, date, size, unread, received_at";

pub(crate) fn deliver(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    bytes: &[u8],
    folder: Folder,
    received_at: OffsetDateTime,
) -> Result<MailboxEntryId, StoreError> {
    if folder == Folder::Disregarded {
        return Err(StoreError::Invalid {
            what: "folder",
            value: folder.to_string(),
            reason: "mail is delivered to inbox or sent; disregarded is reached by a move".into(),
        });
    }
    let summary = HeaderSummary::read(bytes);
    deliver_summarised(tx, address, bytes, &summary, folder, received_at)
}

/// [`deliver`] with the header already read.
fn deliver_summarised(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    bytes: &[u8],
    summary: &HeaderSummary,
    folder: Folder,
    received_at: OffsetDateTime,
) -> Result<MailboxEntryId, StoreError> {
    // The mailbox must belong to a local address; it is named by the
    // address's stored spelling.
    address_id(tx, address)?;
    // Mail received is new; a Sent copy is what the owner wrote, so read.
    let unread = folder == Folder::Inbox;
    tx.exec(
        "INSERT INTO mailbox (address, folder, home, message_id, from_field, subject, date,
                              size, received_at, body, unread)
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        (
            address.to_string(),
            folder.as_str(),
            summary.message_id.as_ref().map(MessageId::as_str),
            summary.from.as_deref(),
            summary.subject.as_deref(),
            summary.date.map(OffsetDateTime::unix_timestamp),
            len_i64(bytes.len()),
            received_at.unix_timestamp(),
            bytes,
            unread,
        ),
    )
    .map_err(StoreError::sqlite("storing a message in a mailbox"))?;
    let id = MailboxEntryId(tx.last_insert_rowid());
    if folder == Folder::Inbox {
        mailbox_view::record_sender(tx, id, summary)?;
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

/// [`deliver`] unless `folder` of `address` already had a message with the
/// same Message-ID delivered to it (`home`, so a copy moved since still
/// counts).
pub(crate) fn deliver_once(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    bytes: &[u8],
    folder: Folder,
    received_at: OffsetDateTime,
) -> Result<Option<MailboxEntryId>, StoreError> {
    if folder == Folder::Disregarded {
        return deliver(tx, address, bytes, folder, received_at).map(Some);
    }
    let summary = HeaderSummary::read(bytes);
    if let Some(id) = &summary.message_id {
        let there = tx
            .prepare_cached(
                "SELECT 1 FROM mailbox WHERE message_id = ?1 AND address = ?2 AND home = ?3",
            )
            .and_then(|mut s| s.exists((id.as_str(), address.to_string(), folder.as_str())))
            .map_err(StoreError::sqlite("looking for a copy already filed"))?;
        if there {
            return Ok(None);
        }
    }
    deliver_summarised(tx, address, bytes, &summary, folder, received_at).map(Some)
}

pub(crate) fn entry_row(r: &Row<'_>) -> rusqlite::Result<MailboxEntry> {
    Ok(MailboxEntry {
        id: MailboxEntryId(r.get(0)?),
        address: address_at(r, 1)?,
        folder: parsed(r, 2, "folder", |s| s.parse().ok())?,
        message_id: message_id_opt(r, 3)?,
        from: r.get(4)?,
        subject: r.get(5)?,
        date: time_opt(r, 6)?,
        size: count_at(r, 7)?,
        unread: r.get(8)?,
        received_at: time_at(r, 9)?,
    })
}

pub(crate) fn list(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    folder: Folder,
) -> Result<Vec<MailboxEntry>, StoreError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM mailbox WHERE address = ?1 AND folder = ?2
         ORDER BY received_at DESC, id DESC"
    );
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("listing a mailbox"))?;
    let rows = stmt
        .query_map((address.to_string(), folder.as_str()), entry_row)
        .map_err(StoreError::sqlite("listing a mailbox"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing a mailbox"))
}

pub(crate) fn entry(tx: &Transaction<'_>, id: MailboxEntryId) -> Result<MailboxEntry, StoreError> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM mailbox WHERE id = ?1");
    tx.row(&sql, [id.0], entry_row)
        .optional()
        .map_err(StoreError::sqlite("reading a mailbox message"))?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: MailboxEntryId) -> StoreError {
    StoreError::NotFound {
        entity: Entity::MailboxMessage,
        name: id.to_string(),
    }
}

pub(crate) fn read(tx: &Transaction<'_>, id: MailboxEntryId) -> Result<MailboxMessage, StoreError> {
    let entry = entry(tx, id)?;
    let bytes = tx
        .row("SELECT body FROM mailbox WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .map_err(StoreError::sqlite("reading a mailbox message"))?;
    Ok(MailboxMessage { entry, bytes })
}

pub(crate) fn mark_read(tx: &Transaction<'_>, id: MailboxEntryId) -> Result<(), StoreError> {
    let entry = entry(tx, id)?;
    if !entry.unread {
        return Ok(());
    }
    tx.exec("UPDATE mailbox SET unread = 0 WHERE id = ?1", [id.0])
        .map_err(StoreError::sqlite("marking a message read"))?;
    audit::write_about(
        tx,
        AuditKind::Read,
        &entry.address,
        entry.message_id.as_ref(),
        &format!("mailbox {} entry {id}", entry.address),
    )
}

/// Moves a message to Disregarded, or from Disregarded back to the folder
/// it came from; any other move is refused.
pub(crate) fn move_to(
    tx: &Transaction<'_>,
    id: MailboxEntryId,
    to: Folder,
) -> Result<MailboxEntry, StoreError> {
    let entry = entry(tx, id)?;
    let home: String = tx
        .row("SELECT home FROM mailbox WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .map_err(StoreError::sqlite("reading a mailbox message"))?;
    let allowed = match (entry.folder, to) {
        (Folder::Disregarded, back) => back.as_str() == home,
        (from, Folder::Disregarded) => from != Folder::Disregarded,
        _ => false,
    };
    if !allowed {
        return Err(StoreError::Invalid {
            what: "folder move",
            value: format!("{} -> {to}", entry.folder),
            reason: format!(
                "a message moves only to disregarded and back to where it came from ({home})"
            ),
        });
    }
    tx.exec(
        "UPDATE mailbox SET folder = ?2 WHERE id = ?1",
        (id.0, to.as_str()),
    )
    .map_err(StoreError::sqlite("moving a mailbox message"))?;
    audit::write_about(
        tx,
        AuditKind::Moved,
        &entry.address,
        entry.message_id.as_ref(),
        &format!(
            "mailbox {} entry {id}: {} -> {to}",
            entry.address, entry.folder
        ),
    )?;
    self::entry(tx, id)
}
