//! The transaction seam: the primitive statements the store's composite
//! operations ([`crate::ops`]) are written over, once, for every backend.
//!
//! A backend implements [`Tx`] on its open transaction and calls the
//! operations in `ops` from its [`Store`](crate::Store) methods, inside one
//! transaction per call. Each method is one statement or one small query; it
//! decides nothing: state moves, which audit events to write, what an
//! idempotent repeat returns, caps per destination and every error a caller
//! sees (but a failure of the database itself) are decided in `ops`. What
//! differs between databases stays behind the methods: how a new row's id
//! comes back (`last_insert_rowid` or `RETURNING`), how claims skip rows
//! another claimer holds (SQLite's one writer, PostgreSQL's
//! `FOR UPDATE SKIP LOCKED`), how addresses are compared without regard to
//! letter case (`COLLATE NOCASE` or a lower-cased key column), how bytes
//! and times are stored.
//!
//! Times come in and go out as [`OffsetDateTime`] in whole seconds, but for
//! the queue's millisecond bookkeeping; a backend stores them as it likes.
//! A failure of the database is [`StoreError::Database`] with what the
//! statement was doing; any other error is the caller's to make.

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::expect::Expectation;
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId};
use crate::message::{Envelope, HeaderSummary, MessageDirection, MessageId, MessageRecordId};
use crate::portal_user::{NotifySettings, PortalUser, PortalUserId};
use crate::quarantine::{QuarantineId, QuarantineReason};
use crate::queue::{Lease, QueueItem, QueueItemId, QueueState};
use crate::tracking::{DeliveryStatus, RecipientId, RecipientRecord, TrackingState};
use hisp_address::{DirectAddress, Domain};

/// A message row to insert: the queue's copy of a message.
#[derive(Debug)]
pub(crate) struct NewMessage<'a> {
    /// Which way it travels.
    pub direction: MessageDirection,
    /// Its Message-ID, read from the header.
    pub message_id: Option<&'a MessageId>,
    /// MAIL FROM; `None` for the null reverse-path.
    pub envelope_from: Option<&'a DirectAddress>,
    /// When it was received (whole seconds).
    pub received_at: OffsetDateTime,
    /// The message as received; its length is the stored size.
    pub bytes: &'a [u8],
}

/// A due queue entry a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The queue entry.
    pub id: QueueItemId,
    /// Its message.
    pub message: MessageRecordId,
    /// Which way the message travels.
    pub direction: MessageDirection,
}

/// A queue entry as [`Tx::queue_entry`] reads it, for making it due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryState {
    /// The queue entry.
    pub id: QueueItemId,
    /// Pending, done or failed.
    pub state: QueueState,
    /// When it is next due.
    pub next_attempt_at: OffsetDateTime,
    /// Its message.
    pub message: MessageRecordId,
}

/// A mailbox entry to insert.
#[derive(Debug)]
pub(crate) struct NewMailboxEntry<'a> {
    /// The owner: a local address.
    pub address: &'a DirectAddress,
    /// Inbox or Sent: the folder it is filed in and its home.
    pub folder: Folder,
    /// What the header says, for listings.
    pub summary: &'a HeaderSummary,
    /// When it was filed (whole seconds).
    pub received_at: OffsetDateTime,
    /// Whether it is new to its owner.
    pub unread: bool,
    /// The message; its length is the stored size.
    pub bytes: &'a [u8],
}

/// A quarantine entry to insert.
#[derive(Debug)]
pub(crate) struct NewQuarantine<'a> {
    /// Why.
    pub reason: QuarantineReason,
    /// What exactly failed.
    pub detail: &'a str,
    /// The envelope it came with.
    pub envelope: &'a Envelope,
    /// When it was quarantined (whole seconds).
    pub at: OffsetDateTime,
}

/// One audit event to append, with the columns its hash covers
/// ([`crate::ops::audit`] hashes them in this order).
#[derive(Debug)]
pub(crate) struct AuditRow<'a> {
    /// The event's number: one more than the newest event's.
    pub id: i64,
    /// When it was written (whole seconds).
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: crate::audit::AuditKind,
    /// The Message-ID concerned.
    pub message_id: Option<&'a MessageId>,
    /// The queued message concerned.
    pub message: Option<MessageRecordId>,
    /// The local address concerned, as written (`DirectAddress`'s display).
    pub address: Option<&'a str>,
    /// What exactly happened.
    pub detail: &'a str,
}

/// What inserting a portal account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortalUserInsert {
    /// The account was added.
    Added,
    /// Nothing: the address is not local.
    NoSuchAddress,
    /// Nothing: the address has an account already.
    Duplicate,
}

/// The newest audit event, as the next one chains to it.
#[derive(Debug)]
pub(crate) struct LastAuditEvent {
    /// Its number.
    pub id: i64,
    /// Its stored hash (`None`, or of another length, only in a database
    /// damaged by hand).
    pub hash: Option<Vec<u8>>,
}

/// The primitive statements of one open transaction of a backend. See the
/// module's documentation for what a method may and may not decide.
pub(crate) trait Tx {
    // --- messages and the queue ---

