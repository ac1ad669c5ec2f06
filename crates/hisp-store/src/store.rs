//! The `Store` trait: everything hisp keeps, behind one interface, so the
//! embedded SQLite store and a shared database can be swapped.

use std::time::Duration;

use time::OffsetDateTime;

use crate::anchor::{AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::audit::{AuditCheck, AuditEvent, AuditFilter, AuditKind};
use crate::bundle::{BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle};
use crate::cert::NewCertificate;
use crate::directory::{AddressRecord, CertificateRecord, DomainRecord, Owner};
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::filing::{Answer, Filing, NewMailNotice};
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
use crate::mailbox_view::{Correspondent, FolderCount, MailboxView};
use crate::message::{Envelope, MessageDirection, MessageId, MessageRecordId};
use crate::portal_user::{NotifySettings, PortalUser};
use crate::quarantine::{QuarantineId, QuarantineReason, QuarantineRecord, QuarantinedMessage};
use crate::queue::{
    ClaimLimits, Held, QueueBell, QueueEntry, QueueItem, QueueItemId, QueueState, RetrySelection,
};
use crate::tracking::{
    DeliveryStatus, RecipientId, RecipientRecord, TrackFilter, TrackedMessage, TrackingState,
};
use crate::user::{Account, Grant, UserName};
use crate::version::DirectoryVersion;
use hisp_address::DirectAddress;
use hisp_address::Domain;

/// What every store promises:
///
/// - Every call reads or writes the database itself; nothing is cached, so a
///   change made by one process (`hisp anchor remove`) is seen by every other
///   process (a running `hisp serve`) on its next call.
/// - A call that changes several rows changes all of them or none.
/// - Lists come back in a stable order (by name, then by when added).
///
/// Removal rules: removing a domain is refused while it has addresses
/// ([`StoreError::InUse`]); its anchors, bundles, domain certificates and
/// domain grants go with it. Removing an address removes its certificates,
/// keys, grants and portal account, but not its mail.
///
/// Every change of a message's state (queued, deferred, completed, failed,
/// tracked, delivered to a mailbox, moved, read, quarantined, a sender
/// notified) writes one audit event in the same transaction as the change;
/// a call that changes nothing writes none.
///
/// Delivery notification (Implementation Guide for Delivery Notification in
/// Direct 1.0): each outbound message carries an [`Expectation`]. Ordinary
/// mail waits for MDNs and is failed by the MDN timeout
/// ([`overdue`](Store::overdue)); each failed recipient of it gets exactly
/// one final notice to its sender ([`unnotified_failures`](Store::unnotified_failures),
/// [`notify_sender`](Store::notify_sender)). Notifications (the MDNs and
/// DSNs hisp sends) never time out and never cause a notice.
pub trait Store: Send + Sync {
    /// Adds a local domain with its domain-bound certificates (each must carry
    /// a subjectAltName dNSName equal to the domain).
    fn add_domain(
        &self,
        domain: &Domain,
        certificates: &[NewCertificate],
    ) -> Result<DomainRecord, StoreError>;

    /// One local domain; [`StoreError::NotFound`] if it is not local.
    fn domain(&self, domain: &Domain) -> Result<DomainRecord, StoreError>;

    /// Every local domain, by name.
    fn domains(&self) -> Result<Vec<DomainRecord>, StoreError>;

    /// Removes a local domain with its anchors, bundles and domain
    /// certificates; refused while it has addresses.
    fn remove_domain(&self, domain: &Domain) -> Result<(), StoreError>;

    /// Adds a local address, whose domain must be local, with its
    /// address-bound certificates (each must carry a subjectAltName
    /// rfc822Name equal to the address). An address differing from an
    /// existing one only in the letter case of its local part is a duplicate.
    fn add_address(
        &self,
        address: &DirectAddress,
        certificates: &[NewCertificate],
    ) -> Result<AddressRecord, StoreError>;

    /// One local address, found without regard to letter case; the record
    /// holds the local part as first added.
    fn address(&self, address: &DirectAddress) -> Result<AddressRecord, StoreError>;

    /// Local addresses (of one domain, or all), by domain then local part.
    fn addresses(&self, domain: Option<&Domain>) -> Result<Vec<AddressRecord>, StoreError>;

    /// Removes a local address and its certificates.
    fn remove_address(&self, address: &DirectAddress) -> Result<(), StoreError>;

    /// Adds a certificate to an existing local address or domain.
    fn add_certificate(
        &self,
        owner: &Owner,
        certificate: &NewCertificate,
    ) -> Result<CertificateRecord, StoreError>;

    /// The certificates of one owner (with private keys), or of every owner
    /// when `None`, oldest first within an owner.
    fn certificates(&self, owner: Option<&Owner>) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Adds anchors to a local domain, all or none: a certificate already
    /// anchored for the domain (same fingerprint) is a duplicate.
    fn add_anchors(
        &self,
        domain: &Domain,
        direction: Direction,
        anchors: &[NewAnchor],
    ) -> Result<Vec<AnchorRecord>, StoreError>;

    /// Anchors of one domain or all, by domain then when added.
    fn anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>, StoreError>;

    /// The anchors a domain trusts for mail flowing `flow` (those marked for
    /// that direction or both), read afresh on every call.
    fn anchors_for(&self, domain: &Domain, flow: Flow) -> Result<Vec<AnchorRecord>, StoreError>;

    /// Removes one anchor of a domain and returns it. A serial matching
    /// several anchors is [`StoreError::Ambiguous`].
    fn remove_anchor(
        &self,
        domain: &Domain,
        selector: &AnchorSelector,
    ) -> Result<AnchorRecord, StoreError>;

    /// Attaches a bundle to a local domain; the same source twice on one
    /// domain is a duplicate.
    fn add_bundle(&self, bundle: &NewBundle) -> Result<BundleRecord, StoreError>;

    /// Bundles of one domain or all, by domain then when added.
    fn bundles(&self, domain: Option<&Domain>) -> Result<Vec<BundleRecord>, StoreError>;

    /// Detaches a bundle from a domain.
    fn remove_bundle(&self, domain: &Domain, source: &BundleSource) -> Result<(), StoreError>;

    /// Records the outcome of a fetch: a good fetch replaces the last good
    /// copy and clears the error; a failed one keeps the last good copy.
    fn record_bundle_fetch(&self, id: BundleId, fetch: &BundleFetch) -> Result<(), StoreError>;

    /// Adds a submission account with an Argon2id hash of `password` (at
    /// least [`MIN_PASSWORD_LEN`](crate::MIN_PASSWORD_LEN) characters). New
    /// accounts request final delivery notification and may send as nobody
    /// until granted.
    fn add_user(&self, name: &UserName, password: &str) -> Result<Account, StoreError>;

    /// Checks a login. An unknown name and a wrong password both give
    /// [`StoreError::BadCredentials`] after the same work, and the hash
    /// comparison is constant-time.
    fn verify_password(&self, name: &UserName, password: &str) -> Result<Account, StoreError>;

    /// One account, with its grants.
    fn user(&self, name: &UserName) -> Result<Account, StoreError>;

    /// Every account, by name.
    fn users(&self) -> Result<Vec<Account>, StoreError>;

    /// Lets an account send as a local address or as any address of a local
    /// domain; the same grant twice is a duplicate.
    fn grant(&self, name: &UserName, grant: &Grant) -> Result<Account, StoreError>;

    /// Sets whether mail the account submits requests final delivery
    /// notification.
    fn set_request_final_delivery(&self, name: &UserName, on: bool) -> Result<Account, StoreError>;

    /// Commits a message, its envelope and one tracking row per recipient
    /// (state queued) in one transaction, durable when this returns (WAL,
    /// `synchronous=FULL`): call it before replying 250. The Message-ID is
    /// read from the header. The entry is due at `received_at`. No
    /// recipients, or one twice, is refused and leaves nothing behind.
    ///
    /// Outbound mail queued this way expects MDNs without final delivery
    /// ([`Expectation::default`]); it is
    /// [`enqueue_expecting`](Store::enqueue_expecting) with that.
    fn enqueue(
        &self,
        direction: MessageDirection,
        envelope_from: Option<&DirectAddress>,
        recipients: &[DirectAddress],
        bytes: &[u8],
        received_at: OffsetDateTime,
    ) -> Result<MessageRecordId, StoreError> {
        self.enqueue_expecting(
            direction,
            envelope_from,
            recipients,
            bytes,
            received_at,
            Expectation::default(),
        )
    }

    /// [`enqueue`](Store::enqueue), keeping what tracking expects of the
    /// message (read back on [`QueueItem::expect`], [`RecipientRecord::expect`]
    /// and [`TrackedMessage::expect`]) and its Subject for listings, in the
    /// same transaction. For inbound messages the expectation means nothing
    /// and is only kept.
    fn enqueue_expecting(
        &self,
        direction: MessageDirection,
        envelope_from: Option<&DirectAddress>,
        recipients: &[DirectAddress],
        bytes: &[u8],
        received_at: OffsetDateTime,
        expect: Expectation,
    ) -> Result<MessageRecordId, StoreError>;

    /// [`enqueue_expecting`](Store::enqueue_expecting) at most once under
    /// `mark` (a name the caller chooses, such as `"demo-welcome"`): the
    /// message is queued and the mark recorded in one transaction, so work
    /// that must happen once (the demo's welcome message) happens once
    /// however often it is interrupted and started again. When the mark is
    /// recorded already nothing is written and the answer is `Ok(None)`.
    /// An empty mark is [`StoreError::Invalid`].
    #[allow(clippy::too_many_arguments)]
    fn enqueue_once(
        &self,
        mark: &str,
        direction: MessageDirection,
        envelope_from: Option<&DirectAddress>,
        recipients: &[DirectAddress],
        bytes: &[u8],
        received_at: OffsetDateTime,
        expect: Expectation,
    ) -> Result<Option<MessageRecordId>, StoreError>;

    /// The message queued under `mark` by
    /// [`enqueue_once`](Store::enqueue_once), if any.
    fn queued_once(&self, mark: &str) -> Result<Option<MessageRecordId>, StoreError>;

    /// Claims up to `limit` entries due at `now` for `lease`: until the
    /// lease ends no other claimer (thread or process) sees them. A worker
    /// that dies lets the lease run out and the entry is claimed again.
    fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Ends every running lease, so the entries a dead worker held are
    /// claimable at once instead of when their leases run out; returns how
    /// many. Only for a serving process that knows no other worker uses the
    /// store (`hisp serve` on its SQLite file, at start). A store shared by
    /// several instances (PostgreSQL) ends only the leases of the instance
    /// it was opened for, so an instance starting again frees what its last
    /// run held and never a live instance's work.
    fn release_leases(&self) -> Result<usize, StoreError>;

    /// [`claim_due`](Store::claim_due) within `limits`: at most
    /// [`ClaimLimits::limit`] entries, in queue order, leaving out every entry
    /// with a [destination](QueueItem::destinations) that would then have
    /// more than [`ClaimLimits::per_destination`] entries in hand (those in
    /// [`ClaimLimits::in_hand`] and those this claim takes). An entry left
    /// out stays due for a later claim, so one destination's entries never
    /// keep another's from being claimed.
    fn claim_due_within(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limits: &ClaimLimits,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Extends the caller's claim on `item` to `now + lease` (whole seconds,
    /// rounded up) and returns the new end, so that an attempt that takes
    /// long keeps its entry. [`StoreError::LeaseLost`] if the caller no
    /// longer holds it.
    fn renew_lease(
        &self,
        item: &QueueItem,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<OffsetDateTime, StoreError>;

    /// Gives a claimed entry back unfinished (a worker stopping before its
    /// attempt ended): the lease ends, the entry is due again as it was, and
    /// an [`AuditKind::Released`] event is written. [`StoreError::LeaseLost`]
    /// if the caller no longer holds it.
    fn release(&self, item: &QueueItem) -> Result<(), StoreError>;

    /// Makes pending entries due at `at` (an administrator's `hisp queue
    /// retry`), each with an [`AuditKind::RetryRequested`] event; returns
    /// those changed. [`RetrySelection::All`] takes every pending entry not
    /// yet due; [`RetrySelection::One`] names one, which must exist
    /// ([`StoreError::NotFound`]) and be pending ([`StoreError::Invalid`]
    /// when done or failed). An entry a worker holds keeps its claim: its
    /// attempt under way decides what happens next.
    fn retry_now(
        &self,
        selection: RetrySelection,
        at: OffsetDateTime,
    ) -> Result<Vec<QueueItemId>, StoreError>;

    /// When the first pending entry is next due (its next attempt, or the
    /// end of a lease holding it if later); `None` when nothing is pending.
    fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Rings `bell` after every transaction of this store that queued a
    /// message has committed (from [`enqueue`](Store::enqueue), a filing
    /// with its MDNs, ...), on the committing thread.
    fn on_enqueue(&self, bell: QueueBell);

    /// A number that changes whenever another connection (another process:
    /// the CLI) has committed a change to the store since the last call;
    /// changes made through this store leave it as it is. Cheap enough to
    /// ask several times a second (SQLite's `PRAGMA data_version`).
    /// PostgreSQL's counts the commits of other stores that made queue work
    /// due (an entry queued, made due earlier, or given back), which is
    /// what a queue engine waits for; another instance's claims and
    /// finished attempts do not move it.
    fn outside_changes(&self) -> Result<i64, StoreError>;

    /// The version of the directory and trust material: domains, addresses,
    /// certificates and private keys, anchors and bundles. It moves when
    /// any of them may have changed, through this store or another process
    /// (the CLI), so a running server's caches of parsed keys and anchor
    /// stores can tell they are stale. Cheap enough to ask for every message.
    fn directory_version(&self) -> Result<DirectoryVersion, StoreError>;

    /// Finishes a claimed entry. [`StoreError::LeaseLost`] if the caller no
    /// longer holds it.
    fn complete(&self, item: &QueueItem) -> Result<(), StoreError>;

    /// Releases a claimed entry to be claimed again at `next_attempt_at`,
    /// keeping `error` as its last error.
    fn retry_later(
        &self,
        item: &QueueItem,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Gives a claimed entry up: its recipients that may still fail are
    /// marked failed at `at` with `reason`.
    fn fail(&self, item: &QueueItem, reason: &str, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The queue (entries in one state, or all), oldest first, without bytes.
    fn queue(&self, state: Option<QueueState>) -> Result<Vec<QueueEntry>, StoreError>;

    /// Moves one recipient's tracking state to `next` at `at`, if
    /// [`TrackingState`] allows the move ([`StoreError::Transition`]
    /// otherwise). `reason` (a failure's cause, an MDN's disposition) is kept.
    ///
    /// A move to the state the recipient is already in is refused with
    /// [`StoreError::Transition`] too, and a refused move changes nothing and
    /// writes no audit event: a duplicate or late MDN is a no-op for the
    /// caller to log as [`AuditKind::MdnIgnored`]. An unknown recipient is
    /// [`StoreError::NotFound`].
    fn track(
        &self,
        recipient: RecipientId,
        next: TrackingState,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError>;

    /// Moves one recipient to failed, as [`track`](Store::track) with
    /// `reason`, and keeps in the same transaction the RFC 3463 `status`
    /// its refusal carried (a destination's `550 5.1.1`), which the DSN to
    /// its sender reports; `None` when the refusal carried none.
    fn track_failed(
        &self,
        recipient: RecipientId,
        at: OffsetDateTime,
        reason: &str,
        status: Option<DeliveryStatus>,
    ) -> Result<RecipientRecord, StoreError>;

    /// Makes the moves `steps` in order, all or none, in one transaction
    /// (processed then delivered for one MDN); returns the record after
    /// the last.
    fn track_steps(
        &self,
        recipient: RecipientId,
        steps: &[TrackingState],
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError>;

    /// [`track_steps`](Store::track_steps) by the worker holding `held`'s
    /// queue entry (the entry whose attempt, or whose report, made the
    /// moves): [`StoreError::LeaseLost`] and nothing moved when it no longer
    /// holds it (its lease ran out and another worker claimed the entry),
    /// so only the holder's outcome is written (issue 14).
    fn track_steps_held(
        &self,
        held: &Held,
        recipient: RecipientId,
        steps: &[TrackingState],
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError>;

    /// [`track_failed`](Store::track_failed) by the worker holding `held`'s
    /// entry, as [`track_steps_held`](Store::track_steps_held) checks it.
    fn track_failed_held(
        &self,
        held: &Held,
        recipient: RecipientId,
        at: OffsetDateTime,
        reason: &str,
        status: Option<DeliveryStatus>,
    ) -> Result<RecipientRecord, StoreError>;

    /// Records the time of `step` for a recipient that went past it
    /// without it (a `processed` MDN overtaken by the `dispatched` one):
    /// the state stays, only the missing step's time is written, audited.
    /// Refused with [`StoreError::Transition`] when the recipient has that
    /// step already, has not gone past it, or has failed.
    fn note_overtaken_step(
        &self,
        recipient: RecipientId,
        step: TrackingState,
        at: OffsetDateTime,
    ) -> Result<RecipientRecord, StoreError>;

    /// The recipients of the queued messages with this Message-ID, for
    /// matching an MDN or DSN to what it reports on.
    fn tracking(&self, message_id: &MessageId) -> Result<Vec<RecipientRecord>, StoreError>;

    /// One recipient of a queued message with its tracking state;
    /// [`StoreError::NotFound`] if there is no such row.
    fn recipient(&self, id: RecipientId) -> Result<RecipientRecord, StoreError>;

    /// The recipients the MDN timeout must fail: those of outbound
    /// [`Expectation::Mail`] messages that are `relayed` or `processed` and
    /// were relayed at or before `relayed_before`, oldest relay first (then by
    /// row id). Notifications, final states and `dispatched` recipients are
    /// never listed (a `dispatched` MDN says the recipient has the message,
    /// and [`TrackingState`] does not let it fail). Reads an index, never a
    /// message body.
    ///
    /// Messages queued before schema version 3 read as
    /// `Mail { final_delivery: false }`, so their recipients left `relayed`
    /// are listed here too (hisp did not process MDNs then).
    fn overdue(&self, relayed_before: OffsetDateTime) -> Result<Vec<RecipientRecord>, StoreError>;

    /// The failed recipients whose sender is still owed its final notice:
    /// those of outbound [`Expectation::Mail`] messages with an envelope
    /// sender (not the null reverse-path) and no
    /// [`notified_at`](RecipientRecord::notified_at), by message then row id.
    fn unnotified_failures(&self) -> Result<Vec<RecipientRecord>, StoreError>;

    /// Sends the one final notice about `recipients` (failed recipients of
    /// outbound mail) to `sender`, in one transaction: marks them notified
    /// at `at`, files `notice` in `sender`'s Inbox as
    /// [`deliver_to_mailbox`](Store::deliver_to_mailbox) with
    /// [`Folder::Inbox`] does (with its [`AuditKind::Delivered`] event), and
    /// writes an [`AuditKind::DsnSent`] event about each original message
    /// naming its recipients. Returns the mailbox entry.
    ///
    /// If any of `recipients` was already notified, nothing is filed or
    /// changed and the answer is `Ok(None)`: calling again after a crash, or
    /// from a racing worker, never gives a second notice. A `sender` that is
    /// not a local address (sending under a domain grant, or removed since)
    /// has no Inbox: the recipients are marked notified, the audit event says
    /// the notice was not filed, and the answer is `Ok(None)` too. An unknown
    /// recipient is [`StoreError::NotFound`]; no recipients, a recipient not
    /// failed, or one of a notification is [`StoreError::Invalid`]. Nothing
    /// is written then.
    fn notify_sender(
        &self,
        sender: &DirectAddress,
        notice: &[u8],
        recipients: &[RecipientId],
        at: OffsetDateTime,
    ) -> Result<Option<MailboxEntryId>, StoreError>;

    /// Outbound messages (mail and notifications) with where each recipient
    /// is, newest first (by when received, then row id). A message is listed
    /// when any of its recipients matches `filter`, and then with all its
    /// recipients. Reads no message body.
    fn tracked_messages(&self, filter: TrackFilter) -> Result<Vec<TrackedMessage>, StoreError>;

    /// The outbound messages with this Message-ID (usually one), as
    /// [`tracked_messages`](Store::tracked_messages) lists them; empty if
    /// there is none.
    fn tracked_message(&self, message_id: &MessageId) -> Result<Vec<TrackedMessage>, StoreError>;

    /// Stores a message in the Inbox or Sent folder of a local address,
    /// unread, and reads From, Subject, Date and Message-ID from its header
    /// for listings.
    fn deliver_to_mailbox(
        &self,
        address: &DirectAddress,
        bytes: &[u8],
        folder: Folder,
        received_at: OffsetDateTime,
    ) -> Result<MailboxEntryId, StoreError>;

    /// [`deliver_to_mailbox`](Store::deliver_to_mailbox) unless a message
    /// with the same Message-ID was delivered to that folder of that address
    /// before (wherever the owner has moved it since): `Some` with the new
    /// entry, `None` when it is there already. Looked up and stored in one
    /// transaction, through the index on Message-ID, so a copy filed again
    /// after a crash or a retry appears once. A message without a Message-ID
    /// is always stored.
    fn deliver_to_mailbox_once(
        &self,
        address: &DirectAddress,
        bytes: &[u8],
        folder: Folder,
        received_at: OffsetDateTime,
    ) -> Result<Option<MailboxEntryId>, StoreError>;

    /// Files an accepted inbound message for one recipient of its queued
    /// copy, with the MDNs that answer it, in one transaction: all of it is
    /// written or none of it (a crash or error midway leaves the recipient
    /// queued, to be tried again).
    ///
    /// - `recipient` already `delivered` or `failed` (an earlier attempt
    ///   committed, say before its worker's lease ran out and another worker
    ///   claimed the entry): [`Filing::AlreadyDone`] with that state, and
    ///   nothing is written. Calling again is therefore safe.
    /// - `address`'s Inbox holds the message already (an entry there, or
    ///   moved from there, with the same Message-ID and From: a sender that
    ///   did not learn of the first delivery sent it again):
    ///   [`Filing::Duplicate`]; nothing is filed, the recipient moves to
    ///   `delivered` and each of `if_filed` is queued again.
    /// - `address` is local: `bytes` go to its Inbox exactly as
    ///   [`deliver_to_mailbox`](Store::deliver_to_mailbox) with
    ///   [`Folder::Inbox`] files them, the recipient moves to `delivered` as
    ///   [`track`](Store::track) moves it, and each of `if_filed` is queued:
    ///   [`Filing::Filed`].
    /// - `address` is not local (removed since the message was queued): the
    ///   recipient moves to `failed` with the reason "`<address>`: no such
    ///   local address", and each of `if_missing` is queued:
    ///   [`Filing::NoSuchAddress`].
    ///
    /// Each answer is queued as [`enqueue_expecting`](Store::enqueue_expecting)
    /// queues an outbound [`Expectation::Notification`] from
    /// [`Answer::from`] to [`Answer::to`], with its usual audit event, plus
    /// one [`AuditKind::MdnSent`] event about the inbound message
    /// (`"<kind> MDN from <from> to <to> about <message-id> queued as
    /// <message record>"`, the Message-ID read from the recipient's queued
    /// message). An unknown recipient is [`StoreError::NotFound`]; a
    /// recipient whose state may not move to `delivered` or `failed` is
    /// [`StoreError::Transition`], and nothing is written.
    fn file_inbound(
        &self,
        recipient: RecipientId,
        address: &DirectAddress,
        bytes: &[u8],
        at: OffsetDateTime,
        if_filed: &[Answer],
        if_missing: &[Answer],
    ) -> Result<Filing, StoreError> {
        self.file_inbound_notifying(recipient, address, bytes, at, if_filed, if_missing, None)
    }

    /// [`file_inbound`](Store::file_inbound), and, when `notice` is given
    /// and the message is filed, the e-mail notice of new secure mail for
    /// the address's portal user in the same transaction (issue 11 item 9):
    /// only for an enabled account with an e-mail address and notices on
    /// ([`NotifySettings::notify_to`]).
    /// It is composed by [`NewMailNotice::compose`] and queued as an
    /// outbound [`Expectation::PortalNotice`] from [`NewMailNotice::from`]
    /// to the e-mail address (with its usual `queued` event), noted as about
    /// this mailbox, and audited [`AuditKind::NotificationQueued`] about the
    /// address and the inbound message. A retry that finds the recipient
    /// done queues no second notice; a crash before the commit leaves none.
    #[allow(clippy::too_many_arguments)]
    fn file_inbound_notifying(
        &self,
        recipient: RecipientId,
        address: &DirectAddress,
        bytes: &[u8],
        at: OffsetDateTime,
        if_filed: &[Answer],
        if_missing: &[Answer],
        notice: Option<&NewMailNotice<'_>>,
    ) -> Result<Filing, StoreError>;

    /// The smart host took the portal notice for `recipient` (a recipient of
    /// an [`Expectation::PortalNotice`] message): it moves to `relayed` with
    /// `reply` as [`track`](Store::track) moves it, and an
    /// [`AuditKind::NotificationSent`] event about the mailbox the notice
    /// was for is written, in one transaction.
    fn portal_notice_sent(
        &self,
        recipient: RecipientId,
        at: OffsetDateTime,
        reply: &str,
    ) -> Result<RecipientRecord, StoreError>;

    /// One folder of a mailbox, newest first. Works for addresses since
    /// removed: mail outlives its address.
    fn mailbox(
        &self,
        address: &DirectAddress,
        folder: Folder,
    ) -> Result<Vec<MailboxEntry>, StoreError>;

    /// One mailbox message with its bytes. Reading does not mark it read.
    fn read_message(&self, id: MailboxEntryId) -> Result<MailboxMessage, StoreError>;

    /// Marks a mailbox message read (once; again is a no-op).
    fn mark_read(&self, id: MailboxEntryId) -> Result<(), StoreError>;

    /// Moves a mailbox message to Disregarded, or from there back to the
    /// folder it came from. Nothing is ever deleted.
    fn move_to(&self, id: MailboxEntryId, folder: Folder) -> Result<MailboxEntry, StoreError>;

    /// Quarantines a message exactly as received, with the reason code, what
    /// exactly failed, and its envelope.
    fn quarantine(
        &self,
        bytes: &[u8],
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
    ) -> Result<QuarantineId, StoreError>;

    /// Quarantines a message the queue holds (`message`, as received) with
    /// the reason code, what exactly failed, and its envelope. The entry
    /// refers to the queue's copy: the bytes are stored once.
    fn quarantine_queued(
        &self,
        message: MessageRecordId,
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
    ) -> Result<QuarantineId, StoreError>;

    /// Quarantines an inbound message the queue holds, as
    /// [`quarantine_queued`](Store::quarantine_queued) does, and fails each
    /// of `recipients` (its recipients of one domain) at `at` with the reason
    /// "quarantined (`reason`): `detail`", in one transaction. Recipients
    /// already in a final state are left alone; when all of them are (an
    /// earlier attempt committed), nothing is written and the answer is
    /// `Ok(None)`.
    fn quarantine_inbound(
        &self,
        message: MessageRecordId,
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
        recipients: &[RecipientId],
        at: OffsetDateTime,
    ) -> Result<Option<QuarantineId>, StoreError>;

    /// Every quarantined message, oldest first, without bytes.
    fn quarantined(&self) -> Result<Vec<QuarantineRecord>, StoreError>;

    /// One quarantined message with its bytes.
    fn quarantined_message(&self, id: QuarantineId) -> Result<QuarantinedMessage, StoreError>;

    /// Writes an audit event for a state change the store does not make
    /// itself (sealed, opened, MDN sent, ...). With only `message`, the
    /// Message-ID is looked up.
    fn audit(
        &self,
        kind: AuditKind,
        message_id: Option<&MessageId>,
        message: Option<MessageRecordId>,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// The audit events about one Message-ID, oldest first.
    fn audit_events(&self, message_id: &MessageId) -> Result<Vec<AuditEvent>, StoreError>;

    /// The audit events `filter` selects, oldest first, with their hashes.
    fn audit_export(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;

    /// Checks the whole audit chain, oldest event first: each event's hash
    /// must be the SHA-256 of the hash before it and its own columns. Names
    /// the first event that breaks it.
    fn verify_audit_chain(&self) -> Result<AuditCheck, StoreError>;

    /// Adds a portal account for a local address ([`StoreError::NotFound`]
    /// naming the address if it is not local; one account per address),
    /// with an Argon2id hash of `password` as [`add_user`](Store::add_user)
    /// makes it. Audited `portal-user-added`.
    fn add_portal_user(
        &self,
        address: &DirectAddress,
        password: &str,
        settings: &NotifySettings,
    ) -> Result<PortalUser, StoreError>;

    /// One portal account, found without regard to the letter case of the
    /// local part.
    fn portal_user(&self, address: &DirectAddress) -> Result<PortalUser, StoreError>;

    /// Every portal account, by domain then local part.
    fn portal_users(&self) -> Result<Vec<PortalUser>, StoreError>;

    /// Replaces a portal account's password (enabled or not). Audited
    /// `portal-password-changed`.
    fn set_portal_password(
        &self,
        address: &DirectAddress,
        password: &str,
    ) -> Result<PortalUser, StoreError>;

    /// Disables a portal account: it can no longer log in. Disabling a
    /// disabled account changes nothing. Audited `portal-user-disabled`.
    fn disable_portal_user(&self, address: &DirectAddress) -> Result<PortalUser, StoreError>;

    /// Replaces a portal account's notification settings. Audited
    /// `portal-settings-changed` when they change.
    fn set_portal_settings(
        &self,
        address: &DirectAddress,
        settings: &NotifySettings,
    ) -> Result<PortalUser, StoreError>;

    /// Checks a portal login. No account and a wrong password both give
    /// [`StoreError::BadCredentials`] after the same work (constant-time
    /// hash comparison); the right password of a disabled account gives
    /// [`StoreError::Disabled`]. Every attempt is audited, `login` or
    /// `login-failed` with the reason, under the address tried.
    fn verify_portal_login(
        &self,
        address: &DirectAddress,
        password: &str,
    ) -> Result<PortalUser, StoreError>;

    /// How many logins as `address` failed at or after `since` (by the
    /// time their `login-failed` events were written), for throttling.
    fn failed_portal_logins(
        &self,
        address: &DirectAddress,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Total and unread entries of `owner`'s Inbox, Sent and Disregarded
    /// folders (in that order) inside `view`.
    fn folder_counts(
        &self,
        owner: &DirectAddress,
        view: &MailboxView,
    ) -> Result<Vec<FolderCount>, StoreError>;

    /// One folder of `owner`'s mailbox inside `view`, newest first (by when
    /// stored, then id).
    fn folder_view(
        &self,
        owner: &DirectAddress,
        folder: Folder,
        view: &MailboxView,
    ) -> Result<Vec<MailboxEntry>, StoreError>;

    /// One entry of `owner`'s mailbox inside `view`, without marking it
    /// read. Another mailbox's entry, or one past retention, is
    /// [`StoreError::NotFound`] as an unknown id is.
    fn view_entry(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError>;

    /// Reads one message of `owner`'s mailbox inside `view` and marks it
    /// read (audited `read` the first time), in one transaction.
    fn open_message(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxMessage, StoreError>;

    /// Marks one message of `owner`'s mailbox inside `view` read (audited
    /// `read` the first time) and returns its entry.
    fn mark_read_in_view(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError>;

    /// Moves a message of `owner`'s mailbox inside `view` from its Inbox
    /// (or Sent) to Disregarded, as [`move_to`](Store::move_to) does
    /// (audited `moved`).
    fn disregard(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError>;

    /// Moves a disregarded message of `owner`'s mailbox inside `view` back
    /// to the folder it came from (audited `moved`); any other message is
    /// [`StoreError::Invalid`].
    fn restore(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError>;

    /// The Direct addresses that have sent `owner` mail (Inbox entries,
    /// wherever they are now and however old; reports such as DSNs do not
    /// count), newest first, each once, with the display name of the newest
    /// of their messages that had one.
    fn correspondents(&self, owner: &DirectAddress) -> Result<Vec<Correspondent>, StoreError>;

    /// Refuses to delete a message of `owner`'s mailbox inside `view`
    /// (nothing is ever deleted, for audit integrity) and writes the
    /// attempt as an [`AuditKind::DeleteRefused`] event about `owner`, in
    /// one transaction. Returns the entry, which stays as it was. Another
    /// mailbox's entry, or one past retention, is [`StoreError::NotFound`]
    /// and writes nothing.
    fn refuse_delete(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError>;
}
