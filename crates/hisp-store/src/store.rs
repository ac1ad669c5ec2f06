//! The `Store` trait: everything hisp keeps, behind one interface, so the
//! embedded SQLite store and a shared database can be swapped.

use std::time::Duration;

use time::OffsetDateTime;

use crate::address::DirectAddress;
use crate::anchor::{AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::audit::{AuditEvent, AuditKind};
use crate::bundle::{BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle};
use crate::cert::NewCertificate;
use crate::directory::{AddressRecord, CertificateRecord, DomainRecord, Owner};
use crate::domain::Domain;
use crate::error::StoreError;
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
use crate::message::{Envelope, MessageDirection, MessageId, MessageRecordId};
use crate::quarantine::{QuarantineId, QuarantineReason, QuarantineRecord, QuarantinedMessage};
use crate::queue::{QueueEntry, QueueItem, QueueState};
use crate::tracking::{RecipientId, RecipientRecord, TrackingState};
use crate::user::{Account, Grant, UserName};

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
/// keys and grants, but not its mail.
///
/// Every change of a message's state (queued, deferred, completed, failed,
/// tracked, delivered to a mailbox, moved, read, quarantined) writes one
/// audit event in the same transaction as the change.
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
    fn enqueue(
        &self,
        direction: MessageDirection,
        envelope_from: Option<&DirectAddress>,
        recipients: &[DirectAddress],
        bytes: &[u8],
        received_at: OffsetDateTime,
    ) -> Result<MessageRecordId, StoreError>;

    /// Claims up to `limit` entries due at `now` for `lease`: until the
    /// lease ends no other claimer (thread or process) sees them. A worker
    /// that dies lets the lease run out and the entry is claimed again.
    fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueueItem>, StoreError>;

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
    fn track(
        &self,
        recipient: RecipientId,
        next: TrackingState,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError>;

    /// The recipients of the queued messages with this Message-ID, for
    /// matching an MDN or DSN to what it reports on.
    fn tracking(&self, message_id: &MessageId) -> Result<Vec<RecipientRecord>, StoreError>;

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
}