    /// Inserts a message row and returns its id.
    fn insert_message(&mut self, message: &NewMessage<'_>) -> Result<MessageRecordId, StoreError>;

    /// Inserts what tracking expects of a message, and its Subject.
    fn insert_message_tracking(
        &mut self,
        message: MessageRecordId,
        expect: Expectation,
        subject: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Inserts a pending queue entry for a message, due at `due`, queued at
    /// `queued_at` (kept to the millisecond).
    fn insert_queue_entry(
        &mut self,
        message: MessageRecordId,
        due: OffsetDateTime,
        queued_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Inserts a recipient of a message, state queued. `false` (nothing
    /// inserted) when the message has that recipient already, letter case
    /// of the local part aside.
    fn insert_recipient(
        &mut self,
        message: MessageRecordId,
        address: &DirectAddress,
        queued_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The Message-ID of a message row: `None` when there is no such row,
    /// `Some(None)` when the message has no Message-ID.
    fn message_id_of(
        &mut self,
        message: MessageRecordId,
    ) -> Result<Option<Option<MessageId>>, StoreError>;

    /// The message recorded under a queue mark, if any.
    fn queue_mark(&mut self, mark: &str) -> Result<Option<MessageRecordId>, StoreError>;

    /// Records a queue mark for a message.
    fn insert_queue_mark(
        &mut self,
        mark: &str,
        message: MessageRecordId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Up to `count` pending entries due at `now` whose lease (if any) has
    /// ended, in queue order (next attempt, then id), leaving out outbound
    /// entries with a recipient still queued for one of the `full`
    /// domains; none of them may be taken by another claim before this
    /// transaction ends.
    fn due_candidates(
        &mut self,
        now: OffsetDateTime,
        count: usize,
        full: &[&Domain],
    ) -> Result<Vec<Candidate>, StoreError>;

    /// The domains of a message's recipients still queued (in any order,
    /// perhaps repeated).
    fn queued_destinations(&mut self, message: MessageRecordId) -> Result<Vec<Domain>, StoreError>;

    /// Writes `lease` on an entry claimed at `now`, counting the attempt
    /// and its time (the first attempt's kept).
    fn take_lease(
        &mut self,
        id: QueueItemId,
        lease: &Lease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// A queue entry with its message, bytes included and recipients left
    /// empty.
    fn queue_item(&mut self, id: QueueItemId) -> Result<QueueItem, StoreError>;

    /// Moves the end of a lease to `until` if the entry is pending under
    /// `token`; whether it did.
    fn extend_lease(
        &mut self,
        id: QueueItemId,
        token: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Ends a lease if the entry is pending under `token`; whether it did.
    fn clear_lease(&mut self, id: QueueItemId, token: &str) -> Result<bool, StoreError>;

    /// Whether the entry is pending under `token`, keeping it so until the
    /// transaction ends (no claim may take it meanwhile).
    fn holds_lease(&mut self, id: QueueItemId, token: &str) -> Result<bool, StoreError>;

    /// Ends a lease with `state` if the entry is pending under `token`,
    /// setting the next attempt and the error when given; whether it did.
    fn finish_entry(
        &mut self,
        id: QueueItemId,
        token: &str,
        state: QueueState,
        next_attempt_at: Option<OffsetDateTime>,
        error: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// One queue entry's state, if there is such an entry.
    fn queue_entry(&mut self, id: QueueItemId) -> Result<Option<EntryState>, StoreError>;

    /// The pending entries due after `at`, by id.
    fn pending_after(&mut self, at: OffsetDateTime) -> Result<Vec<EntryState>, StoreError>;

    /// Makes an entry due at `at` unless it is due earlier.
    fn make_due(&mut self, id: QueueItemId, at: OffsetDateTime) -> Result<(), StoreError>;

    // --- recipients and their tracking ---

    /// One recipient with its tracking, if there is such a row.
    fn recipient(&mut self, id: RecipientId) -> Result<Option<RecipientRecord>, StoreError>;

    /// The recipients of a message, by id.
    fn recipients_of(
        &mut self,
        message: MessageRecordId,
    ) -> Result<Vec<RecipientRecord>, StoreError>;

    /// Moves a recipient from `from` to `to`, writing the time `to` was
    /// reached and `reason` (when given), if it is still in `from`; whether
    /// it moved.
    fn move_recipient(
        &mut self,
        id: RecipientId,
        from: TrackingState,
        to: TrackingState,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Keeps (or clears) the RFC 3463 status of a recipient's failure.
    fn set_recipient_status(
        &mut self,
        id: RecipientId,
        status: Option<&DeliveryStatus>,
    ) -> Result<(), StoreError>;

    /// Writes the time a recipient reached `step`, leaving its state.
    fn set_step_time(
        &mut self,
        id: RecipientId,
        step: TrackingState,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Marks a recipient's sender told of its failure at `at`.
    fn mark_notified(&mut self, id: RecipientId, at: OffsetDateTime) -> Result<(), StoreError>;

    // --- mailboxes ---

    /// Whether an address is a local address (letter case of the local
    /// part aside).
    fn is_local_address(&mut self, address: &DirectAddress) -> Result<bool, StoreError>;

    /// Inserts a mailbox entry and returns its id.
    fn insert_mailbox_entry(
        &mut self,
        entry: &NewMailboxEntry<'_>,
    ) -> Result<MailboxEntryId, StoreError>;

    /// Notes who sent an Inbox entry: their Direct address and display name.
    fn insert_mailbox_sender(
        &mut self,
        entry: MailboxEntryId,
        address: &DirectAddress,
        name: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Whether a message with `message_id` was filed with `home` as its
    /// home folder in `address`'s mailbox (wherever it is now).
    fn mailbox_has(
        &mut self,
        address: &DirectAddress,
        home: Folder,
        message_id: &MessageId,
    ) -> Result<bool, StoreError>;

    /// The oldest entry filed in `address`'s Inbox (wherever it is now)
    /// with `message_id` and this From field (`None` matching none).
    fn inbox_copy(
        &mut self,
        address: &DirectAddress,
        message_id: &MessageId,
        from: Option<&str>,
    ) -> Result<Option<MailboxEntryId>, StoreError>;

    /// One mailbox entry, if there is one.
    fn mailbox_entry(&mut self, id: MailboxEntryId) -> Result<Option<MailboxEntry>, StoreError>;

    /// One entry of `owner`'s mailbox received after `cutoff`, if there is
    /// one.
    fn owned_entry(
        &mut self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        cutoff: OffsetDateTime,
    ) -> Result<Option<MailboxEntry>, StoreError>;

    /// The folder an existing entry was filed in.
    fn mailbox_home(&mut self, id: MailboxEntryId) -> Result<Folder, StoreError>;

    /// The bytes of an existing entry.
    fn mailbox_body(&mut self, id: MailboxEntryId) -> Result<Vec<u8>, StoreError>;

    /// Marks an entry read.
    fn mark_entry_read(&mut self, id: MailboxEntryId) -> Result<(), StoreError>;

    /// Puts an entry in `folder`.
    fn set_entry_folder(&mut self, id: MailboxEntryId, folder: Folder) -> Result<(), StoreError>;

    // --- portal accounts and notices ---

    /// The portal account of an address, if it has one.
    fn portal_user(&mut self, address: &DirectAddress) -> Result<Option<PortalUser>, StoreError>;

    /// Adds an enabled portal account to a local address, added at `at`.
    fn insert_portal_user(
        &mut self,
        address: &DirectAddress,
        password_hash: &str,
        settings: &NotifySettings,
        at: OffsetDateTime,
    ) -> Result<PortalUserInsert, StoreError>;

    /// Replaces a portal account's password hash.
    fn set_portal_password(
        &mut self,
        id: PortalUserId,
        password_hash: &str,
    ) -> Result<(), StoreError>;

    /// Disables a portal account as of `at`.
    fn disable_portal_user(
        &mut self,
        id: PortalUserId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Replaces a portal account's notification settings.
    fn set_portal_settings(
        &mut self,
        id: PortalUserId,
        settings: &NotifySettings,
    ) -> Result<(), StoreError>;

    /// Notes that the queued `notice` tells `owner` of the message `about`.
    fn insert_portal_notice(
        &mut self,
        notice: MessageRecordId,
        owner: &DirectAddress,
        about: MessageRecordId,
    ) -> Result<(), StoreError>;

    /// Whom a queued notice is about, if it is one.
    fn portal_notice_owner(
        &mut self,
        notice: MessageRecordId,
    ) -> Result<Option<DirectAddress>, StoreError>;

    // --- quarantine ---

    /// Inserts a quarantine entry holding its own copy of `bytes` (whose
    /// Message-ID is `message_id`) and returns its id.
    fn insert_quarantine(
        &mut self,
        entry: &NewQuarantine<'_>,
        message_id: Option<&MessageId>,
        bytes: &[u8],
    ) -> Result<QuarantineId, StoreError>;

    /// Inserts a quarantine entry referring to a queued message (its bytes
    /// not copied) and returns its id and the message's Message-ID; `None`
    /// when there is no such message.
    fn insert_quarantine_of_queued(
        &mut self,
        message: MessageRecordId,
        entry: &NewQuarantine<'_>,
    ) -> Result<Option<(QuarantineId, Option<MessageId>)>, StoreError>;

    // --- the audit chain ---

    /// The id and stored hash of the newest audit event, if there is one.
    /// Appenders are serialised from here to the end of the transaction
    /// (SQLite: its write lock, taken when the transaction began;
    /// PostgreSQL: a transaction-level advisory lock taken here), so the
    /// newest event stays the newest until this one is inserted.
    fn last_audit_event(&mut self) -> Result<Option<LastAuditEvent>, StoreError>;

    /// Inserts an audit event with its hash.
    fn insert_audit_event(
        &mut self,
        event: &AuditRow<'_>,
        hash: &[u8; 32],
    ) -> Result<(), StoreError>;
}
