//! Mailboxes and the quarantine in PostgreSQL: an entry's columns, the
//! listing of a folder, a mailbox as its owner sees it (every query names
//! the owner's key and the view's cutoff), correspondents, and quarantined
//! messages. Filing, reading and moving are `crate::ops::mailbox`'s.

use ::postgres::{Row, Transaction};

use super::rows::{
    address_at, address_opt, col, corrupt, count_at, key, message_id_opt, parsed, time_at, time_opt,
};
use crate::error::{Entity, StoreError};
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId};
use crate::mailbox_view::{Correspondent, FolderCount, MailboxView};
use crate::message::Envelope;
use crate::quarantine::{QuarantineId, QuarantineRecord, QuarantinedMessage};
use hisp_address::DirectAddress;

/// The columns [`entry_row`] reads.
pub(super) const ENTRY_COLUMNS: &str =
    "id, address, folder, message_id, from_field, subject, date, size, unread, received_at";

/// A mailbox row read as a [`MailboxEntry`].
pub(super) fn entry_row(r: &Row) -> Result<MailboxEntry, StoreError> {
    Ok(MailboxEntry {
        id: MailboxEntryId(col(r, 0)?),
        address: address_at(r, 1)?,
        folder: parsed(r, 2, "folder", |s| s.parse().ok())?,
        message_id: message_id_opt(r, 3)?,
        from: col(r, 4)?,
        subject: col(r, 5)?,
        date: time_opt(r, 6)?,
        size: count_at(r, 7)?,
        unread: col(r, 8)?,
        received_at: time_at(r, 9)?,
    })
}

fn entries(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[&(dyn ::postgres::types::ToSql + Sync)],
) -> Result<Vec<MailboxEntry>, StoreError> {
    tx.query(sql, params)
        .map_err(StoreError::postgres("listing a mailbox"))?
        .iter()
        .map(entry_row)
        .collect()
}

/// One folder of a mailbox, newest first.
pub(super) fn list(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
    folder: Folder,
) -> Result<Vec<MailboxEntry>, StoreError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM mailbox WHERE address_key = $1 AND folder = $2
         ORDER BY received_at DESC, id DESC"
    );
    entries(tx, &sql, &[&key(address), &folder.as_str()])
}

/// One folder inside the view, newest first.
pub(super) fn folder(
    tx: &mut Transaction<'_>,
    owner: &DirectAddress,
    folder: Folder,
    view: &MailboxView,
) -> Result<Vec<MailboxEntry>, StoreError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM mailbox
         WHERE address_key = $1 AND folder = $2 AND received_at > $3
         ORDER BY received_at DESC, id DESC"
    );
    entries(
        tx,
        &sql,
        &[
            &key(owner),
            &folder.as_str(),
            &view.cutoff().unix_timestamp(),
        ],
    )
}

/// Total and unread entries of each folder inside the view: Inbox, Sent,
/// Disregarded, in that order, empty folders included.
pub(super) fn counts(
    tx: &mut Transaction<'_>,
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
    let rows = tx
        .query(
            "SELECT folder, count(*), count(*) FILTER (WHERE unread) FROM mailbox
             WHERE address_key = $1 AND received_at > $2 GROUP BY folder",
            &[&key(owner), &view.cutoff().unix_timestamp()],
        )
        .map_err(StoreError::postgres("counting a mailbox"))?;
    for r in &rows {
        let name: &str = col(r, 0)?;
        if let Some(c) = counts.iter_mut().find(|c| c.folder.as_str() == name) {
            c.total = count_at(r, 1)?;
            c.unread = count_at(r, 2)?;
        }
    }
    Ok(counts)
}

/// Who has sent `owner` mail, newest first, each address once.
pub(super) fn correspondents(
    tx: &mut Transaction<'_>,
    owner: &DirectAddress,
) -> Result<Vec<Correspondent>, StoreError> {
    let rows = tx
        .query(
            "SELECT s.address, s.name, m.received_at FROM mailbox_senders s
             JOIN mailbox m ON m.id = s.entry
             WHERE m.address_key = $1
             ORDER BY m.received_at DESC, m.id DESC",
            &[&key(owner)],
        )
        .map_err(StoreError::postgres("listing correspondents"))?;
    let mut out: Vec<Correspondent> = Vec::new();
    for r in &rows {
        let address = address_at(r, 0)?;
        let name: Option<String> = col(r, 1)?;
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
                last_at: time_at(r, 2)?,
            }),
        }
    }
    Ok(out)
}

const QUARANTINE_COLUMNS: &str = "q.id, q.message_id, q.envelope_from, q.recipients, q.received_at,
    q.reason, q.detail, q.size, q.quarantined_at";

fn quarantine_row(r: &Row) -> Result<QuarantineRecord, StoreError> {
    let recipients: &str = col(r, 3)?;
    let recipients = recipients
        .lines()
        .map(|a| DirectAddress::parse(a).map_err(|_| corrupt("address")))
        .collect::<Result<_, _>>()?;
    Ok(QuarantineRecord {
        id: QuarantineId(col(r, 0)?),
        message_id: message_id_opt(r, 1)?,
        envelope: Envelope {
            from: address_opt(r, 2)?,
            recipients,
            received_at: time_at(r, 4)?,
        },
        reason: parsed(r, 5, "quarantine reason", |s| s.parse().ok())?,
        detail: col(r, 6)?,
        size: count_at(r, 7)?,
        quarantined_at: time_at(r, 8)?,
    })
}

/// Every quarantined message, oldest first, without bytes.
pub(super) fn quarantined(tx: &mut Transaction<'_>) -> Result<Vec<QuarantineRecord>, StoreError> {
    tx.query(
        &format!("SELECT {QUARANTINE_COLUMNS} FROM quarantine q ORDER BY q.id"),
        &[],
    )
    .map_err(StoreError::postgres("listing the quarantine"))?
    .iter()
    .map(quarantine_row)
    .collect()
}

/// One quarantined message with its bytes (the queue's copy for an entry
/// made from a queued message).
pub(super) fn quarantined_message(
    tx: &mut Transaction<'_>,
    id: QuarantineId,
) -> Result<QuarantinedMessage, StoreError> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {QUARANTINE_COLUMNS}, coalesce(q.body, m.body) FROM quarantine q
                 LEFT JOIN messages m ON m.id = q.message WHERE q.id = $1"
            ),
            &[&id.0],
        )
        .map_err(StoreError::postgres("reading a quarantined message"))?
        .ok_or_else(|| StoreError::NotFound {
            entity: Entity::Quarantined,
            name: id.to_string(),
        })?;
    Ok(QuarantinedMessage {
        record: quarantine_row(&row)?,
        bytes: col(&row, 9)?,
    })
}
