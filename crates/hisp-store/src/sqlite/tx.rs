//! SQLite's statements behind the transaction seam ([`Tx`]), on an open
//! rusqlite transaction, each through the connection's statement cache.
//!
//! What is SQLite's own here: a new row's id is `last_insert_rowid`; a
//! claim's candidates need no row locks, because every write transaction
//! takes the database's one write lock when it begins (IMMEDIATE), which
//! also serialises the audit chain's appenders; addresses compare without
//! regard to letter case through the columns' `COLLATE NOCASE`; times are
//! Unix seconds (the queue's bookkeeping in milliseconds), bytes BLOBs.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction};
use time::OffsetDateTime;

use super::cached::Cached;
use super::directory::address_id_opt;
use super::mailbox::{entry_row, ENTRY_COLUMNS};
use super::portal_user;
use super::queue::{recipients_of, recipients_where};
use super::rows::{
    address_opt, count_at, is_unique_violation, len_i64, message_id_opt, millis, now, parsed,
    time_at, time_opt,
};
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId};
use crate::message::{MessageDirection, MessageId, MessageRecordId};
use crate::portal_user::{NotifySettings, PortalUser, PortalUserId};
use crate::quarantine::QuarantineId;
use crate::queue::{Lease, QueueItem, QueueItemId, QueueState};
use crate::tracking::{DeliveryStatus, RecipientId, RecipientRecord, TrackingState};
use crate::tx::{
    AuditRow, Candidate, EntryState, LastAuditEvent, NewMailboxEntry, NewMessage, NewQuarantine,
    PortalUserInsert, Tx,
};
use hisp_address::{DirectAddress, Domain};

/// A time as stored: Unix seconds.
fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// The envelope's recipients as the `quarantine.recipients` column keeps
/// them: one a line.
fn recipient_lines(entry: &NewQuarantine<'_>) -> String {
    let recipients: Vec<String> = entry
        .envelope
        .recipients
        .iter()
        .map(ToString::to_string)
        .collect();
    recipients.join("\n")
}

