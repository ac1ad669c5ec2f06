//! A mailbox as its owner sees it, in SQLite: every query names the owner
//! and the view's cutoff, so an entry of another mailbox, or one past
//! retention, is "not found" exactly like an id that does not exist. The
//! owner's changes (open, mark read, disregard, restore, a refused delete)
//! are `crate::ops::mailbox`'s.

use rusqlite::Transaction;

use super::mailbox::{entry_row, ENTRY_COLUMNS};
use super::rows::{address_at, time_at};
use crate::error::StoreError;
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId};
use crate::mailbox_view::{Correspondent, FolderCount, MailboxView};
use crate::message::HeaderSummary;
use crate::ops;
use hisp_address::DirectAddress;

/// How much of a stored message the migration reads to find its header.
const HEADER_PREFIX: i64 = 64 * 1024;

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
    let mut tx = tx;
    for (id, head) in heads {
        ops::mailbox::record_sender(&mut tx, MailboxEntryId(id), &HeaderSummary::read(&head))?;
    }
    Ok(())
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
