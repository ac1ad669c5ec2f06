//! PostgreSQL's statements behind the transaction seam ([`Tx`]), on an open
//! `postgres::Transaction` at READ COMMITTED.
//!
//! What is PostgreSQL's own here:
//!
//! - New rows' ids come back by `RETURNING`.
//! - Several instances write at once, so what SQLite gets from its one
//!   writer is asked for explicitly: a claim's candidates are locked
//!   `FOR UPDATE OF q SKIP LOCKED` (claimers at once never wait for each
//!   other nor take the same entry, and an entry leased meanwhile is
//!   re-checked and left out); the rows an operation reads before it moves
//!   them (a recipient, a mailbox entry, a portal account) are read
//!   `FOR UPDATE`, so two filings or notices of one recipient run one after
//!   the other and the second sees the first's outcome; the audit chain's
//!   appenders are serialised by a transaction-level advisory lock taken
//!   before the newest event is read; filing a copy once per (address,
//!   Message-ID) and a queue mark take an advisory lock on a hash of what
//!   they look up, so the look-up and the insert are one step for everyone.
//!   (Read transactions are REPEATABLE READ READ ONLY and lock nothing.)
//! - Addresses compare on the lower-cased `<column>_key` columns.
//! - Times are Unix seconds (the queue's bookkeeping milliseconds), bytes
//!   `bytea`, flags booleans.

use ::postgres::types::ToSql;
use ::postgres::{Row, Transaction};
use time::OffsetDateTime;

use super::queue::{recipients_of, recipients_where};
use super::rows::{
    address_opt, col, count_at, key, len_i64, message_id_opt, millis, now, parsed, secs, time_at,
    time_opt,
};
use super::{accounts, mailbox};
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId};
use crate::message::{MessageDirection, MessageId, MessageRecordId};
use crate::portal_user::{EmailAddress, NotifySettings, PortalUser, PortalUserId};
use crate::quarantine::QuarantineId;
use crate::queue::{Lease, QueueItem, QueueItemId, QueueState};
use crate::tracking::{DeliveryStatus, RecipientId, RecipientRecord, TrackingState};
use crate::tx::{
    AuditRow, Candidate, EntryState, LastAuditEvent, NewMailboxEntry, NewMessage, NewQuarantine,
    PortalUserInsert, Tx,
};
use hisp_address::{DirectAddress, Domain};

/// The key of the advisory lock that serialises the audit chain's
/// appenders: "hisp-aud" in ASCII.
const AUDIT_LOCK: i64 = 0x6869_7370_2d61_7564;

/// One open transaction of the PostgreSQL store.
pub(crate) struct PgTx<'c> {
    /// The transaction.
    pub(super) tx: Transaction<'c>,
    /// Whether this is a write transaction, whose reads of rows it may move
    /// lock them (a read transaction is READ ONLY and may not).
    locking: bool,
    /// The instance whose leases claims write (`queue.lease_owner`).
    instance: &'c str,
    /// Whether a queue entry was inserted: the bell rings after the commit.
    pub(super) queued: bool,
}

impl<'c> PgTx<'c> {
    /// A write transaction of `instance`.
    pub(super) fn write(tx: Transaction<'c>, instance: &'c str) -> PgTx<'c> {
        PgTx {
            tx,
            locking: true,
            instance,
            queued: false,
        }
    }

    /// A read transaction.
    pub(super) fn read(tx: Transaction<'c>, instance: &'c str) -> PgTx<'c> {
        PgTx {
            tx,
            locking: false,
            instance,
            queued: false,
        }
    }

    /// `FOR UPDATE` (of `alias` when given) in a write transaction, nothing
    /// in a read one.
    fn lock_clause(&self, alias: Option<&str>) -> String {
        match (self.locking, alias) {
            (false, _) => String::new(),
            (true, None) => " FOR UPDATE".into(),
            (true, Some(a)) => format!(" FOR UPDATE OF {a}"),
        }
    }

    /// In a write transaction, waits for and holds until the end of the
    /// transaction the advisory lock named by `name` (hashed to 64 bits).
    fn lock_name(&mut self, name: &str, context: &'static str) -> Result<(), StoreError> {
        if self.locking {
            self.tx
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&name],
                )
                .map_err(StoreError::postgres(context))?;
        }
        Ok(())
    }

    fn exec(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
    ) -> Result<u64, StoreError> {
        self.tx
            .execute(sql, params)
            .map_err(StoreError::postgres(context))
    }

    fn opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
    ) -> Result<Option<Row>, StoreError> {
        self.tx
            .query_opt(sql, params)
            .map_err(StoreError::postgres(context))
    }

    fn one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
    ) -> Result<Row, StoreError> {
        self.tx
            .query_one(sql, params)
            .map_err(StoreError::postgres(context))
    }
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

