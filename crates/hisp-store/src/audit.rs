//! The audit log: one event for every change of a message's state. Events
//! are only ever added.

use std::fmt;

use time::OffsetDateTime;

use crate::message::{MessageId, MessageRecordId};

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
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [AuditKind; 16] = [
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
    /// What exactly happened; never message content or key material.
    pub detail: String,
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
}
