//! The PostgreSQL store: [`PostgresStore`], the [`Store`] trait served from
//! one PostgreSQL database that several `hisp serve` instances and the CLI
//! share.
//!
//! Every call takes a connection from the pool and runs in one
//! transaction: a write at READ COMMITTED (what each operation needs beyond
//! that is asked for by its statements, `postgres/tx.rs`), a read at
//! REPEATABLE READ READ ONLY, so a read of several queries sees one
//! snapshot. The composite operations are the same `crate::ops` functions
//! SQLite's store calls; the reads that are one query are this backend's
//! own (`directory.rs`, `accounts.rs`, `queue.rs`, `mailbox.rs`,
//! `audit.rs`). A failure is `StoreError::Database` classified by SQLSTATE
//! (`errors.rs`): a serialization failure or deadlock (40001, 40P01), a
//! lock not available or a lost connection is retryable, and the callers'
//! `retry` runs the whole call again in a new transaction.
//!
//! Every commit is synchronous (`synchronous_commit` as the server has it,
//! `on` by default): PostgreSQL has no cheaper level that survives the
//! server process being killed.

use std::sync::Mutex;
use std::time::Duration;

use ::postgres::IsolationLevel;
use time::OffsetDateTime;

use super::changes::{self, Changes};
use super::tx::PgTx;
use super::url::PostgresUrl;
use super::{accounts, audit, directory, mailbox, queue, PostgresPool};
use crate::anchor::{AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::audit::{AuditCheck, AuditEvent, AuditFilter, AuditKind};
use crate::bundle::{BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle};
use crate::cert::NewCertificate;
use crate::directory::{AddressRecord, CertificateRecord, DomainRecord, Owner};
use crate::error::{Entity, StoreError};
use crate::expect::Expectation;
use crate::filing::{Answer, Filing, NewMailNotice};
use crate::mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
use crate::mailbox_view::{Correspondent, FolderCount, MailboxView};
use crate::message::{Envelope, MessageDirection, MessageId, MessageRecordId};
use crate::migration::MigrationReport;
use crate::ops;
use crate::password;
use crate::portal_user::{NotifySettings, PortalUser};
use crate::quarantine::{QuarantineId, QuarantineReason, QuarantineRecord, QuarantinedMessage};
use crate::queue::{
    ClaimLimits, Held, QueueBell, QueueEntry, QueueItem, QueueItemId, QueueState, RetrySelection,
};
use crate::store::Store;
use crate::tracking::{
    DeliveryStatus, RecipientId, RecipientRecord, TrackFilter, TrackedMessage, TrackingState,
};
use crate::user::{Account, Grant, UserName};
use crate::version::DirectoryVersion;
use hisp_address::{DirectAddress, Domain};
use ops::portal_user::LoginFailure;

/// The store on a PostgreSQL database. Cheap to share behind an `Arc`: calls
/// from many threads run at once, each on a connection of the pool.
pub struct PostgresStore {
    pool: PostgresPool,
    /// The instance whose leases this store's claims write and whose
    /// leases [`Store::release_leases`] ends.
    instance: String,
    /// Rung after a transaction that queued something commits.
    bells: Mutex<Vec<QueueBell>>,
    /// Other stores' changes (`changes.rs`).
    changes: Changes,
    /// What opening the database found of its schema and applied to it.
    migration: MigrationReport,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens a pool of at most `pool_size` connections to the database
    /// `url` names (as [`PostgresPool::open`] does), brings its schema up
    /// to date, and starts listening for other stores' queue changes.
    ///
    /// `instance` names this `hisp serve` instance (or CLI) among those
    /// sharing the database: claims write it as their leases' owner, and
    /// [`Store::release_leases`] ends only the leases it owns, so an
    /// instance starting again frees what its previous run held and never
    /// a live instance's work. Two running instances must not share a name.
    pub fn open(
        url: &PostgresUrl,
        password: Option<&str>,
        pool_size: u32,
        instance: &str,
    ) -> Result<PostgresStore, StoreError> {
        if instance.is_empty() {
            return Err(StoreError::Invalid {
                what: "instance name",
                value: String::new(),
                reason: "an instance needs a name to own its leases".into(),
            });
        }
        let tag = store_tag()?;
        let pool = PostgresPool::open_tagged(url, password, pool_size, Some(&tag))?;
        let migration = pool.migrate()?;
        let changes = Changes::listen(&pool, tag)?;
        Ok(PostgresStore {
            pool,
            instance: instance.to_string(),
            bells: Mutex::new(Vec::new()),
            changes,
            migration,
        })
    }

    /// What opening the database did to its schema.
    pub fn migration(&self) -> &MigrationReport {
        &self.migration
    }

    /// The instance this store claims for.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The pool of connections.
    pub fn pool(&self) -> &PostgresPool {
        &self.pool
    }

    /// Runs `f` in a write transaction (READ COMMITTED) and commits; rings
    /// the bells after a commit that queued something. An error rolls
    /// everything back.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&mut PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(false, f)
    }

    /// [`write`](Self::write) for a step of the queue's own work after the
    /// promise (claims, tracking, filing, the audit of those steps), as
    /// SQLite commits them at `synchronous=NORMAL`: with
    /// `synchronous_commit` off, the commit returns before its WAL record
    /// is flushed. Only a crash of the database server can undo it (never
    /// one of hisp), and then only with every later commit, the step being
    /// taken again (a claim lapses; a message is relayed or filed again,
    /// and filed once by Message-ID and From). It no longer holds the audit
    /// chain's lock through a flush, so such commits do not queue one
    /// behind another's fsync. What a reply promises (an SMTP 250, a portal
    /// submission, an administrator's command) stays with [`write`].
    pub(super) fn write_relaxed<T>(
        &self,
        f: impl FnOnce(&mut PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(true, f)
    }

    fn write_as<T>(
        &self,
        relaxed: bool,
        f: impl FnOnce(&mut PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (value, queued) = {
            let mut conn = self.pool.connection()?;
            let mut tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .map_err(StoreError::postgres("starting a transaction"))?;
            if relaxed {
                tx.batch_execute("SET LOCAL synchronous_commit TO off")
                    .map_err(StoreError::postgres("relaxing a commit"))?;
            }
            let mut tx = PgTx::write(tx, &self.instance);
            let value = f(&mut tx)?;
            let queued = tx.queued;
            tx.tx
                .commit()
                .map_err(StoreError::postgres("committing a transaction"))?;
            (value, queued)
        };
        // The connection is back in the pool before the bells ring.
        if queued {
            self.ring();
        }
        Ok(value)
    }

    /// Runs `f` in a read-only transaction on one snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.connection()?;
        let tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(StoreError::postgres("starting a transaction"))?;
        let mut tx = PgTx::read(tx, &self.instance);
        let value = f(&mut tx)?;
        tx.tx
            .commit()
            .map_err(StoreError::postgres("ending a transaction"))?;
        Ok(value)
    }

    /// Rings every bell given to [`Store::on_enqueue`].
    fn ring(&self) {
        let bells = self.bells.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for bell in bells {
            bell();
        }
    }
}

/// A random tag for this store's sessions: 16 hex digits.
fn store_tag() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| StoreError::Invalid {
        what: "store tag",
        value: "(random)".into(),
        reason: format!("no randomness: {e}"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store for PostgresStore {
    fn add_domain(
        &self,
        domain: &Domain,
        certificates: &[NewCertificate],
    ) -> Result<DomainRecord, StoreError> {
        self.write(|tx| directory::add_domain(&mut tx.tx, domain, certificates))
    }

    fn domain(&self, domain: &Domain) -> Result<DomainRecord, StoreError> {
        self.read(|tx| directory::domain(&mut tx.tx, domain))
    }

    fn domains(&self) -> Result<Vec<DomainRecord>, StoreError> {
        self.read(|tx| directory::domains(&mut tx.tx))
    }

    fn remove_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        self.write(|tx| directory::remove_domain(&mut tx.tx, domain))
    }

    fn add_address(
        &self,
        address: &DirectAddress,
        certificates: &[NewCertificate],
    ) -> Result<AddressRecord, StoreError> {
        self.write(|tx| directory::add_address(&mut tx.tx, address, certificates))
    }

    fn address(&self, address: &DirectAddress) -> Result<AddressRecord, StoreError> {
        self.read(|tx| directory::address(&mut tx.tx, address))
    }

    fn addresses(&self, domain: Option<&Domain>) -> Result<Vec<AddressRecord>, StoreError> {
        self.read(|tx| directory::addresses(&mut tx.tx, domain))
    }

    fn remove_address(&self, address: &DirectAddress) -> Result<(), StoreError> {
        self.write(|tx| directory::remove_address(&mut tx.tx, address))
    }

    fn add_certificate(
        &self,
        owner: &Owner,
        certificate: &NewCertificate,
    ) -> Result<CertificateRecord, StoreError> {
        self.write(|tx| directory::add_certificate(&mut tx.tx, owner, certificate))
    }

    fn certificates(&self, owner: Option<&Owner>) -> Result<Vec<CertificateRecord>, StoreError> {
        self.read(|tx| directory::certificates(&mut tx.tx, owner))
    }

    fn add_anchors(
        &self,
        domain: &Domain,
        direction: Direction,
        anchors: &[NewAnchor],
    ) -> Result<Vec<AnchorRecord>, StoreError> {
        self.write(|tx| directory::add_anchors(&mut tx.tx, domain, direction, anchors))
    }

    fn anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>, StoreError> {
        self.read(|tx| directory::anchors(&mut tx.tx, domain, None))
    }

    fn anchors_for(&self, domain: &Domain, flow: Flow) -> Result<Vec<AnchorRecord>, StoreError> {
        self.read(|tx| directory::anchors(&mut tx.tx, Some(domain), Some(flow)))
    }

    fn remove_anchor(
        &self,
        domain: &Domain,
        selector: &AnchorSelector,
    ) -> Result<AnchorRecord, StoreError> {
        self.write(|tx| directory::remove_anchor(&mut tx.tx, domain, selector))
    }

    fn add_bundle(&self, bundle: &NewBundle) -> Result<BundleRecord, StoreError> {
        self.write(|tx| directory::add_bundle(&mut tx.tx, bundle))
    }

    fn bundles(&self, domain: Option<&Domain>) -> Result<Vec<BundleRecord>, StoreError> {
        self.read(|tx| directory::bundles(&mut tx.tx, domain))
    }

    fn remove_bundle(&self, domain: &Domain, source: &BundleSource) -> Result<(), StoreError> {
        self.write(|tx| directory::remove_bundle(&mut tx.tx, domain, source))
    }

    fn record_bundle_fetch(&self, id: BundleId, fetch: &BundleFetch) -> Result<(), StoreError> {
        self.write(|tx| directory::record_bundle_fetch(&mut tx.tx, id, fetch))
    }

    fn add_user(&self, name: &UserName, password: &str) -> Result<Account, StoreError> {
        // Hash outside the write lock: it takes tens of milliseconds on purpose.
        let hash = password::hash(password)?;
        self.write(|tx| accounts::add_user(&mut tx.tx, name, &hash))
    }

    fn verify_password(&self, name: &UserName, password: &str) -> Result<Account, StoreError> {
        let Some(hash) = self.read(|tx| accounts::password_hash(&mut tx.tx, name))? else {
            password::verify_nobody(password);
            return Err(StoreError::BadCredentials);
        };
        if !password::verify(password, &hash)? {
            return Err(StoreError::BadCredentials);
        }
        self.read(|tx| accounts::account(&mut tx.tx, name))
    }

    fn user(&self, name: &UserName) -> Result<Account, StoreError> {
        self.read(|tx| accounts::account(&mut tx.tx, name))
    }

    fn users(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|tx| accounts::accounts(&mut tx.tx))
    }

    fn grant(&self, name: &UserName, grant: &Grant) -> Result<Account, StoreError> {
        self.write(|tx| accounts::grant(&mut tx.tx, name, grant))
    }

    fn set_request_final_delivery(&self, name: &UserName, on: bool) -> Result<Account, StoreError> {
        self.write(|tx| accounts::set_request_final_delivery(&mut tx.tx, name, on))
    }

    fn enqueue_expecting(
        &self,
        direction: MessageDirection,
        envelope_from: Option<&DirectAddress>,
        recipients: &[DirectAddress],
        bytes: &[u8],
        received_at: OffsetDateTime,
        expect: Expectation,
    ) -> Result<MessageRecordId, StoreError> {
        self.write(|tx| {
            ops::queue::enqueue(
                tx,
                direction,
                envelope_from,
                recipients,
                bytes,
                received_at,
                expect,
            )
        })
    }

    fn enqueue_once(
        &self,
        mark: &str,
        direction: MessageDirection,
        envelope_from: Option<&DirectAddress>,
        recipients: &[DirectAddress],
        bytes: &[u8],
        received_at: OffsetDateTime,
        expect: Expectation,
    ) -> Result<Option<MessageRecordId>, StoreError> {
        self.write(|tx| {
            ops::queue::enqueue_once(
                tx,
                mark,
                direction,
                envelope_from,
                recipients,
                bytes,
                received_at,
                expect,
            )
        })
    }

    fn queued_once(&self, mark: &str) -> Result<Option<MessageRecordId>, StoreError> {
        self.read(|tx| ops::queue::queued_once(tx, mark))
    }

    fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueueItem>, StoreError> {
        self.write_relaxed(|tx| ops::queue::claim_due(tx, now, lease, limit))
    }

    fn release_leases(&self) -> Result<usize, StoreError> {
        self.write_relaxed(|tx| queue::release_leases(&mut tx.tx, &self.instance))
    }

    fn claim_due_within(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limits: &ClaimLimits,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let mut limits = limits.clone();
        self.write_relaxed(|tx| ops::queue::claim_due_within(tx, now, lease, &mut limits))
    }

    fn renew_lease(
        &self,
        item: &QueueItem,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        self.write_relaxed(|tx| ops::queue::renew_lease(tx, item, now, lease))
    }

    fn release(&self, item: &QueueItem) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::release(tx, item))
    }

    fn retry_now(
        &self,
        selection: RetrySelection,
        at: OffsetDateTime,
    ) -> Result<Vec<QueueItemId>, StoreError> {
        self.write(|tx| ops::queue::retry_now(tx, selection, at))
    }

    fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.read(|tx| queue::next_due(&mut tx.tx))
    }

    fn on_enqueue(&self, bell: QueueBell) {
        self.bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(bell);
    }

    fn outside_changes(&self) -> Result<i64, StoreError> {
        self.changes.outside(&self.pool)
    }

    fn directory_version(&self) -> Result<DirectoryVersion, StoreError> {
        // One counter moved by the directory tables' triggers, whoever
        // committed: this store's changes and others' alike.
        let version = self.read(|tx| changes::directory(&mut tx.tx))?;
        Ok(DirectoryVersion {
            local: 0,
            outside: version,
        })
    }

    fn complete(&self, item: &QueueItem) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::complete(tx, item))
    }

    fn retry_later(
        &self,
        item: &QueueItem,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::retry_later(tx, item, next_attempt_at, error))
    }

    fn fail(&self, item: &QueueItem, reason: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::fail(tx, item, reason, at))
    }

    fn queue(&self, state: Option<QueueState>) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|tx| queue::entries(&mut tx.tx, state))
    }

    fn track(
        &self,
        recipient: RecipientId,
        next: TrackingState,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::tracking::track(tx, recipient, next, at, reason))
    }

    fn track_failed(
        &self,
        recipient: RecipientId,
        at: OffsetDateTime,
        reason: &str,
        status: Option<DeliveryStatus>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::tracking::track_failed(tx, recipient, at, reason, status))
    }

    fn track_steps(
        &self,
        recipient: RecipientId,
        steps: &[TrackingState],
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::tracking::track_steps(tx, recipient, steps, at, reason))
    }

    fn track_steps_held(
        &self,
        held: &Held,
        recipient: RecipientId,
        steps: &[TrackingState],
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| {
            ops::tracking::in_hand(tx, held)?;
            ops::tracking::track_steps(tx, recipient, steps, at, reason)
        })
    }

    fn track_failed_held(
        &self,
        held: &Held,
        recipient: RecipientId,
        at: OffsetDateTime,
        reason: &str,
        status: Option<DeliveryStatus>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| {
            ops::tracking::in_hand(tx, held)?;
            ops::tracking::track_failed(tx, recipient, at, reason, status)
        })
    }

    fn note_overtaken_step(
        &self,
        recipient: RecipientId,
        step: TrackingState,
        at: OffsetDateTime,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::tracking::note_overtaken_step(tx, recipient, step, at))
    }

    fn tracking(&self, message_id: &MessageId) -> Result<Vec<RecipientRecord>, StoreError> {
        self.read(|tx| queue::tracking(&mut tx.tx, message_id))
    }

    fn recipient(&self, id: RecipientId) -> Result<RecipientRecord, StoreError> {
        self.read(|tx| ops::tracking::recipient(tx, id))
    }

    fn overdue(&self, relayed_before: OffsetDateTime) -> Result<Vec<RecipientRecord>, StoreError> {
        self.read(|tx| queue::overdue(&mut tx.tx, relayed_before))
    }

    fn unnotified_failures(&self) -> Result<Vec<RecipientRecord>, StoreError> {
        self.read(|tx| queue::unnotified_failures(&mut tx.tx))
    }

    fn notify_sender(
        &self,
        sender: &DirectAddress,
        notice: &[u8],
        recipients: &[RecipientId],
        at: OffsetDateTime,
    ) -> Result<Option<MailboxEntryId>, StoreError> {
        self.write_relaxed(|tx| ops::tracking::notify_sender(tx, sender, notice, recipients, at))
    }

    fn tracked_messages(&self, filter: TrackFilter) -> Result<Vec<TrackedMessage>, StoreError> {
        self.read(|tx| queue::tracked_messages(&mut tx.tx, filter))
    }

    fn tracked_message(&self, message_id: &MessageId) -> Result<Vec<TrackedMessage>, StoreError> {
        self.read(|tx| queue::tracked_message(&mut tx.tx, message_id))
    }

    fn deliver_to_mailbox(
        &self,
        address: &DirectAddress,
        bytes: &[u8],
        folder: Folder,
        received_at: OffsetDateTime,
    ) -> Result<MailboxEntryId, StoreError> {
        self.write(|tx| ops::mailbox::deliver(tx, address, bytes, folder, received_at))
    }

    fn deliver_to_mailbox_once(
        &self,
        address: &DirectAddress,
        bytes: &[u8],
        folder: Folder,
        received_at: OffsetDateTime,
    ) -> Result<Option<MailboxEntryId>, StoreError> {
        self.write_relaxed(|tx| ops::mailbox::deliver_once(tx, address, bytes, folder, received_at))
    }

    fn file_inbound_notifying(
        &self,
        recipient: RecipientId,
        address: &DirectAddress,
        bytes: &[u8],
        at: OffsetDateTime,
        if_filed: &[Answer],
        if_missing: &[Answer],
        notice: Option<&NewMailNotice<'_>>,
    ) -> Result<Filing, StoreError> {
        self.write_relaxed(|tx| {
            ops::filing::file_inbound(
                tx, recipient, address, bytes, at, if_filed, if_missing, notice,
            )
        })
    }

    fn portal_notice_sent(
        &self,
        recipient: RecipientId,
        at: OffsetDateTime,
        reply: &str,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::filing::portal_notice_sent(tx, recipient, at, reply))
    }

    fn mailbox(
        &self,
        address: &DirectAddress,
        folder: Folder,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        self.read(|tx| mailbox::list(&mut tx.tx, address, folder))
    }

    fn read_message(&self, id: MailboxEntryId) -> Result<MailboxMessage, StoreError> {
        self.read(|tx| ops::mailbox::read(tx, id))
    }

    fn mark_read(&self, id: MailboxEntryId) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::mailbox::mark_read(tx, id))
    }

    fn move_to(&self, id: MailboxEntryId, folder: Folder) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::move_to(tx, id, folder))
    }

    fn quarantine(
        &self,
        bytes: &[u8],
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
    ) -> Result<QuarantineId, StoreError> {
        self.write(|tx| ops::quarantine::add(tx, bytes, reason, detail, envelope))
    }

    fn quarantine_queued(
        &self,
        message: MessageRecordId,
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
    ) -> Result<QuarantineId, StoreError> {
        self.write_relaxed(|tx| ops::quarantine::add_queued(tx, message, reason, detail, envelope))
    }

    fn quarantine_inbound(
        &self,
        message: MessageRecordId,
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
        recipients: &[RecipientId],
        at: OffsetDateTime,
    ) -> Result<Option<QuarantineId>, StoreError> {
        self.write_relaxed(|tx| {
            ops::filing::quarantine_inbound(tx, message, reason, detail, envelope, recipients, at)
        })
    }

    fn quarantined(&self) -> Result<Vec<QuarantineRecord>, StoreError> {
        self.read(|tx| mailbox::quarantined(&mut tx.tx))
    }

    fn quarantined_message(&self, id: QuarantineId) -> Result<QuarantinedMessage, StoreError> {
        self.read(|tx| mailbox::quarantined_message(&mut tx.tx, id))
    }

    fn audit(
        &self,
        kind: AuditKind,
        message_id: Option<&MessageId>,
        message: Option<MessageRecordId>,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::audit::audit(tx, kind, message_id, message, detail))
    }

    fn audit_events(&self, message_id: &MessageId) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|tx| audit::events(&mut tx.tx, message_id))
    }

    fn audit_export(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|tx| audit::export(&mut tx.tx, filter))
    }

    fn verify_audit_chain(&self) -> Result<AuditCheck, StoreError> {
        self.read(|tx| audit::verify_chain(&mut tx.tx))
    }

    fn add_portal_user(
        &self,
        address: &DirectAddress,
        password: &str,
        settings: &NotifySettings,
    ) -> Result<PortalUser, StoreError> {
        // Hash outside the write lock: it takes tens of milliseconds on purpose.
        let hash = password::hash(password)?;
        self.write(|tx| ops::portal_user::add(tx, address, &hash, settings))
    }

    fn portal_user(&self, address: &DirectAddress) -> Result<PortalUser, StoreError> {
        self.read(|tx| accounts::portal_user(&mut tx.tx, address))
    }

    fn portal_users(&self) -> Result<Vec<PortalUser>, StoreError> {
        self.read(|tx| accounts::portal_users(&mut tx.tx))
    }

    fn set_portal_password(
        &self,
        address: &DirectAddress,
        password: &str,
    ) -> Result<PortalUser, StoreError> {
        let hash = password::hash(password)?;
        self.write(|tx| ops::portal_user::set_password(tx, address, &hash))
    }

    fn disable_portal_user(&self, address: &DirectAddress) -> Result<PortalUser, StoreError> {
        self.write(|tx| ops::portal_user::disable(tx, address))
    }

    fn set_portal_settings(
        &self,
        address: &DirectAddress,
        settings: &NotifySettings,
    ) -> Result<PortalUser, StoreError> {
        self.write(|tx| ops::portal_user::set_settings(tx, address, settings))
    }

    fn verify_portal_login(
        &self,
        address: &DirectAddress,
        password: &str,
    ) -> Result<PortalUser, StoreError> {
        let stored = self.read(|tx| accounts::portal_password_hash(&mut tx.tx, address))?;
        // Verify outside any lock; an unknown account costs the same work.
        let failure = match &stored {
            None => {
                password::verify_nobody(password);
                Some(LoginFailure::NoSuchUser)
            }
            Some((hash, _)) if !password::verify(password, hash)? => {
                Some(LoginFailure::WrongPassword)
            }
            Some((_, false)) => Some(LoginFailure::Disabled),
            Some((_, true)) => None,
        };
        self.write(|tx| ops::portal_user::audit_login(tx, address, failure))?;
        match failure {
            None => self.read(|tx| accounts::portal_user(&mut tx.tx, address)),
            Some(LoginFailure::Disabled) => Err(StoreError::Disabled {
                entity: Entity::PortalUser,
                name: address.to_string(),
            }),
            Some(_) => Err(StoreError::BadCredentials),
        }
    }

    fn failed_portal_logins(
        &self,
        address: &DirectAddress,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.read(|tx| audit::failed_logins_since(&mut tx.tx, address, since.unix_timestamp()))
    }

    fn folder_counts(
        &self,
        owner: &DirectAddress,
        view: &MailboxView,
    ) -> Result<Vec<FolderCount>, StoreError> {
        self.read(|tx| mailbox::counts(&mut tx.tx, owner, view))
    }

    fn folder_view(
        &self,
        owner: &DirectAddress,
        folder: Folder,
        view: &MailboxView,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        self.read(|tx| mailbox::folder(&mut tx.tx, owner, folder, view))
    }

    fn view_entry(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.read(|tx| ops::mailbox::view_entry(tx, owner, id, view))
    }

    fn open_message(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxMessage, StoreError> {
        self.write_relaxed(|tx| ops::mailbox::open(tx, owner, id, view))
    }

    fn mark_read_in_view(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write_relaxed(|tx| ops::mailbox::mark_read_in_view(tx, owner, id, view))
    }

    fn disregard(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::disregard(tx, owner, id, view))
    }

    fn restore(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::restore(tx, owner, id, view))
    }

    fn correspondents(&self, owner: &DirectAddress) -> Result<Vec<Correspondent>, StoreError> {
        self.read(|tx| mailbox::correspondents(&mut tx.tx, owner))
    }

    fn refuse_delete(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::refuse_delete(tx, owner, id, view))
    }
}