impl Tx for PgTx<'_> {
    fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<MessageRecordId, StoreError> {
        if m.bytes.len() > super::large::IN_ONE {
            return super::large::insert(&mut self.tx, m, secs(m.received_at));
        }
        let row = self.one(
            "INSERT INTO messages (direction, message_id, envelope_from, received_at, size, body)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &m.direction.as_str(),
                &m.message_id.map(MessageId::as_str),
                &m.envelope_from.map(ToString::to_string),
                &secs(m.received_at),
                &len_i64(m.bytes.len()),
                &m.bytes,
            ],
            "storing a message",
        )?;
        Ok(MessageRecordId(col(&row, 0)?))
    }

    fn insert_message_tracking(
        &mut self,
        message: MessageRecordId,
        expect: Expectation,
        subject: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO message_tracking (message, expect, subject) VALUES ($1, $2, $3)",
            &[&message.0, &expect.as_str(), &subject],
            "storing what tracking expects of a message",
        )?;
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
             VALUES ($1, 'pending', $2, $3, $4)",
            &[&message.0, &secs(due), &now(), &millis(queued_at)],
            "queueing a message",
        )?;
        self.queued = true;
        Ok(())
    }

    fn insert_recipient(
        &mut self,
        message: MessageRecordId,
        address: &DirectAddress,
        queued_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // ON CONFLICT rather than catching the violation: a failed
        // statement ends a PostgreSQL transaction.
        let inserted = self.exec(
            "INSERT INTO recipients (message, address, state, queued_at)
             VALUES ($1, $2, 'queued', $3) ON CONFLICT (message, address_key) DO NOTHING",
            &[&message.0, &address.to_string(), &secs(queued_at)],
            "adding a recipient",
        )?;
        Ok(inserted > 0)
    }

    fn message_id_of(
        &mut self,
        message: MessageRecordId,
    ) -> Result<Option<Option<MessageId>>, StoreError> {
        self.opt(
            "SELECT message_id FROM messages WHERE id = $1",
            &[&message.0],
            "reading a message",
        )?
        .map(|r| message_id_opt(&r, 0))
        .transpose()
    }

    fn queue_mark(&mut self, mark: &str) -> Result<Option<MessageRecordId>, StoreError> {
        // Two instances queueing under one mark at once: the second waits
        // here for the first's commit and then finds its mark.
        self.lock_name(&format!("queued_once:{mark}"), "locking a queue mark")?;
        self.opt(
            "SELECT message FROM queued_once WHERE mark = $1",
            &[&mark],
            "reading a queue mark",
        )?
        .map(|r| col(&r, 0).map(MessageRecordId))
        .transpose()
    }

    fn insert_queue_mark(
        &mut self,
        mark: &str,
        message: MessageRecordId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO queued_once (mark, message, at) VALUES ($1, $2, $3)",
            &[&mark, &message.0, &secs(at)],
            "recording a queue mark",
        )?;
        Ok(())
    }

    fn due_candidates(
        &mut self,
        now_at: OffsetDateTime,
        count: usize,
        full: &[&Domain],
    ) -> Result<Vec<Candidate>, StoreError> {
        let full: Vec<String> = full.iter().map(|d| d.to_string()).collect();
        // SKIP LOCKED: rows another claim has locked are passed over, not
        // waited for; a row leased and committed meanwhile is re-checked
        // against the WHERE clause when locked, and left out.
        let rows = self
            .tx
            .query(
                "SELECT q.id, q.message, m.direction FROM queue q JOIN messages m ON m.id = q.message
                 WHERE q.state = 'pending' AND q.next_attempt_at <= $1
                   AND (q.lease_until IS NULL OR q.lease_until <= $1)
                   AND (cardinality($3::text[]) = 0 OR m.direction <> 'outbound' OR NOT EXISTS (
                        SELECT 1 FROM recipients r
                        WHERE r.message = q.message AND r.state = 'queued'
                          AND substr(r.address, strpos(r.address, '@') + 1) = ANY($3::text[])))
                 ORDER BY q.next_attempt_at, q.id LIMIT $2
                 FOR UPDATE OF q SKIP LOCKED",
                &[&secs(now_at), &len_i64(count), &full],
            )
            .map_err(StoreError::postgres("finding due messages"))?;
        rows.iter()
            .map(|r| {
                Ok(Candidate {
                    id: QueueItemId(col(r, 0)?),
                    message: MessageRecordId(col(r, 1)?),
                    direction: parsed(r, 2, "direction", MessageDirection::from_name)?,
                })
            })
            .collect()
    }

    fn queued_destinations(&mut self, message: MessageRecordId) -> Result<Vec<Domain>, StoreError> {
        let rows = self
            .tx
            .query(
                "SELECT DISTINCT substr(address, strpos(address, '@') + 1) FROM recipients
                 WHERE message = $1 AND state = 'queued'",
                &[&message.0],
            )
            .map_err(StoreError::postgres("reading destinations"))?;
        rows.iter()
            .map(|r| parsed(r, 0, "domain", |s| Domain::parse(s).ok()))
            .collect()
    }

    fn take_lease(
        &mut self,
        id: QueueItemId,
        lease: &Lease,
        now_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let instance = self.instance;
        self.exec(
            "UPDATE queue SET lease_owner = $6, lease_token = $2, lease_until = $3,
                              attempts = attempts + 1, updated_at = $4, last_attempt_ms = $5,
                              first_attempt_ms = coalesce(first_attempt_ms, $5)
             WHERE id = $1",
            &[
                &id.0,
                &lease.token,
                &secs(lease.until),
                &now(),
                &millis(now_at),
                &instance,
            ],
            "claiming a message",
        )?;
        Ok(())
    }

    fn queue_item(&mut self, id: QueueItemId) -> Result<QueueItem, StoreError> {
        let r = self.one(
            "SELECT q.id, q.message, m.direction, m.message_id, m.envelope_from,
                    CASE WHEN octet_length(m.body) <= $2 THEN m.body END,
                    m.received_at, q.attempts, q.last_error, q.lease_token, q.lease_until,
                    coalesce(t.expect, 'mail'), octet_length(m.body)
             FROM queue q JOIN messages m ON m.id = q.message
                  LEFT JOIN message_tracking t ON t.message = m.id
             WHERE q.id = $1",
            &[&id.0, &super::large::IN_ONE_I32],
            "reading a claimed message",
        )?;
        // A large message is read in pieces, never whole in a row as well.
        let bytes = match col::<Option<Vec<u8>>>(&r, 5)? {
            Some(bytes) => bytes,
            None => {
                let len = usize::try_from(col::<i32>(&r, 12)?).unwrap_or(0);
                super::large::read(&mut self.tx, col(&r, 1)?, len)?
            }
        };
        Ok(QueueItem {
            id: QueueItemId(col(&r, 0)?),
            message: MessageRecordId(col(&r, 1)?),
            direction: parsed(&r, 2, "direction", MessageDirection::from_name)?,
            message_id: message_id_opt(&r, 3)?,
            envelope_from: address_opt(&r, 4)?,
            expect: parsed(&r, 11, "expectation", Expectation::from_name)?,
            recipients: Vec::new(),
            bytes: std::sync::Arc::new(bytes),
            received_at: time_at(&r, 6)?,
            attempts: count_at(&r, 7)?,
            last_error: col(&r, 8)?,
            lease: Lease {
                token: col::<Option<String>>(&r, 9)?.unwrap_or_default(),
                until: time_opt(&r, 10)?.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            },
        })
    }

    fn extend_lease(
        &mut self,
        id: QueueItemId,
        token: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let changed = self.exec(
            "UPDATE queue SET lease_until = $3, updated_at = $4
             WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
            &[&id.0, &token, &secs(until), &now()],
            "renewing a lease",
        )?;
        Ok(changed > 0)
    }

    fn holds_lease(&mut self, id: QueueItemId, token: &str) -> Result<bool, StoreError> {
        // The row lock keeps a claim (which skips locked rows) from taking
        // the entry until this transaction ends.
        let rows = self
            .tx
            .query(
                "SELECT 1 FROM queue
                 WHERE id = $1 AND lease_token = $2 AND state = 'pending'
                 FOR UPDATE",
                &[&id.0, &token],
            )
            .map_err(StoreError::postgres("checking a lease"))?;
        Ok(!rows.is_empty())
    }

    fn clear_lease(&mut self, id: QueueItemId, token: &str) -> Result<bool, StoreError> {
        let changed = self.exec(
            "UPDATE queue SET lease_owner = NULL, lease_token = NULL, lease_until = NULL,
                              updated_at = $3
             WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
            &[&id.0, &token, &now()],
            "releasing a claimed message",
        )?;
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
        let changed = self.exec(
            "UPDATE queue SET state = $3, lease_owner = NULL, lease_token = NULL,
                              lease_until = NULL,
                              next_attempt_at = coalesce($4, next_attempt_at),
                              last_error = coalesce($5, last_error), updated_at = $6
             WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
            &[
                &id.0,
                &token,
                &state.as_str(),
                &next_attempt_at.map(secs),
                &error,
                &now(),
            ],
            "finishing a claimed message",
        )?;
        Ok(changed > 0)
    }

    fn queue_entry(&mut self, id: QueueItemId) -> Result<Option<EntryState>, StoreError> {
        let sql = format!(
            "SELECT id, state, next_attempt_at, message FROM queue WHERE id = $1{}",
            self.lock_clause(None)
        );
        self.opt(&sql, &[&id.0], "reading a queue entry")?
            .map(|r| entry_state(&r))
            .transpose()
    }

    fn pending_after(&mut self, at: OffsetDateTime) -> Result<Vec<EntryState>, StoreError> {
        let rows = self
            .tx
            .query(
                "SELECT id, state, next_attempt_at, message FROM queue
                 WHERE state = 'pending' AND next_attempt_at > $1 ORDER BY id",
                &[&secs(at)],
            )
            .map_err(StoreError::postgres("finding pending entries"))?;
        rows.iter().map(entry_state).collect()
    }

    fn make_due(&mut self, id: QueueItemId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.exec(
            "UPDATE queue SET next_attempt_at = least(next_attempt_at, $2), updated_at = $3
             WHERE id = $1",
            &[&id.0, &secs(at), &now()],
            "making a queue entry due",
        )?;
        Ok(())
    }

    fn recipient(&mut self, id: RecipientId) -> Result<Option<RecipientRecord>, StoreError> {
        let lock = self.lock_clause(Some("r"));
        Ok(recipients_where(
            &mut self.tx,
            &format!("r.id = $1 ORDER BY r.id{lock}"),
            &id.0,
        )?
        .pop())
    }

    fn recipients_of(
        &mut self,
        message: MessageRecordId,
    ) -> Result<Vec<RecipientRecord>, StoreError> {
        recipients_of(&mut self.tx, message)
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
            "UPDATE recipients SET state = $2, {}_at = $3, reason = coalesce($4, reason)
             WHERE id = $1 AND state = $5",
            to.as_str()
        );
        let changed = self.exec(
            &sql,
            &[&id.0, &to.as_str(), &secs(at), &reason, &from.as_str()],
            "moving a recipient",
        )?;
        Ok(changed > 0)
    }

    fn set_recipient_status(
        &mut self,
        id: RecipientId,
        status: Option<&DeliveryStatus>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recipients SET status = $2 WHERE id = $1",
            &[&id.0, &status.map(ToString::to_string)],
            "keeping a recipient's status",
        )?;
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
            "UPDATE recipients SET {}_at = $2 WHERE id = $1",
            step.as_str()
        );
        self.exec(&sql, &[&id.0, &secs(at)], "noting an overtaken step")?;
        Ok(())
    }

    fn mark_notified(&mut self, id: RecipientId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.exec(
            "UPDATE recipients SET notified_at = $2 WHERE id = $1",
            &[&id.0, &secs(at)],
            "marking a recipient notified",
        )?;
        Ok(())
    }

    fn is_local_address(&mut self, address: &DirectAddress) -> Result<bool, StoreError> {
        Ok(super::directory::address_id_opt(&mut self.tx, address)?.is_some())
    }

    fn insert_mailbox_entry(
        &mut self,
        e: &NewMailboxEntry<'_>,
    ) -> Result<MailboxEntryId, StoreError> {
        let summary = e.summary;
        let row = self.one(
            "INSERT INTO mailbox (address, folder, home, message_id, from_field, subject, date,
                                  size, received_at, body, unread)
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &e.address.to_string(),
                &e.folder.as_str(),
                &summary.message_id.as_ref().map(MessageId::as_str),
                &summary.from.as_deref(),
                &summary.subject.as_deref(),
                &summary.date.map(secs),
                &len_i64(e.bytes.len()),
                &secs(e.received_at),
                &e.bytes,
                &e.unread,
            ],
            "storing a message in a mailbox",
        )?;
        Ok(MailboxEntryId(col(&row, 0)?))
    }

    fn insert_mailbox_sender(
        &mut self,
        entry: MailboxEntryId,
        address: &DirectAddress,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO mailbox_senders (entry, address, name) VALUES ($1, $2, $3)",
            &[&entry.0, &address.to_string(), &name],
            "recording the sender of a mailbox message",
        )?;
        Ok(())
    }

    fn mailbox_has(
        &mut self,
        address: &DirectAddress,
        home: Folder,
        message_id: &MessageId,
    ) -> Result<bool, StoreError> {
        // No UNIQUE constraint can say "once" here (plain delivery may
        // file a Message-ID twice), so the look-up and the insert after it
        // hold a lock on (address, Message-ID) until the commit.
        self.lock_name(
            &format!("mailbox:{}:{}", key(address), message_id.as_str()),
            "locking a mailbox for filing once",
        )?;
        Ok(self
            .opt(
                "SELECT 1 FROM mailbox WHERE message_id = $1 AND address_key = $2 AND home = $3
                 LIMIT 1",
                &[&message_id.as_str(), &key(address), &home.as_str()],
                "looking for a copy already filed",
            )?
            .is_some())
    }

    fn inbox_copy(
        &mut self,
        address: &DirectAddress,
        message_id: &MessageId,
        from: Option<&str>,
    ) -> Result<Option<MailboxEntryId>, StoreError> {
        self.lock_name(
            &format!("mailbox:{}:{}", key(address), message_id.as_str()),
            "locking a mailbox for filing once",
        )?;
        self.opt(
            "SELECT id FROM mailbox
             WHERE message_id = $1 AND address_key = $2 AND home = 'inbox'
               AND from_field IS NOT DISTINCT FROM $3
             ORDER BY id LIMIT 1",
            &[&message_id.as_str(), &key(address), &from],
            "looking for an earlier copy in the mailbox",
        )?
        .map(|r| col(&r, 0).map(MailboxEntryId))
        .transpose()
    }

    fn mailbox_entry(&mut self, id: MailboxEntryId) -> Result<Option<MailboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {} FROM mailbox WHERE id = $1{}",
            mailbox::ENTRY_COLUMNS,
            self.lock_clause(None)
        );
        self.opt(&sql, &[&id.0], "reading a mailbox message")?
            .map(|r| mailbox::entry_row(&r))
            .transpose()
    }

    fn owned_entry(
        &mut self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        cutoff: OffsetDateTime,
    ) -> Result<Option<MailboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {} FROM mailbox WHERE id = $1 AND address_key = $2 AND received_at > $3{}",
            mailbox::ENTRY_COLUMNS,
            self.lock_clause(None)
        );
        self.opt(
            &sql,
            &[&id.0, &key(owner), &secs(cutoff)],
            "reading a mailbox message",
        )?
        .map(|r| mailbox::entry_row(&r))
        .transpose()
    }

    fn mailbox_home(&mut self, id: MailboxEntryId) -> Result<Folder, StoreError> {
        let r = self.one(
            "SELECT home FROM mailbox WHERE id = $1",
            &[&id.0],
            "reading a mailbox message",
        )?;
        parsed(&r, 0, "folder", |s| s.parse().ok())
    }

    fn mailbox_body(&mut self, id: MailboxEntryId) -> Result<Vec<u8>, StoreError> {
        let r = self.one(
            "SELECT body FROM mailbox WHERE id = $1",
            &[&id.0],
            "reading a mailbox message",
        )?;
        col(&r, 0)
    }

    fn mark_entry_read(&mut self, id: MailboxEntryId) -> Result<(), StoreError> {
        self.exec(
            "UPDATE mailbox SET unread = false WHERE id = $1",
            &[&id.0],
            "marking a message read",
        )?;
        Ok(())
    }

    fn set_entry_folder(&mut self, id: MailboxEntryId, folder: Folder) -> Result<(), StoreError> {
        self.exec(
            "UPDATE mailbox SET folder = $2 WHERE id = $1",
            &[&id.0, &folder.as_str()],
            "moving a mailbox message",
        )?;
        Ok(())
    }

    fn portal_user(&mut self, address: &DirectAddress) -> Result<Option<PortalUser>, StoreError> {
        let lock = self.lock_clause(Some("p"));
        accounts::find_portal_user(&mut self.tx, address, &lock)
    }

    fn insert_portal_user(
        &mut self,
        address: &DirectAddress,
        password_hash: &str,
        settings: &NotifySettings,
        at: OffsetDateTime,
    ) -> Result<PortalUserInsert, StoreError> {
        let Some(address_id) = super::directory::address_id_opt(&mut self.tx, address)? else {
            return Ok(PortalUserInsert::NoSuchAddress);
        };
        let inserted = self.exec(
            "INSERT INTO portal_users (address_id, password_hash, email, notify, added_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address_id) DO NOTHING",
            &[
                &address_id,
                &password_hash,
                &settings.email.as_ref().map(EmailAddress::as_string),
                &settings.notify,
                &secs(at),
            ],
            "adding a portal user",
        )?;
        Ok(if inserted > 0 {
            PortalUserInsert::Added
        } else {
            PortalUserInsert::Duplicate
        })
    }

    fn set_portal_password(
        &mut self,
        id: PortalUserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE portal_users SET password_hash = $2 WHERE id = $1",
            &[&id.0, &password_hash],
            "changing a portal password",
        )?;
        Ok(())
    }

    fn disable_portal_user(
        &mut self,
        id: PortalUserId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE portal_users SET disabled_at = $2 WHERE id = $1",
            &[&id.0, &secs(at)],
            "disabling a portal user",
        )?;
        Ok(())
    }

    fn set_portal_settings(
        &mut self,
        id: PortalUserId,
        settings: &NotifySettings,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE portal_users SET notify = $2, email = $3 WHERE id = $1",
            &[
                &id.0,
                &settings.notify,
                &settings.email.as_ref().map(EmailAddress::as_string),
            ],
            "changing portal settings",
        )?;
        Ok(())
    }

    fn insert_portal_notice(
        &mut self,
        notice: MessageRecordId,
        owner: &DirectAddress,
        about: MessageRecordId,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO portal_notices (message, owner, about) VALUES ($1, $2, $3)",
            &[&notice.0, &owner.to_string(), &about.0],
            "noting whom a notice is about",
        )?;
        Ok(())
    }

    fn portal_notice_owner(
        &mut self,
        notice: MessageRecordId,
    ) -> Result<Option<DirectAddress>, StoreError> {
        self.opt(
            "SELECT owner FROM portal_notices WHERE message = $1",
            &[&notice.0],
            "reading whom a notice is about",
        )?
        .map(|r| parsed(&r, 0, "address", |s| DirectAddress::parse(s).ok()))
        .transpose()
    }

    fn insert_quarantine(
        &mut self,
        entry: &NewQuarantine<'_>,
        message_id: Option<&MessageId>,
        bytes: &[u8],
    ) -> Result<QuarantineId, StoreError> {
        let row = self.one(
            "INSERT INTO quarantine (message_id, envelope_from, recipients, received_at, reason,
                                     detail, size, quarantined_at, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &message_id.map(MessageId::as_str),
                &entry.envelope.from.as_ref().map(ToString::to_string),
                &recipient_lines(entry),
                &secs(entry.envelope.received_at),
                &entry.reason.as_str(),
                &entry.detail,
                &len_i64(bytes.len()),
                &secs(entry.at),
                &bytes,
            ],
            "quarantining a message",
        )?;
        Ok(QuarantineId(col(&row, 0)?))
    }

    fn insert_quarantine_of_queued(
        &mut self,
        message: MessageRecordId,
        entry: &NewQuarantine<'_>,
    ) -> Result<Option<(QuarantineId, Option<MessageId>)>, StoreError> {
        let row = self.opt(
            "INSERT INTO quarantine (message_id, envelope_from, recipients, received_at,
                                     reason, detail, size, quarantined_at, message)
             SELECT message_id, $2, $3, $4, $5, $6, size, $7, id FROM messages WHERE id = $1
             RETURNING id, message_id",
            &[
                &message.0,
                &entry.envelope.from.as_ref().map(ToString::to_string),
                &recipient_lines(entry),
                &secs(entry.envelope.received_at),
                &entry.reason.as_str(),
                &entry.detail,
                &secs(entry.at),
            ],
            "quarantining a message",
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let message_id: Option<&str> = col(&row, 1)?;
        Ok(Some((
            QuarantineId(col(&row, 0)?),
            message_id.and_then(|m| MessageId::parse(m).ok()),
        )))
    }

    fn last_audit_event(&mut self) -> Result<Option<LastAuditEvent>, StoreError> {
        // Held to the end of the transaction: the next appender waits here
        // until this one's event is committed, then reads it as the newest
        // (at READ COMMITTED the next statement sees that commit).
        self.exec(
            "SELECT pg_advisory_xact_lock($1)",
            &[&AUDIT_LOCK],
            "waiting for the audit chain",
        )?;
        self.opt(
            "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1",
            &[],
            "reading the last audit event",
        )?
        .map(|r| {
            Ok(LastAuditEvent {
                id: col(&r, 0)?,
                hash: col(&r, 1)?,
            })
        })
        .transpose()
    }

    fn insert_audit_event(&mut self, e: &AuditRow<'_>, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO audit_events (id, at, kind, message_id, message, address, detail, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &e.id,
                &secs(e.at),
                &e.kind.as_str(),
                &e.message_id.map(MessageId::as_str),
                &e.message.map(|m| m.0),
                &e.address,
                &e.detail,
                &&hash[..],
            ],
            "writing an audit event",
        )?;
        Ok(())
    }
}

/// A queue row read as [`EntryState`].
fn entry_state(r: &Row) -> Result<EntryState, StoreError> {
    Ok(EntryState {
        id: QueueItemId(col(r, 0)?),
        state: parsed(r, 1, "queue state", QueueState::from_name)?,
        next_attempt_at: time_at(r, 2)?,
        message: MessageRecordId(col(r, 3)?),
    })
}
