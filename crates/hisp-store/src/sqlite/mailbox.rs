//! Mailboxes in SQLite: an entry's columns and the listing of a folder.
//! Filing, reading and moving are written once in `crate::ops::mailbox`
//! over the statements in `sqlite/tx.rs`. Rows are never deleted: a user's
//! "delete" is a move to Disregarded.

use rusqlite::{Row, Transaction};

use super::rows::{address_at, count_at, message_id_opt, parsed, time_at, time_opt};
use crate::error::StoreError;
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId};
use hisp_address::DirectAddress;

pub(crate) const ENTRY_COLUMNS: &str =
    "id, address, folder, message_id, from_field, subject, date, size, unread, received_at";

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
