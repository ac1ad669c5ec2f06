//! The errors of the store, by cause.

use std::fmt;
use std::path::PathBuf;

/// The kinds of thing the store holds, for naming them in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A local domain.
    Domain,
    /// A local Direct address.
    Address,
    /// A certificate of a local address or domain.
    Certificate,
    /// A trust anchor of a local domain.
    Anchor,
    /// A trust bundle of a local domain.
    Bundle,
    /// A submission account.
    User,
    /// A queued message.
    Message,
    /// A queue entry.
    QueueItem,
    /// A recipient of a queued message.
    Recipient,
    /// A message in a mailbox.
    MailboxMessage,
    /// A quarantined message.
    Quarantined,
    /// A portal account.
    PortalUser,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Domain => "domain",
            Entity::Address => "address",
            Entity::Certificate => "certificate",
            Entity::Anchor => "anchor",
            Entity::Bundle => "bundle",
            Entity::User => "user",
            Entity::Message => "message",
            Entity::QueueItem => "queue item",
            Entity::Recipient => "recipient",
            Entity::MailboxMessage => "mailbox message",
            Entity::Quarantined => "quarantined message",
            Entity::PortalUser => "portal user",
        })
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing is not in the store.
    #[error("{entity} {name} not found")]
    NotFound {
        /// What was looked for.
        entity: Entity,
        /// How it was named (domain, address, fingerprint, ...).
        name: String,
    },
    /// The thing is already in the store.
    #[error("{entity} {name} already exists")]
    Duplicate {
        /// What was added.
        entity: Entity,
        /// How it is named.
        name: String,
    },
    /// A value given to the store is not acceptable (bad syntax, a certificate
    /// that does not parse, a key that does not match its certificate).
    #[error("invalid {what} '{value}': {reason}")]
    Invalid {
        /// What kind of value it is ("domain", "address", "certificate", ...).
        what: &'static str,
        /// The value, or a description of it; never key material.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The thing cannot be removed while others depend on it.
    #[error("{entity} {name} is still in use: {reason}")]
    InUse {
        /// What was to be removed.
        entity: Entity,
        /// How it is named.
        name: String,
        /// What still depends on it, and what to do.
        reason: String,
    },
    /// A selector matched more than one thing where one was meant.
    #[error("{entity} {name} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        /// What was selected.
        entity: Entity,
        /// The selector as given.
        name: String,
        /// What it matched (for anchors: their fingerprints).
        candidates: Vec<String>,
    },
    /// The user name or password is wrong. Which of the two is not said, so
    /// a login failure does not tell whether an account exists.
    #[error("authentication failed: wrong user name or password")]
    BadCredentials,
    /// The account is disabled: it cannot log in even with the right
    /// password. Only said after the password was checked, so it does not
    /// tell a guesser that the account exists.
    #[error("{entity} {name} is disabled")]
    Disabled {
        /// What kind of account.
        entity: Entity,
        /// How it is named.
        name: String,
    },
    /// A password could not be hashed or a stored hash could not be read.
    #[error("password hashing failed: {reason}")]
    Password {
        /// What failed.
        reason: String,
    },
    /// A tracking state move that the protocol does not allow.
    #[error("a recipient cannot move from {from} to {to}")]
    Transition {
        /// The current state.
        from: &'static str,
        /// The refused next state.
        to: &'static str,
    },
    /// A worker's lease on a queue entry expired and another worker claimed
    /// it (or it was finished): the caller must drop its work on it.
    #[error(
        "queue item {item} is no longer held by this worker: its lease expired or it was finished"
    )]
    LeaseLost {
        /// The queue entry.
        item: i64,
    },
    /// Another live process runs as the same instance on a database shared
    /// by several instances.
    #[error(
        "another hisp serve is running as instance '{instance}' on this database: give each instance its own [store] instance name"
    )]
    InstanceRunning {
        /// The instance name.
        instance: String,
    },
    /// The database was written by a newer hisp.
    #[error(
        "the database {database} has schema version {found}, but this hisp knows versions up to {known}: use a newer hisp"
    )]
    NewerSchema {
        /// The database: its file, or its URL without a password.
        database: String,
        /// The version found in it.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database's schema history does not fit this build's migrations:
    /// a migration changed after it was applied, or a version missing below
    /// one that was applied.
    #[error(
        "the schema history of {database} does not fit this hisp at version {version}: {reason}"
    )]
    SchemaMismatch {
        /// The database: its file, or its URL without a password.
        database: String,
        /// The first version that does not fit.
        version: i64,
        /// What does not fit.
        reason: String,
    },
    /// A file or directory of the store could not be created or read.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("create the directory", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database failed: what the store was doing, the kind of failure
    /// (the same for every backend, see [`DatabaseErrorKind`]) and the
    /// backend's own message.
    #[error("database error while {context}: {message}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// What kind of failure it was; [`StoreError::is_retryable`] reads it.
        kind: DatabaseErrorKind,
        /// The backend's message ("database is locked", ...).
        message: String,
    },
}

