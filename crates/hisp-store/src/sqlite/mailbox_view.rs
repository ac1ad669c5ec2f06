//! A mailbox as its owner sees it, in SQLite: every query names the owner
//! and the view's cutoff, so an entry of another mailbox, or one past
//! retention, is "not found" exactly like an id that does not exist.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Transaction};

use super::audit;
use super::mailbox::{self, entry_row, ENTRY_COLUMNS};
use super::rows::{address_at, time_at};
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
use crate::mailbox_view::{Correspondent, FolderCount, MailboxView};
use crate::message::HeaderSummary;
use hisp_address::DirectAddress;

/// How much of a stored message the migration reads to find its header.
const HEADER_PREFIX: i64 = 64 * 1024;

/// Notes who sent an Inbox entry, if it is mail from a Direct address (not
/// a report such as the DSN hisp files itself).
pub(crate) fn record_sender(
    tx: &Transaction<'_>,
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
    tx.exec(
        "INSERT INTO mailbox_senders (entry, address, name) VALUES (?1, ?2, ?3)",
        (entry.0, address.to_string(), summary.from_name.as_deref()),
    )
    .map_err(StoreError::sqlite(
        "recording the sender of a mailbox message",
    ))?;
    Ok(())
}

/// Fills `mailbox_senders` for the Inbox entries stored before it existed,
/// reading the head of each message.
pub(crate) fn fill_senders(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let heads: Vec<(i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, CAST(substr(body, 1, ?1) AS BLOB) FROM mailbox
                 WHERE home = 'inbox' ORDER BY id",
            )
            .map_err(StoreError::sqlite("reading mailbox headers"))?;
        let rows = stmt
            .query_map([HEADER_PREFIX], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(StoreError::sqlite("reading mailbox headers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sqlite("reading mailbox headers"))?
    };
    for (id, head) in heads {
        record_sender(tx, MailboxEntryId(id), &HeaderSummary::read(&head))?;
    }
    Ok(())
}

fn not_found(id: MailboxEntryId) -> StoreError {
    StoreError::NotFound {
        entity: Entity::MailboxMessage,
        name: id.to_string(),
    }
}

/// One entry of `owner`'s mailbox inside the view.
pub(crate) fn entry(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM mailbox WHERE id = ?1 AND address = ?2 AND received_at > ?3"
    );
    tx.row(
        &sql,
        (id.0, owner.to_string(), view.cutoff().unix_timestamp()),
        entry_row,
    )
    .optional()
    .map_err(StoreError::sqlite("reading a mailbox message"))?
    .ok_or_else(|| not_found(id))
}

/// One folder inside the view, newest first.
pub(crate) fn folder(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    folder: Folder,
    view: &MailboxView,
) -> Result<Vec<MailboxEntry>, StoreError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM mailbox
         WHERE address = ?1 AND folder = ?2 AND received_at > ?3
         ORDER BY received_at DESC, id DESC"
    );
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("listing a mailbox"))?;
    let rows = stmt
        .query_map(
            (
                owner.to_string(),
                folder.as_str(),
                view.cutoff().unix_timestamp(),
            ),
            entry_row,
        )
        .map_err(StoreError::sqlite("listing a mailbox"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing a mailbox"))
}

/// Total and unread entries of each folder inside the view: Inbox, Sent,
/// Disregarded, in that order, empty folders included.
pub(crate) fn counts(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    view: &MailboxView,
) -> Result<Vec<FolderCount>, StoreError> {
    let mut counts: Vec<FolderCount> = [Folder::Inbox, Folder::Sent, Folder::Disregarded]
        .into_iter()
        .map(|folder| FolderCount {
            folder,
            total: 0,
            unread: 0,
        })
        .collect();
    let mut stmt = tx
        .prepare_cached(
            "SELECT folder, count(*), total(unread) FROM mailbox
             WHERE address = ?1 AND received_at > ?2 GROUP BY folder",
        )
        .map_err(StoreError::sqlite("counting a mailbox"))?;
    let rows = stmt
        .query_map((owner.to_string(), view.cutoff().unix_timestamp()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })
        .map_err(StoreError::sqlite("counting a mailbox"))?;
    for row in rows {
        let (name, total, unread) = row.map_err(StoreError::sqlite("counting a mailbox"))?;
        if let Some(c) = counts.iter_mut().find(|c| c.folder.as_str() == name) {
            c.total = u64::try_from(total).unwrap_or(0);
            // total() of 0/1 values is an exact whole number.
            c.unread = unread as u64;
        }
    }
    Ok(counts)
}

/// Reads an entry and marks it read, in one transaction.
pub(crate) fn open(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxMessage, StoreError> {
    entry(tx, owner, id, view)?;
    mailbox::mark_read(tx, id)?;
    mailbox::read(tx, id)
}

/// Writes a refused delete of an entry in the view as an audit event
/// about its mailbox; the entry itself is left as it is.
pub(crate) fn refuse_delete(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    let found = entry(tx, owner, id, view)?;
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

/// Marks an entry read.
pub(crate) fn mark_read(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    entry(tx, owner, id, view)?;
    mailbox::mark_read(tx, id)?;
    entry(tx, owner, id, view)
}

/// Moves an Inbox (or Sent) entry to Disregarded.
pub(crate) fn disregard(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    entry(tx, owner, id, view)?;
    mailbox::move_to(tx, id, Folder::Disregarded)
}

/// Moves a Disregarded entry back to the folder it came from.
pub(crate) fn restore(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    view: &MailboxView,
) -> Result<MailboxEntry, StoreError> {
    let current = entry(tx, owner, id, view)?;
    if current.folder != Folder::Disregarded {
        return Err(StoreError::Invalid {
            what: "folder move",
            value: format!("{} -> restore", current.folder),
            reason: "only a disregarded message can be restored".into(),
        });
    }
    let home: String = tx
        .row("SELECT home FROM mailbox WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .map_err(StoreError::sqlite("reading a mailbox message"))?;
    let home: Folder = home.parse()?;
    mailbox::move_to(tx, id, home)
}

/// Who has sent `owner` mail, newest first, each address once.
pub(crate) fn correspondents(
    tx: &Transaction<'_>,
    owner: &DirectAddress,
) -> Result<Vec<Correspondent>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT s.address, s.name, m.received_at FROM mailbox_senders s
             JOIN mailbox m ON m.id = s.entry
             WHERE m.address = ?1
             ORDER BY m.received_at DESC, m.id DESC",
        )
        .map_err(StoreError::sqlite("listing correspondents"))?;
    let rows = stmt
        .query_map([owner.to_string()], |r| {
            Ok((
                address_at(r, 0)?,
                r.get::<_, Option<String>>(1)?,
                time_at(r, 2)?,
            ))
        })
        .map_err(StoreError::sqlite("listing correspondents"))?;
    let mut out: Vec<Correspondent> = Vec::new();
    for row in rows {
        let (address, name, at) = row.map_err(StoreError::sqlite("listing correspondents"))?;
        if &address == owner {
            continue;
        }
        match out.iter_mut().find(|c| c.address == address) {
            // Older mail of a known correspondent: only a name it lacks.
            Some(known) => {
                if known.name.is_none() {
                    known.name = name;
                }
            }
            None => out.push(Correspondent {
                address,
                name,
                last_at: at,
            }),
        }
    }
    Ok(out)
}
