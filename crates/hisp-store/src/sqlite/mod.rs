//! The embedded store: one SQLite file, `<data_dir>/hisp.db`, in WAL mode.
//!
//! Every call runs SQL against the file; nothing is cached in memory, so what
//! one process writes (the CLI) the next read of another (the daemon) sees.
//! The file holds private keys: it is created with mode 0600 (SQLite gives its
//! `-wal` and `-shm` files the same mode), and a wider mode found on an
//! existing file is narrowed.

mod anchors;
mod audit;
mod bundles;
mod cached;
mod directory;
mod errors;
mod files;
mod mailbox;
mod mailbox_view;
mod migrations;
mod portal_user;
mod quarantine;
mod queue;
mod rows;
mod tracking;
mod tx;
mod users;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::hooks::Action;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use time::OffsetDateTime;

use crate::anchor::{AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::audit::{AuditCheck, AuditEvent, AuditFilter, AuditKind};
use crate::bundle::{BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle};
use crate::cert::NewCertificate;
use crate::directory::{AddressRecord, CertificateRecord, DomainRecord, Owner};
use crate::error::{DatabaseErrorKind, Entity, StoreError};
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
use hisp_address::DirectAddress;
use hisp_address::Domain;
use ops::portal_user::LoginFailure;

pub use migrations::SCHEMA_VERSION;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "hisp.db";

/// How long a call waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. Cheap to share behind an `Arc`: one connection, used by
/// one call at a time.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Set by the connection's update hook when a row goes into `queue`;
    /// read and cleared under the connection's lock.
    queued: Arc<AtomicBool>,
    /// Rung after a transaction that queued something commits.
    bells: Mutex<Vec<QueueBell>>,
    /// Counts the rows of the directory and trust tables changed through
    /// this connection (the update hook); read under the connection's lock
    /// by `directory_version`, so never in the middle of a transaction.
    directory_changes: Arc<AtomicU64>,
    /// What opening the database found of its schema and applied to it.
    migration: MigrationReport,
    /// Whether the connection is at `synchronous=NORMAL` now (see
    /// [`Durability`]); read and changed under the connection's lock.
    sync_normal: AtomicBool,
}

/// How far a write's commit has reached when the call returns.
///
/// In WAL mode a commit at `synchronous=NORMAL` is in the log file but not
/// yet flushed to the disk: it survives the process being killed, and only
/// a power loss or a crash of the machine can undo it, and then only
/// together with every commit after it (the log is replayed in order up to
/// the last flushed frame). The next `FULL` commit flushes it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// `synchronous=FULL`: on the disk before the call returns. For what a
    /// reply promises: an SMTP 250 to DATA (RFC 5321 §6.1: the server takes
    /// responsibility for the message), a portal submission answered, an
    /// administrator's command done.
    Full,
    /// `synchronous=NORMAL`: the queue's own steps after the promise
    /// (claims, tracking, filing, audit of those steps). Undone by a power
    /// loss, a step is taken again: a claim lapses, a message is relayed or
    /// filed again, and the receiver files a message it holds already only
    /// once (the same Message-ID and From).
    Relaxed,
}