/// What kind of failure a [`StoreError::Database`] is, named alike for every
/// backend, so that a caller decides whether to run a call again without
/// knowing which database is underneath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseErrorKind {
    /// Another connection held a lock the call needed for longer than the
    /// store waits (SQLite's SQLITE_BUSY and SQLITE_LOCKED, PostgreSQL's
    /// lock_not_available): the call was rolled back and may succeed once
    /// the other lets go.
    Busy,
    /// The transaction read data that another transaction changed before it
    /// could write, and was rolled back (PostgreSQL's serialization_failure
    /// and deadlock_detected, SQLite's SQLITE_BUSY_SNAPSHOT): run again, it
    /// reads the new data.
    Serialization,
    /// The connection to the database server broke or was closed by the
    /// server.
    ConnectionLost,
    /// A constraint of the schema refused the change (UNIQUE, FOREIGN KEY,
    /// CHECK, NOT NULL, or a trigger's refusal): running it again gives the
    /// same answer.
    Constraint,
    /// Anything else (a damaged file, a full disk, a statement the schema
    /// does not fit): not helped by running again.
    Other,
}

impl DatabaseErrorKind {
    /// Whether the same call may succeed when run again: busy, serialization
    /// failure and connection lost. A store call is one transaction, so a
    /// failed one left nothing behind to undo.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            DatabaseErrorKind::Busy
                | DatabaseErrorKind::Serialization
                | DatabaseErrorKind::ConnectionLost
        )
    }
}

impl fmt::Display for DatabaseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatabaseErrorKind::Busy => "busy",
            DatabaseErrorKind::Serialization => "serialization failure",
            DatabaseErrorKind::ConnectionLost => "connection lost",
            DatabaseErrorKind::Constraint => "constraint violation",
            DatabaseErrorKind::Other => "other",
        })
    }
}

impl StoreError {
    /// Whether the call that failed may succeed when run again: a database
    /// failure of a retryable kind ([`DatabaseErrorKind::is_retryable`]).
    /// Callers retry these with [`retry`](crate::retry()).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database { kind, .. } if kind.is_retryable())
    }

    /// The kind of database failure, when this is one.
    pub fn database_kind(&self) -> Option<DatabaseErrorKind> {
        match self {
            StoreError::Database { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether this error says the thing was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Whether this error says a login failed.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(self, StoreError::BadCredentials)
    }

    /// Whether this error is a refused tracking move (for an MDN or DSN: a
    /// duplicate or a late one, to be ignored).
    pub fn is_transition(&self) -> bool {
        matches!(self, StoreError::Transition { .. })
    }

    /// Whether this error says the thing already exists.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StoreError::Duplicate { .. })
    }
}

/// A refused domain or address is an invalid value like any other the store
/// refuses, so callers that `?` a parse into `StoreError` keep seeing
/// [`StoreError::Invalid`] with `what` set to "domain" or "address".
impl From<hisp_address::AddressError> for StoreError {
    fn from(e: hisp_address::AddressError) -> Self {
        let what = match e {
            hisp_address::AddressError::InvalidDomain { .. } => "domain",
            hisp_address::AddressError::InvalidAddress { .. } => "address",
        };
        StoreError::Invalid {
            what,
            value: e.value().to_string(),
            reason: e.reason().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DirectAddress, Domain, Grant};

    #[test]
    fn refused_names_are_invalid_values_naming_domain_or_address() {
        let e = StoreError::from(Domain::parse("a_b.example").unwrap_err());
        assert_eq!(
            e.to_string(),
            "invalid domain 'a_b.example': the label 'a_b' may hold only letters, digits and '-'"
        );
        assert!(matches!(e, StoreError::Invalid { what: "domain", .. }));
        let e = StoreError::from(DirectAddress::parse("alice").unwrap_err());
        assert_eq!(e.to_string(), "invalid address 'alice': it has no '@'");
        match Grant::parse("@a..b") {
            Err(StoreError::Invalid {
                what,
                value,
                reason,
            }) => {
                assert_eq!((what, value.as_str()), ("domain", "a..b"));
                assert_eq!(reason, "the domain has an empty label");
            }
            other => panic!("{other:?}"),
        }
    }
}
