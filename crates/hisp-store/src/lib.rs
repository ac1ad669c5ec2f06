//! The store of hisp: local domains, addresses and their certificates and
//! keys, trust anchors and bundles, submission accounts, the durable queue
//! with per-recipient tracking, mailboxes, quarantine and the audit log;
//! portal accounts, the owner's views of a mailbox and the audit hash chain
//! that the patient portal stands on.
//!
//! [`Store`] is the interface; [`SqliteStore`] is the embedded implementation
//! (one file, `<data_dir>/hisp.db`). Names are parsed at the edge into
//! [`Domain`] and [`DirectAddress`]; certificates into [`NewCertificate`] and
//! [`NewAnchor`], which read subject, serial and fingerprint once.
//!
//! Nothing is cached: every call reads the database, so an anchor removed by
//! the CLI is gone for a running daemon on its next read. Callers that keep
//! what they built from keys, anchors and bundles check
//! [`Store::directory_version`] before each use.
//!
//! Calls are synchronous. [`SqliteStore`] is `Send + Sync` (one connection
//! behind a mutex), so it can be shared as `Arc<dyn Store>`; async code calls
//! it from `spawn_blocking` or a worker thread. Writes take SQLite's write
//! lock up front and wait up to 10 s for another process holding it.

mod anchor;
mod audit;
mod bundle;
mod cert;
#[cfg(test)]
mod conformance;
mod copy;
mod directory;
mod error;
mod expect;
mod filing;
mod mailbox;
mod mailbox_view;
mod message;
mod migration;
mod ops;
mod password;
mod portal_user;
mod postgres;
mod quarantine;
mod queue;
mod retry;
mod sqlite;
mod store;
mod tracking;
mod tx;
mod user;
mod version;

pub use anchor::{AnchorId, AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
pub use audit::{AuditCheck, AuditEvent, AuditFilter, AuditHash, AuditKind};
pub use bundle::{BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle, MIN_REFRESH_SECS};
pub use cert::{CertInfo, CertUsage, Fingerprint, NewCertificate, PrivateKeyPem, Serial};
pub use copy::{
    check_sqlite_against_postgres, copy_sqlite_to_postgres, sqlite_file, CheckReport, CopyError,
    CopyReport, TableCheck, TableCount,
};
pub use directory::{AddressRecord, CertificateId, CertificateRecord, DomainRecord, Owner};
pub use error::{DatabaseErrorKind, Entity, StoreError};
pub use expect::Expectation;
pub use filing::{Answer, Filing, NewMailNotice};
pub use hisp_address::{AddressError, DirectAddress, Domain};
pub use mailbox::{Folder, MailboxEntry, MailboxEntryId, MailboxMessage};
pub use mailbox_view::{Correspondent, FolderCount, MailboxView, DEFAULT_RETENTION_DAYS};
pub use message::{Envelope, HeaderSummary, MessageDirection, MessageId, MessageRecordId};
pub use migration::{AppliedMigration, MigrationReport};
pub use password::MIN_PASSWORD_LEN;
pub use portal_user::{EmailAddress, NotifySettings, PortalUser, PortalUserId};
pub use postgres::{
    default_pool_size, InstanceLock, Kept, PostgresPool, PostgresStore, PostgresUrl, SslMode,
    SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION,
};
pub use quarantine::{QuarantineId, QuarantineReason, QuarantineRecord, QuarantinedMessage};
pub use queue::{
    ClaimLimits, Held, Lease, QueueBell, QueueEntry, QueueItem, QueueItemId, QueueState,
    RetrySelection,
};
pub use retry::{retry, RetryPolicy};
pub use sqlite::{SqliteStore, DB_FILE, SCHEMA_VERSION};
pub use store::Store;
pub use tracking::{
    DeliveryStatus, RecipientId, RecipientRecord, TrackFilter, TrackedMessage, TrackingState,
};
pub use user::{Account, Grant, UserId, UserName};
pub use version::DirectoryVersion;