/// The tables whose changes move [`Store::directory_version`]: what parsed
/// keys and anchor stores are built from. (A row deleted by a foreign key's
/// ON DELETE CASCADE goes through the hook too.)
const DIRECTORY_TABLES: [&str; 5] = ["domains", "addresses", "certificates", "anchors", "bundles"];

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/hisp.db`; the data directory is
    /// created with mode 0700 if missing.
    pub fn open_in(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(&data_dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file at `path` and brings its
    /// schema up to date ([`SqliteStore::migration`] tells what that took).
    /// Sets `journal_mode=WAL`, `synchronous=FULL` and `foreign_keys=ON`. A
    /// database from a newer hisp, or whose schema history does not fit this
    /// one's migrations, is refused.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        files::prepare(path)?;
        // No SQLITE_OPEN_URI: a data_dir named `file:...` is a path, not a URI.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("opening"))?;
        configure(&conn)?;
        let migration = migrations::migrate(&mut conn, path)?;
        files::narrow_sidecars(path)?;
        let queued = Arc::new(AtomicBool::new(false));
        let flag = queued.clone();
        let directory_changes = Arc::new(AtomicU64::new(0));
        let changes = directory_changes.clone();
        conn.update_hook(Some(move |action: Action, _: &str, table: &str, _: i64| {
            if action == Action::SQLITE_INSERT && table == "queue" {
                flag.store(true, Ordering::Relaxed);
            }
            if DIRECTORY_TABLES.contains(&table) {
                changes.fetch_add(1, Ordering::Relaxed);
            }
        }))
        .map_err(StoreError::sqlite("watching the queue"))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            queued,
            bells: Mutex::new(Vec::new()),
            directory_changes,
            migration,
            sync_normal: AtomicBool::new(false),
        })
    }

    /// What opening the database did to its schema: the version found, the
    /// version now, and the migrations applied (none when it was current).
    /// `hisp store migrate` prints it.
    pub fn migration(&self) -> &MigrationReport {
        &self.migration
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn()
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .map_err(StoreError::sqlite("reading schema_version"))
    }

    /// The journal mode in force (`wal`).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        self.conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(StoreError::sqlite("reading journal_mode"))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: an
        // open transaction was rolled back when its guard dropped.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock taken up front, so
    /// concurrent writers wait instead of failing midway) and commits.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(Durability::Full, f)
    }

    /// [`write`](Self::write) for a step of the queue's own work, committed
    /// [`Durability::Relaxed`].
    fn write_relaxed<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_as(Durability::Relaxed, f)
    }

    fn write_as<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        // The level cannot change inside a transaction, so it is set before.
        let normal = durability == Durability::Relaxed;
        if self.sync_normal.load(Ordering::Relaxed) != normal {
            let level = if normal { "NORMAL" } else { "FULL" };
            conn.pragma_update(None, "synchronous", level)
                .map_err(StoreError::sqlite("setting synchronous"))?;
            self.sync_normal.store(normal, Ordering::Relaxed);
        }
        // Cleared under the lock: a rolled-back transaction's insert rings
        // nothing, and no other call's can be counted here.
        self.queued.store(false, Ordering::Relaxed);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting a transaction"))?;
        let value = f(&tx)?;
        tx.commit()
            .map_err(StoreError::sqlite("committing a transaction"))?;
        let queued = self.queued.swap(false, Ordering::Relaxed);
        drop(conn);
        if queued {
            self.ring();
        }
        Ok(value)
    }

    /// Rings every bell given to [`Store::on_enqueue`].
    fn ring(&self) {
        let bells = self.bells.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for bell in bells {
            bell();
        }
    }

    /// Runs `f` in a read transaction, so multi-query reads see one snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::sqlite("starting a transaction"))?;
        let value = f(&tx)?;
        tx.commit()
            .map_err(StoreError::sqlite("ending a transaction"))?;
        Ok(value)
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::sqlite("setting busy_timeout"))?;
    conn.set_prepared_statement_cache_capacity(cached::CAPACITY);
    // The query planner's stability guarantee: a cached statement keeps its
    // plan whatever values are bound. Without it SQLite recompiles a
    // statement whenever a bound integer it looked at while planning
    // changes (LIMIT ?, x = ?), which undid much of the statement cache.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(StoreError::sqlite(
        "setting the query planner stability guarantee",
    ))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(StoreError::sqlite("setting journal_mode=WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database {
            context: "setting journal_mode=WAL",
            kind: DatabaseErrorKind::Other,
            message: format!("journal_mode is {mode}"),
        });
    }
    // FULL: a committed transaction survives power loss, which the queue
    // (committed before the SMTP 250) depends on.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite("setting synchronous=FULL"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(StoreError::sqlite("setting foreign_keys=ON"))?;
    Ok(())
}

impl Store for SqliteStore {
    fn add_domain(
        &self,
        domain: &Domain,
        certificates: &[NewCertificate],
    ) -> Result<DomainRecord, StoreError> {
        self.write(|tx| directory::add_domain(tx, domain, certificates))
    }

    fn domain(&self, domain: &Domain) -> Result<DomainRecord, StoreError> {
        self.read(|tx| directory::domain(tx, domain))
    }

    fn domains(&self) -> Result<Vec<DomainRecord>, StoreError> {
        self.read(directory::domains)
    }

    fn remove_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        self.write(|tx| directory::remove_domain(tx, domain))
    }

    fn add_address(
        &self,
        address: &DirectAddress,
        certificates: &[NewCertificate],
    ) -> Result<AddressRecord, StoreError> {
        self.write(|tx| directory::add_address(tx, address, certificates))
    }

    fn address(&self, address: &DirectAddress) -> Result<AddressRecord, StoreError> {
        self.read(|tx| directory::address(tx, address))
    }

    fn addresses(&self, domain: Option<&Domain>) -> Result<Vec<AddressRecord>, StoreError> {
        self.read(|tx| directory::addresses(tx, domain))
    }

    fn remove_address(&self, address: &DirectAddress) -> Result<(), StoreError> {
        self.write(|tx| directory::remove_address(tx, address))
    }

    fn add_certificate(
        &self,
        owner: &Owner,
        certificate: &NewCertificate,
    ) -> Result<CertificateRecord, StoreError> {
        self.write(|tx| directory::add_certificate(tx, owner, certificate))
    }

    fn certificates(&self, owner: Option<&Owner>) -> Result<Vec<CertificateRecord>, StoreError> {
        self.read(|tx| directory::certificates(tx, owner))
    }

    fn add_anchors(
        &self,
        domain: &Domain,
        direction: Direction,
        anchors: &[NewAnchor],
    ) -> Result<Vec<AnchorRecord>, StoreError> {
        self.write(|tx| anchors::add(tx, domain, direction, anchors))
    }

    fn anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>, StoreError> {
        self.read(|tx| anchors::list(tx, domain, None))
    }

    fn anchors_for(&self, domain: &Domain, flow: Flow) -> Result<Vec<AnchorRecord>, StoreError> {
        self.read(|tx| anchors::list(tx, Some(domain), Some(flow)))
    }

    fn remove_anchor(
        &self,
        domain: &Domain,
        selector: &AnchorSelector,
    ) -> Result<AnchorRecord, StoreError> {
        self.write(|tx| anchors::remove(tx, domain, selector))
    }

    fn add_bundle(&self, bundle: &NewBundle) -> Result<BundleRecord, StoreError> {
        self.write(|tx| bundles::add(tx, bundle))
    }

    fn bundles(&self, domain: Option<&Domain>) -> Result<Vec<BundleRecord>, StoreError> {
        self.read(|tx| bundles::list(tx, domain))
    }

    fn remove_bundle(&self, domain: &Domain, source: &BundleSource) -> Result<(), StoreError> {
        self.write(|tx| bundles::remove(tx, domain, source))
    }

    fn record_bundle_fetch(&self, id: BundleId, fetch: &BundleFetch) -> Result<(), StoreError> {
        self.write(|tx| bundles::record_fetch(tx, id, fetch))
    }

    fn add_user(&self, name: &UserName, password: &str) -> Result<Account, StoreError> {
        // Hash outside the write lock: it takes tens of milliseconds on purpose.
        let hash = password::hash(password)?;
        self.write(|tx| users::add(tx, name, &hash))
    }

    fn verify_password(&self, name: &UserName, password: &str) -> Result<Account, StoreError> {
        let Some(hash) = self.read(|tx| users::password_hash(tx, name))? else {
            password::verify_nobody(password);
            return Err(StoreError::BadCredentials);
        };
        if !password::verify(password, &hash)? {
            return Err(StoreError::BadCredentials);
        }
        self.read(|tx| users::account(tx, name))
    }

    fn user(&self, name: &UserName) -> Result<Account, StoreError> {
        self.read(|tx| users::account(tx, name))
    }

    fn users(&self) -> Result<Vec<Account>, StoreError> {
        self.read(users::accounts)
    }

    fn grant(&self, name: &UserName, grant: &Grant) -> Result<Account, StoreError> {
        self.write(|tx| users::grant(tx, name, grant))
    }

    fn set_request_final_delivery(&self, name: &UserName, on: bool) -> Result<Account, StoreError> {
        self.write(|tx| users::set_request_final_delivery(tx, name, on))
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
                &mut { tx },
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
                &mut { tx },
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
        self.read(|tx| ops::queue::queued_once(&mut { tx }, mark))
    }

    fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueueItem>, StoreError> {
        self.write_relaxed(|tx| ops::queue::claim_due(&mut { tx }, now, lease, limit))
    }

    fn release_leases(&self) -> Result<usize, StoreError> {
        self.write_relaxed(queue::release_leases)
    }

    fn claim_due_within(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limits: &ClaimLimits,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let mut limits = limits.clone();
        self.write_relaxed(|tx| ops::queue::claim_due_within(&mut { tx }, now, lease, &mut limits))
    }

    fn renew_lease(
        &self,
        item: &QueueItem,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        self.write_relaxed(|tx| ops::queue::renew_lease(&mut { tx }, item, now, lease))
    }

    fn release(&self, item: &QueueItem) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::release(&mut { tx }, item))
    }

    fn retry_now(
        &self,
        selection: RetrySelection,
        at: OffsetDateTime,
    ) -> Result<Vec<QueueItemId>, StoreError> {
        self.write(|tx| ops::queue::retry_now(&mut { tx }, selection, at))
    }

    fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.read(queue::next_due)
    }

    fn on_enqueue(&self, bell: QueueBell) {
        self.bells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(bell);
    }

    fn outside_changes(&self) -> Result<i64, StoreError> {
        self.conn()
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(StoreError::sqlite("reading data_version"))
    }

    fn directory_version(&self) -> Result<DirectoryVersion, StoreError> {
        // Both halves under the connection's lock: a transaction of this
        // store is either wholly counted or not at all.
        let conn = self.conn();
        let outside = conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(StoreError::sqlite("reading data_version"))?;
        Ok(DirectoryVersion {
            local: self.directory_changes.load(Ordering::Relaxed),
            outside,
        })
    }

    fn complete(&self, item: &QueueItem) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::complete(&mut { tx }, item))
    }

    fn retry_later(
        &self,
        item: &QueueItem,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::retry_later(&mut { tx }, item, next_attempt_at, error))
    }

    fn fail(&self, item: &QueueItem, reason: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::queue::fail(&mut { tx }, item, reason, at))
    }

    fn queue(&self, state: Option<QueueState>) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|tx| queue::entries(tx, state))
    }

    fn track(
        &self,
        recipient: RecipientId,
        next: TrackingState,
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::tracking::track(&mut { tx }, recipient, next, at, reason))
    }

    fn track_failed(
        &self,
        recipient: RecipientId,
        at: OffsetDateTime,
        reason: &str,
        status: Option<DeliveryStatus>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| {
            ops::tracking::track_failed(&mut { tx }, recipient, at, reason, status)
        })
    }

    fn track_steps(
        &self,
        recipient: RecipientId,
        steps: &[TrackingState],
        at: OffsetDateTime,
        reason: Option<&str>,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| {
            ops::tracking::track_steps(&mut { tx }, recipient, steps, at, reason)
        })
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
            let mut tx = tx;
            ops::tracking::in_hand(&mut tx, held)?;
            ops::tracking::track_steps(&mut tx, recipient, steps, at, reason)
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
            let mut tx = tx;
            ops::tracking::in_hand(&mut tx, held)?;
            ops::tracking::track_failed(&mut tx, recipient, at, reason, status)
        })
    }

    fn note_overtaken_step(
        &self,
        recipient: RecipientId,
        step: TrackingState,
        at: OffsetDateTime,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| {
            ops::tracking::note_overtaken_step(&mut { tx }, recipient, step, at)
        })
    }

    fn tracking(&self, message_id: &MessageId) -> Result<Vec<RecipientRecord>, StoreError> {
        self.read(|tx| queue::tracking(tx, message_id))
    }

    fn recipient(&self, id: RecipientId) -> Result<RecipientRecord, StoreError> {
        self.read(|tx| ops::tracking::recipient(&mut { tx }, id))
    }

    fn overdue(&self, relayed_before: OffsetDateTime) -> Result<Vec<RecipientRecord>, StoreError> {
        self.read(|tx| tracking::overdue(tx, relayed_before))
    }

    fn unnotified_failures(&self) -> Result<Vec<RecipientRecord>, StoreError> {
        self.read(tracking::unnotified_failures)
    }

    fn notify_sender(
        &self,
        sender: &DirectAddress,
        notice: &[u8],
        recipients: &[RecipientId],
        at: OffsetDateTime,
    ) -> Result<Option<MailboxEntryId>, StoreError> {
        self.write_relaxed(|tx| {
            ops::tracking::notify_sender(&mut { tx }, sender, notice, recipients, at)
        })
    }

    fn tracked_messages(&self, filter: TrackFilter) -> Result<Vec<TrackedMessage>, StoreError> {
        self.read(|tx| tracking::tracked_messages(tx, filter))
    }

    fn tracked_message(&self, message_id: &MessageId) -> Result<Vec<TrackedMessage>, StoreError> {
        self.read(|tx| tracking::tracked_message(tx, message_id))
    }

    fn deliver_to_mailbox(
        &self,
        address: &DirectAddress,
        bytes: &[u8],
        folder: Folder,
        received_at: OffsetDateTime,
    ) -> Result<MailboxEntryId, StoreError> {
        self.write(|tx| ops::mailbox::deliver(&mut { tx }, address, bytes, folder, received_at))
    }

    fn deliver_to_mailbox_once(
        &self,
        address: &DirectAddress,
        bytes: &[u8],
        folder: Folder,
        received_at: OffsetDateTime,
    ) -> Result<Option<MailboxEntryId>, StoreError> {
        self.write_relaxed(|tx| {
            ops::mailbox::deliver_once(&mut { tx }, address, bytes, folder, received_at)
        })
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
                &mut { tx },
                recipient,
                address,
                bytes,
                at,
                if_filed,
                if_missing,
                notice,
            )
        })
    }

    fn portal_notice_sent(
        &self,
        recipient: RecipientId,
        at: OffsetDateTime,
        reply: &str,
    ) -> Result<RecipientRecord, StoreError> {
        self.write_relaxed(|tx| ops::filing::portal_notice_sent(&mut { tx }, recipient, at, reply))
    }

    fn mailbox(
        &self,
        address: &DirectAddress,
        folder: Folder,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        self.read(|tx| mailbox::list(tx, address, folder))
    }

    fn read_message(&self, id: MailboxEntryId) -> Result<MailboxMessage, StoreError> {
        self.read(|tx| ops::mailbox::read(&mut { tx }, id))
    }

    fn mark_read(&self, id: MailboxEntryId) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::mailbox::mark_read(&mut { tx }, id))
    }

    fn move_to(&self, id: MailboxEntryId, folder: Folder) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::move_to(&mut { tx }, id, folder))
    }

    fn quarantine(
        &self,
        bytes: &[u8],
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
    ) -> Result<QuarantineId, StoreError> {
        self.write(|tx| ops::quarantine::add(&mut { tx }, bytes, reason, detail, envelope))
    }

    fn quarantine_queued(
        &self,
        message: MessageRecordId,
        reason: QuarantineReason,
        detail: &str,
        envelope: &Envelope,
    ) -> Result<QuarantineId, StoreError> {
        self.write_relaxed(|tx| {
            ops::quarantine::add_queued(&mut { tx }, message, reason, detail, envelope)
        })
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
            ops::filing::quarantine_inbound(
                &mut { tx },
                message,
                reason,
                detail,
                envelope,
                recipients,
                at,
            )
        })
    }

    fn quarantined(&self) -> Result<Vec<QuarantineRecord>, StoreError> {
        self.read(quarantine::list)
    }

    fn quarantined_message(&self, id: QuarantineId) -> Result<QuarantinedMessage, StoreError> {
        self.read(|tx| quarantine::message(tx, id))
    }

    fn audit(
        &self,
        kind: AuditKind,
        message_id: Option<&MessageId>,
        message: Option<MessageRecordId>,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.write_relaxed(|tx| ops::audit::audit(&mut { tx }, kind, message_id, message, detail))
    }

    fn audit_events(&self, message_id: &MessageId) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|tx| audit::events(tx, message_id))
    }

    fn audit_export(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|tx| audit::export(tx, filter))
    }

    fn verify_audit_chain(&self) -> Result<AuditCheck, StoreError> {
        self.read(audit::verify_chain)
    }

    fn add_portal_user(
        &self,
        address: &DirectAddress,
        password: &str,
        settings: &NotifySettings,
    ) -> Result<PortalUser, StoreError> {
        // Hash outside the write lock: it takes tens of milliseconds on purpose.
        let hash = password::hash(password)?;
        self.write(|tx| ops::portal_user::add(&mut { tx }, address, &hash, settings))
    }

    fn portal_user(&self, address: &DirectAddress) -> Result<PortalUser, StoreError> {
        self.read(|tx| portal_user::user(tx, address))
    }

    fn portal_users(&self) -> Result<Vec<PortalUser>, StoreError> {
        self.read(portal_user::users)
    }

    fn set_portal_password(
        &self,
        address: &DirectAddress,
        password: &str,
    ) -> Result<PortalUser, StoreError> {
        let hash = password::hash(password)?;
        self.write(|tx| ops::portal_user::set_password(&mut { tx }, address, &hash))
    }

    fn disable_portal_user(&self, address: &DirectAddress) -> Result<PortalUser, StoreError> {
        self.write(|tx| ops::portal_user::disable(&mut { tx }, address))
    }

    fn set_portal_settings(
        &self,
        address: &DirectAddress,
        settings: &NotifySettings,
    ) -> Result<PortalUser, StoreError> {
        self.write(|tx| ops::portal_user::set_settings(&mut { tx }, address, settings))
    }

    fn verify_portal_login(
        &self,
        address: &DirectAddress,
        password: &str,
    ) -> Result<PortalUser, StoreError> {
        let stored = self.read(|tx| portal_user::password_hash(tx, address))?;
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
        self.write(|tx| ops::portal_user::audit_login(&mut { tx }, address, failure))?;
        match failure {
            None => self.read(|tx| portal_user::user(tx, address)),
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
        self.read(|tx| audit::failed_logins_since(tx, address, since.unix_timestamp()))
    }

    fn folder_counts(
        &self,
        owner: &DirectAddress,
        view: &MailboxView,
    ) -> Result<Vec<FolderCount>, StoreError> {
        self.read(|tx| mailbox_view::counts(tx, owner, view))
    }

    fn folder_view(
        &self,
        owner: &DirectAddress,
        folder: Folder,
        view: &MailboxView,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        self.read(|tx| mailbox_view::folder(tx, owner, folder, view))
    }

    fn view_entry(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.read(|tx| ops::mailbox::view_entry(&mut { tx }, owner, id, view))
    }

    fn open_message(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxMessage, StoreError> {
        self.write_relaxed(|tx| ops::mailbox::open(&mut { tx }, owner, id, view))
    }

    fn mark_read_in_view(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write_relaxed(|tx| ops::mailbox::mark_read_in_view(&mut { tx }, owner, id, view))
    }

    fn disregard(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::disregard(&mut { tx }, owner, id, view))
    }

    fn restore(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::restore(&mut { tx }, owner, id, view))
    }

    fn correspondents(&self, owner: &DirectAddress) -> Result<Vec<Correspondent>, StoreError> {
        self.read(|tx| mailbox_view::correspondents(tx, owner))
    }

    fn refuse_delete(
        &self,
        owner: &DirectAddress,
        id: MailboxEntryId,
        view: &MailboxView,
    ) -> Result<MailboxEntry, StoreError> {
        self.write(|tx| ops::mailbox::refuse_delete(&mut { tx }, owner, id, view))
    }
}
