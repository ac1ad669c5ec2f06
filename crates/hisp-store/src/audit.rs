//! The audit log: one event for every change of a message's state, every
//! portal login and every change to a portal account. Events are only ever
//! added, and each is chained to the one before it by a SHA-256 hash, so a
//! changed or removed event is found by [`Store::verify_audit_chain`](crate::Store::verify_audit_chain).

use std::fmt;

use time::OffsetDateTime;

use crate::message::{MessageId, MessageRecordId};
use hisp_address::DirectAddress;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// Committed to the queue (detail: direction, sender, recipients).
    Queued,
    /// An attempt failed and was put off (detail: the error, next attempt).
    Deferred,
    /// The queue entry finished.
    Completed,
    /// The queue entry was given up (detail: the reason).
    Failed,
    /// A recipient's tracking state moved (detail: recipient, from -> to).
    Tracked,
    /// Sealed (wrapped, signed, encrypted) for a destination.
    Sealed,
    /// Opened (decrypted, verified, trusted, unwrapped).
    Opened,
    /// Stored in a mailbox (detail: address, folder).
    Delivered,
    /// Quarantined (detail: reason code and text).
    Quarantined,
    /// An MDN was sent.
    MdnSent,
    /// A DSN was sent.
    DsnSent,
    /// A mailbox message was moved to another folder.
    Moved,
    /// A mailbox message was marked read.
    Read,
    /// An MDN or DSN about one of our messages moved its tracking (detail:
    /// recipient, disposition or action).
    MdnReceived,
    /// A duplicate, late or unknown MDN or DSN: no state changed (detail:
    /// what it reported and why it was ignored).
    MdnIgnored,
    /// A recipient failed for want of MDNs in time (detail: recipient, the
    /// state it was in, the timeout).
    TimedOut,
    /// A portal account was added (detail: notification settings).
    PortalUserAdded,
    /// A portal account's password was changed.
    PortalPasswordChanged,
    /// A portal account was disabled.
    PortalUserDisabled,
    /// A portal account's notification settings changed (detail: the new ones).
    PortalSettingsChanged,
    /// A portal login succeeded.
    Login,
    /// A portal login failed (detail: why: no such account, wrong
    /// password, account disabled).
    LoginFailed,
    /// An e-mail notice of new secure mail was queued for a portal user
    /// (detail: where to, the queued notice).
    NotificationQueued,
    /// The smart host took an e-mail notice of new secure mail (detail:
    /// where to, the smart host's reply).
    NotificationSent,
    /// A user asked to delete a mailbox message and was refused: nothing
    /// is ever deleted (detail: the entry and its folder).
    DeleteRefused,
    /// A claimed queue entry was given back unfinished (a stopping worker):
    /// it is due again (detail: the attempt).
    Released,
    /// An administrator made a pending queue entry due now (`hisp queue
    /// retry`; detail: when it was due before).
    RetryRequested,
    /// An inbound message the recipient's Inbox already holds (the same
    /// Message-ID from the same From, sent again by a sender that did not
    /// learn of the first delivery) was not filed twice (detail: the
    /// mailbox and the entry that holds it).
    Duplicate,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [AuditKind; 28] = [
        AuditKind::Queued,
        AuditKind::Deferred,
        AuditKind::Completed,
        AuditKind::Failed,
        AuditKind::Tracked,
        AuditKind::Sealed,
        AuditKind::Opened,
        AuditKind::Delivered,
        AuditKind::Quarantined,
        AuditKind::MdnSent,
        AuditKind::DsnSent,
        AuditKind::Moved,
        AuditKind::Read,
        AuditKind::MdnReceived,
        AuditKind::MdnIgnored,
        AuditKind::TimedOut,
        AuditKind::PortalUserAdded,
        AuditKind::PortalPasswordChanged,
        AuditKind::PortalUserDisabled,
        AuditKind::PortalSettingsChanged,
        AuditKind::Login,
        AuditKind::LoginFailed,
        AuditKind::NotificationQueued,
        AuditKind::NotificationSent,
        AuditKind::DeleteRefused,
        AuditKind::Released,
        AuditKind::RetryRequested,
        AuditKind::Duplicate,
    ];

    /// The name in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Queued => "queued",
            AuditKind::Deferred => "deferred",
            AuditKind::Completed => "completed",
            AuditKind::Failed => "failed",
            AuditKind::Tracked => "tracked",
            AuditKind::Sealed => "sealed",
            AuditKind::Opened => "opened",
            AuditKind::Delivered => "delivered",
            AuditKind::Quarantined => "quarantined",
            AuditKind::MdnSent => "mdn-sent",
            AuditKind::DsnSent => "dsn-sent",
            AuditKind::Moved => "moved",
            AuditKind::Read => "read",
            AuditKind::MdnReceived => "mdn-received",
            AuditKind::MdnIgnored => "mdn-ignored",
            AuditKind::TimedOut => "timed-out",
            AuditKind::PortalUserAdded => "portal-user-added",
            AuditKind::PortalPasswordChanged => "portal-password-changed",
            AuditKind::PortalUserDisabled => "portal-user-disabled",
            AuditKind::PortalSettingsChanged => "portal-settings-changed",
            AuditKind::Login => "login",
            AuditKind::LoginFailed => "login-failed",
            AuditKind::NotificationQueued => "notification-queued",
            AuditKind::NotificationSent => "notification-sent",
            AuditKind::DeleteRefused => "delete-refused",
            AuditKind::Released => "released",
            AuditKind::RetryRequested => "retry-requested",
            AuditKind::Duplicate => "duplicate",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Row id; events are numbered in the order written.
    pub id: i64,
    /// When it was written.
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: AuditKind,
    /// The Message-ID of the message concerned, if known.
    pub message_id: Option<MessageId>,
    /// The queued message concerned, if it was queued.
    pub message: Option<MessageRecordId>,
    /// The local address concerned (a mailbox's, a portal account's), if
    /// the event names one. Written since schema version 5.
    pub address: Option<DirectAddress>,
    /// What exactly happened; never message content or key material.
    pub detail: String,
    /// The SHA-256 chaining this event to the one before it; `None` only
    /// in a database damaged by hand.
    pub hash: Option<AuditHash>,
}

/// The SHA-256 of one audit event, over the hash of the event before it and
/// this event's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditHash(pub [u8; 32]);

impl fmt::Display for AuditHash {
    /// 64 lower-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Which events [`Store::audit_export`](crate::Store::audit_export) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events written at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events about this address: those naming it, and those naming
    /// no address that are about a message it sent, was sent or has in its
    /// mailbox.
    pub address: Option<DirectAddress>,
}

/// What [`Store::verify_audit_chain`](crate::Store::verify_audit_chain) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditCheck {
    /// Every event matches its hash and follows the one before it.
    Intact {
        /// How many events were checked.
        events: u64,
    },
    /// The chain breaks at this event: it, or an event before it, was
    /// changed or removed after it was written.
    Broken {
        /// The first event that does not match.
        id: i64,
        /// How many events before it were intact.
        intact: u64,
        /// What does not match.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_name_that_reads_back() {
        let mut names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::from_name(k.as_str()), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditKind::ALL.len());
        assert_eq!(AuditKind::TimedOut.as_str(), "timed-out");
    }

    #[test]
    fn a_hash_prints_as_64_hex_digits() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let text = AuditHash(bytes).to_string();
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("ab00") && text.ends_with("01"));
    }
}