impl Tx for &Transaction<'_> {
    fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<MessageRecordId, StoreError> {
        self.exec(
            "INSERT INTO messages (direction, message_id, envelope_from, received_at, size, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                m.direction.as_str(),
                m.message_id.map(MessageId::as_str),
                m.envelope_from.map(ToString::to_string),
                secs(m.received_at),
                len_i64(m.bytes.len()),
                m.bytes,
            ),
        )
        .map_err(StoreError::sqlite("storing a message"))?;
        Ok(MessageRecordId(self.last_insert_rowid()))
    }

    fn insert_message_tracking(
        &mut self,
        message: MessageRecordId,
        expect: Expectation,
        subject: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO message_tracking (message, expect, subject) VALUES (?1, ?2, ?3)",
            (message.0, expect.as_str(), subject),
        )
        .map_err(StoreError::sqlite(
            "storing what tracking expects of a message",
        ))?;
        Ok(())
    }

    fn insert_queue_entry(
        &mut self,
        message: MessageRecordId,
        due: OffsetDateTime,
        queued_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO queue (message, state, next_attempt_at, updated_at, queued_ms)
             VALUES (?1, 'pending', ?2, ?3, ?4)",
            (message.0, secs(due), now(), millis(queued_at)),
        )
        .map_err(StoreError::sqlite("queueing a message"))?;
        Ok(())
    }

    fn insert_recipient(
        &mut self,
        message: MessageRecordId,
        address: &DirectAddress,
        queued_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        match self.exec(
            "INSERT INTO recipients (message, address, state, queued_at)
             VALUES (?1, ?2, 'queued', ?3)",
            (message.0, address.to_string(), secs(queued_at)),
        ) {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(StoreError::sqlite("adding a recipient")(e)),
        }
    }

    fn message_id_of(
        &mut self,
        message: MessageRecordId,
    ) -> Result<Option<Option<MessageId>>, StoreError> {
        self.row(
            "SELECT message_id FROM messages WHERE id = ?1",
            [message.0],
            |r| message_id_opt(r, 0),
        )
        .optional()
        .map_err(StoreError::sqlite("reading a message"))
    }

    fn queue_mark(&mut self, mark: &str) -> Result<Option<MessageRecordId>, StoreError> {
        self.row(
            "SELECT message FROM queued_once WHERE mark = ?1",
            [mark],
            |r| r.get(0).map(MessageRecordId),
        )
        .optional()
        .map_err(StoreError::sqlite("reading a queue mark"))
    }

    fn insert_queue_mark(
        &mut self,
        mark: &str,
        message: MessageRecordId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO queued_once (mark, message, at) VALUES (?1, ?2, ?3)",
            (mark, message.0, secs(at)),
        )
        .map_err(StoreError::sqlite("recording a queue mark"))?;
        Ok(())
    }

    fn due_candidates(
        &mut self,
        now_at: OffsetDateTime,
        count: usize,
        full: &[&Domain],
    ) -> Result<Vec<Candidate>, StoreError> {
        // No row locks: the transaction holds the write lock, so no other
        // claimer runs until it commits the leases.
        let mut params = vec![Value::Integer(secs(now_at)), Value::Integer(len_i64(count))];
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
            params.extend(full.iter().map(|d| Value::Text(d.to_string())));
        }
        let sql = format!(
            "SELECT q.id, q.message, m.direction FROM queue q JOIN messages m ON m.id = q.message
             WHERE q.state = 'pending' AND q.next_attempt_at <= ?1
               AND (q.lease_until IS NULL OR q.lease_until <= ?1) {busy}
             ORDER BY q.next_attempt_at, q.id LIMIT ?2"
        );
        let mut stmt = self
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite("finding due messages"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok(Candidate {
                    id: QueueItemId(r.get(0)?),
                    message: MessageRecordId(r.get(1)?),
                    direction: parsed(r, 2, "direction", MessageDirection::from_name)?,
                })
            })
            .map_err(StoreError::sqlite("finding due messages"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sqlite("finding due messages"))
    }

    fn queued_destinations(&mut self, message: MessageRecordId) -> Result<Vec<Domain>, StoreError> {
        let mut stmt = self
            .prepare_cached(
                "SELECT DISTINCT substr(address, instr(address, '@') + 1) FROM recipients
                 WHERE message = ?1 AND state = 'queued'",
            )
            .map_err(StoreError::sqlite("reading destinations"))?;
        let rows = stmt
            .query_map([message.0], |r| {
                parsed(r, 0, "domain", |s| Domain::parse(s).ok())
            })
            .map_err(StoreError::sqlite("reading destinations"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sqlite("reading destinations"))
    }

    fn take_lease(
        &mut self,
        id: QueueItemId,
        lease: &Lease,
        now_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE queue SET lease_token = ?2, lease_until = ?3, attempts = attempts + 1,
                              updated_at = ?4, last_attempt_ms = ?5,
                              first_attempt_ms = coalesce(first_attempt_ms, ?5)
             WHERE id = ?1",
            (id.0, &lease.token, secs(lease.until), now(), millis(now_at)),
        )
        .map_err(StoreError::sqlite("claiming a message"))?;
        Ok(())
    }

    fn queue_item(&mut self, id: QueueItemId) -> Result<QueueItem, StoreError> {
        self.row(
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
                    bytes: std::sync::Arc::new(r.get(5)?),
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
        .map_err(StoreError::sqlite("reading a claimed message"))
    }

    fn extend_lease(
        &mut self,
        id: QueueItemId,
        token: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE queue SET lease_until = ?3, updated_at = ?4
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
                (id.0, token, secs(until), now()),
            )
            .map_err(StoreError::sqlite("renewing a lease"))?;
        Ok(changed > 0)
    }

    fn holds_lease(&mut self, id: QueueItemId, token: &str) -> Result<bool, StoreError> {
        // The write transaction holds SQLite's one write lock, so no claim
        // can take the entry before it ends.
        let found = self
            .row(
                "SELECT count(*) FROM queue
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
                (id.0, token),
                |r| r.get::<_, i64>(0),
            )
            .map_err(StoreError::sqlite("checking a lease"))?;
        Ok(found > 0)
    }

    fn clear_lease(&mut self, id: QueueItemId, token: &str) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE queue SET lease_token = NULL, lease_until = NULL, updated_at = ?3
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
                (id.0, token, now()),
            )
            .map_err(StoreError::sqlite("releasing a claimed message"))?;
        Ok(changed > 0)
    }

    fn finish_entry(
        &mut self,
        id: QueueItemId,
        token: &str,
        state: QueueState,
        next_attempt_at: Option<OffsetDateTime>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .exec(
                "UPDATE queue SET state = ?3, lease_token = NULL, lease_until = NULL,
                                  next_attempt_at = coalesce(?4, next_attempt_at),
                                  last_error = coalesce(?5, last_error), updated_at = ?6
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
                (
                    id.0,
                    token,
                    state.as_str(),
                    next_attempt_at.map(secs),
                    error,
                    now(),
                ),
            )
            .map_err(StoreError::sqlite("finishing a claimed message"))?;
        Ok(changed > 0)
    }

    fn queue_entry(&mut self, id: QueueItemId) -> Result<Option<EntryState>, StoreError> {
        self.row(
            "SELECT id, state, next_attempt_at, message FROM queue WHERE id = ?1",
            [id.0],
            entry_state,
        )
        .optional()
        .map_err(StoreError::sqlite("reading a queue entry"))
    }

    fn pending_after(&mut self, at: OffsetDateTime) -> Result<Vec<EntryState>, StoreError> {
        let mut stmt = self
            .prepare_cached(
                "SELECT id, state, next_attempt_at, message FROM queue
                 WHERE state = 'pending' AND next_attempt_at > ?1 ORDER BY id",
            )
            .map_err(StoreError::sqlite("finding pending entries"))?;
        let rows = stmt
            .query_map([secs(at)], entry_state)
            .map_err(StoreError::sqlite("finding pending entries"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sqlite("finding pending entries"))
    }

    fn make_due(&mut self, id: QueueItemId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.exec(
            "UPDATE queue SET next_attempt_at = min(next_attempt_at, ?2), updated_at = ?3
             WHERE id = ?1",
            (id.0, secs(at), now()),
        )
        .map_err(StoreError::sqlite("making a queue entry due"))?;
        Ok(())
    }

    fn recipient(&mut self, id: RecipientId) -> Result<Option<RecipientRecord>, StoreError> {
        Ok(recipients_where(self, "r.id = ?1", &id.0)?.pop())
    }

    fn recipients_of(
        &mut self,
        message: MessageRecordId,
    ) -> Result<Vec<RecipientRecord>, StoreError> {
        recipients_of(self, message)
    }

    fn move_recipient(
        &mut self,
        id: RecipientId,
        from: TrackingState,
        to: TrackingState,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        // The column name comes from the enum, never from input.
        let sql = format!(
            "UPDATE recipients SET state = ?2, {}_at = ?3, reason = coalesce(?4, reason)
             WHERE id = ?1 AND state = ?5",
            to.as_str()
        );
        let changed = self
            .exec(&sql, (id.0, to.as_str(), secs(at), reason, from.as_str()))
            .map_err(StoreError::sqlite("moving a recipient"))?;
        Ok(changed > 0)
    }

    fn set_recipient_status(
        &mut self,
        id: RecipientId,
        status: Option<&DeliveryStatus>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recipients SET status = ?2 WHERE id = ?1",
            (id.0, status.map(ToString::to_string)),
        )
        .map_err(StoreError::sqlite("keeping a recipient's status"))?;
        Ok(())
    }

    fn set_step_time(
        &mut self,
        id: RecipientId,
        step: TrackingState,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The column name comes from the enum, never from input.
        let sql = format!(
            "UPDATE recipients SET {}_at = ?2 WHERE id = ?1",
            step.as_str()
        );
        self.exec(&sql, (id.0, secs(at)))
            .map_err(StoreError::sqlite("noting an overtaken step"))?;
        Ok(())
    }

    fn mark_notified(&mut self, id: RecipientId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recipients SET notified_at = ?2 WHERE id = ?1",
            (id.0, secs(at)),
        )
        .map_err(StoreError::sqlite("marking a recipient notified"))?;
        Ok(())
    }

    fn is_local_address(&mut self, address: &DirectAddress) -> Result<bool, StoreError> {
        Ok(address_id_opt(self, address)?.is_some())
    }

    fn insert_mailbox_entry(
        &mut self,
        e: &NewMailboxEntry<'_>,
    ) -> Result<MailboxEntryId, StoreError> {
        let summary = e.summary;
        self.exec(
            "INSERT INTO mailbox (address, folder, home, message_id, from_field, subject, date,
                                  size, received_at, body, unread)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            (
                e.address.to_string(),
                e.folder.as_str(),
                summary.message_id.as_ref().map(MessageId::as_str),
                summary.from.as_deref(),
                summary.subject.as_deref(),
                summary.date.map(secs),
                len_i64(e.bytes.len()),
                secs(e.received_at),
                e.bytes,
                e.unread,
            ),
        )
        .map_err(StoreError::sqlite("storing a message in a mailbox"))?;
        Ok(MailboxEntryId(self.last_insert_rowid()))
    }

    fn insert_mailbox_sender(
        &mut self,
        entry: MailboxEntryId,
        address: &DirectAddress,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO mailbox_senders (entry, address, name) VALUES (?1, ?2, ?3)",
            (entry.0, address.to_string(), name),
        )
        .map_err(StoreError::sqlite(
            "recording the sender of a mailbox message",
        ))?;
        Ok(())
    }

    fn mailbox_has(
        &mut self,
        address: &DirectAddress,
        home: Folder,
        message_id: &MessageId,
    ) -> Result<bool, StoreError> {
        self.prepare_cached(
            "SELECT 1 FROM mailbox WHERE message_id = ?1 AND address = ?2 AND home = ?3",
        )
        .and_then(|mut s| s.exists((message_id.as_str(), address.to_string(), home.as_str())))
        .map_err(StoreError::sqlite("looking for a copy already filed"))
    }

    fn inbox_copy(
        &mut self,
        address: &DirectAddress,
        message_id: &MessageId,
        from: Option<&str>,
    ) -> Result<Option<MailboxEntryId>, StoreError> {
        self.row(
            "SELECT id FROM mailbox
             WHERE message_id = ?1 AND address = ?2 AND home = 'inbox' AND from_field IS ?3
             ORDER BY id LIMIT 1",
            (message_id.as_str(), address.to_string(), from),
            |r| r.get(0).map(MailboxEntryId),
        )
        .optional()
        .map_err(StoreError::sqlite(
            "looking for an earlier copy in the mailbox",
        ))
    }

    fn mailbox_entry(&mut self, id: MailboxEntryId) -> Result<Option<MailboxEntry>, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM mailbox WHERE id = ?1");
        self.row(&sql, [id.0], entry_row)
            .optional()
            .map_err(StoreError::sqlite("reading a mailbox message"))
    }

    fn owned_entry(
        &mut self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        cutoff: OffsetDateTime,
    ) -> Result<Option<MailboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM mailbox WHERE id = ?1 AND address = ?2 AND received_at > ?3"
        );
        self.row(&sql, (id.0, owner.to_string(), secs(cutoff)), entry_row)
            .optional()
            .map_err(StoreError::sqlite("reading a mailbox message"))
    }

    fn mailbox_home(&mut self, id: MailboxEntryId) -> Result<Folder, StoreError> {
        self.row("SELECT home FROM mailbox WHERE id = ?1", [id.0], |r| {
            parsed(r, 0, "folder", |s| s.parse().ok())
        })
        .map_err(StoreError::sqlite("reading a mailbox message"))
    }

    fn mailbox_body(&mut self, id: MailboxEntryId) -> Result<Vec<u8>, StoreError> {
        self.row("SELECT body FROM mailbox WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .map_err(StoreError::sqlite("reading a mailbox message"))
    }

    fn mark_entry_read(&mut self, id: MailboxEntryId) -> Result<(), StoreError> {
        self.exec("UPDATE mailbox SET unread = 0 WHERE id = ?1", [id.0])
            .map_err(StoreError::sqlite("marking a message read"))?;
        Ok(())
    }

    fn set_entry_folder(&mut self, id: MailboxEntryId, folder: Folder) -> Result<(), StoreError> {
        self.exec(
            "UPDATE mailbox SET folder = ?2 WHERE id = ?1",
            (id.0, folder.as_str()),
        )
        .map_err(StoreError::sqlite("moving a mailbox message"))?;
        Ok(())
    }

    fn portal_user(&mut self, address: &DirectAddress) -> Result<Option<PortalUser>, StoreError> {
        portal_user::find(self, address)
    }

    fn insert_portal_user(
        &mut self,
        address: &DirectAddress,
        password_hash: &str,
        settings: &NotifySettings,
        at: OffsetDateTime,
    ) -> Result<PortalUserInsert, StoreError> {
        portal_user::insert(self, address, password_hash, settings, at)
    }

    fn set_portal_password(
        &mut self,
        id: PortalUserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        portal_user::set_password(self, id, password_hash)
    }

    fn disable_portal_user(
        &mut self,
        id: PortalUserId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        portal_user::disable(self, id, at)
    }

    fn set_portal_settings(
        &mut self,
        id: PortalUserId,
        settings: &NotifySettings,
    ) -> Result<(), StoreError> {
        portal_user::set_settings(self, id, settings)
    }

    fn insert_portal_notice(
        &mut self,
        notice: MessageRecordId,
        owner: &DirectAddress,
        about: MessageRecordId,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO portal_notices (message, owner, about) VALUES (?1, ?2, ?3)",
            (notice.0, owner.to_string(), about.0),
        )
        .map_err(StoreError::sqlite("noting whom a notice is about"))?;
        Ok(())
    }

    fn portal_notice_owner(
        &mut self,
        notice: MessageRecordId,
    ) -> Result<Option<DirectAddress>, StoreError> {
        self.row(
            "SELECT owner FROM portal_notices WHERE message = ?1",
            [notice.0],
            |r| parsed(r, 0, "address", |s| DirectAddress::parse(s).ok()),
        )
        .optional()
        .map_err(StoreError::sqlite("reading whom a notice is about"))
    }

    fn insert_quarantine(
        &mut self,
        entry: &NewQuarantine<'_>,
        message_id: Option<&MessageId>,
        bytes: &[u8],
    ) -> Result<QuarantineId, StoreError> {
        self.exec(
            "INSERT INTO quarantine (message_id, envelope_from, recipients, received_at, reason,
                                     detail, size, quarantined_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            (
                message_id.map(MessageId::as_str),
                entry.envelope.from.as_ref().map(ToString::to_string),
                recipient_lines(entry),
                secs(entry.envelope.received_at),
                entry.reason.as_str(),
                entry.detail,
                len_i64(bytes.len()),
                secs(entry.at),
                bytes,
            ),
        )
        .map_err(StoreError::sqlite("quarantining a message"))?;
        Ok(QuarantineId(self.last_insert_rowid()))
    }

    fn insert_quarantine_of_queued(
        &mut self,
        message: MessageRecordId,
        entry: &NewQuarantine<'_>,
    ) -> Result<Option<(QuarantineId, Option<MessageId>)>, StoreError> {
        let changed = self
            .exec(
                "INSERT INTO quarantine (message_id, envelope_from, recipients, received_at,
                                         reason, detail, size, quarantined_at, message)
                 SELECT message_id, ?2, ?3, ?4, ?5, ?6, size, ?7, id FROM messages WHERE id = ?1",
                (
                    message.0,
                    entry.envelope.from.as_ref().map(ToString::to_string),
                    recipient_lines(entry),
                    secs(entry.envelope.received_at),
                    entry.reason.as_str(),
                    entry.detail,
                    secs(entry.at),
                ),
            )
            .map_err(StoreError::sqlite("quarantining a message"))?;
        if changed == 0 {
            return Ok(None);
        }
        let id = QuarantineId(self.last_insert_rowid());
        let message_id: Option<String> = self
            .row(
                "SELECT message_id FROM quarantine WHERE id = ?1",
                [id.0],
                |r| r.get(0),
            )
            .map_err(StoreError::sqlite("quarantining a message"))?;
        Ok(Some((
            id,
            message_id.and_then(|m| MessageId::parse(&m).ok()),
        )))
    }

    fn last_audit_event(&mut self) -> Result<Option<LastAuditEvent>, StoreError> {
        self.row(
            "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(LastAuditEvent {
                    id: r.get(0)?,
                    hash: r.get(1)?,
                })
            },
        )
        .optional()
        .map_err(StoreError::sqlite("reading the last audit event"))
    }

    fn insert_audit_event(&mut self, e: &AuditRow<'_>, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO audit_events (id, at, kind, message_id, message, address, detail, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            (
                e.id,
                secs(e.at),
                e.kind.as_str(),
                e.message_id.map(MessageId::as_str),
                e.message.map(|m| m.0),
                e.address,
                e.detail,
                &hash[..],
            ),
        )
        .map_err(StoreError::sqlite("writing an audit event"))?;
        Ok(())
    }
}

/// A queue row read as [`EntryState`].
fn entry_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntryState> {
    Ok(EntryState {
        id: QueueItemId(r.get(0)?),
        state: parsed(r, 1, "queue state", QueueState::from_name)?,
        next_attempt_at: time_at(r, 2)?,
        message: MessageRecordId(r.get(3)?),
    })
}
