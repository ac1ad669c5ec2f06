//! A mailbox as its owner sees it through the portal: only the owner's own
//! entries, only those inside the retention period, with per-folder counts
//! and the correspondents the owner may answer.
//!
//! Retention hides, it never deletes: an entry older than the period leaves
//! every view, and stays in the store (`hisp mailbox show` reaches it) and
//! in the audit trail.

use time::{Duration, OffsetDateTime};

use crate::mailbox::Folder;
use hisp_address::DirectAddress;

/// The default retention period, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// When a view is looked at, and how far back it reaches. Built from the
/// caller's clock, so tests move time without sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxView {
    now: OffsetDateTime,
    retention: Duration,
}

impl MailboxView {
    /// A view at `now` showing entries that arrived (Inbox) or were sent
    /// (Sent) less than `retention_days` days before `now`.
    pub fn new(now: OffsetDateTime, retention_days: u32) -> MailboxView {
        MailboxView {
            now,
            retention: Duration::days(i64::from(retention_days)),
        }
    }

    /// The moment the view is taken at.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Entries stored at or before this moment are out of the view.
    pub fn cutoff(&self) -> OffsetDateTime {
        self.now - self.retention
    }

    /// Whether an entry stored at `received_at` is in the view.
    pub fn shows(&self, received_at: OffsetDateTime) -> bool {
        received_at > self.cutoff()
    }
}

/// How many entries one folder holds in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderCount {
    /// The folder.
    pub folder: Folder,
    /// Entries in it.
    pub total: u64,
    /// Of those, the ones not yet read.
    pub unread: u64,
}

/// Someone who has sent the owner a message, for choosing whom to write to
/// (only people who wrote first, over Direct: never an ordinary e-mail
/// address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correspondent {
    /// Their Direct address, from the From field of their newest message.
    pub address: DirectAddress,
    /// The display name of the newest of their messages that had one.
    pub name: Option<String>,
    /// When their newest message arrived.
    pub last_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_leaves_the_view_exactly_retention_days_after_it_arrived() {
        let arrived = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let view = |after: Duration| MailboxView::new(arrived + after, 30);
        assert!(view(Duration::days(30) - Duration::seconds(1)).shows(arrived));
        assert!(!view(Duration::days(30)).shows(arrived));
        assert!(!MailboxView::new(arrived, 0).shows(arrived));
    }
}
