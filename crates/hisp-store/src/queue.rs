//! The durable queue: messages committed before the SMTP 250, claimed by
//! workers under a lease.
//!
//! A claim writes a lease (a random token and an expiry) on the queue row and
//! commits; the row stays invisible to other claimers until the lease expires.
//! A worker that dies simply lets its lease run out and the message is
//! claimed again, so delivery is at least once; [`complete`], [`retry_later`]
//! and [`fail`] only succeed while the caller still holds the lease, so a
//! worker that overran its lease cannot undo another's work. The lease lives
//! in the row rather than in a database lock, which is what lets a PostgreSQL
//! store claim with `SELECT ... FOR UPDATE SKIP LOCKED` and the same columns.
//!
//! [`complete`]: crate::Store::complete
//! [`retry_later`]: crate::Store::retry_later
//! [`fail`]: crate::Store::fail

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::expect::Expectation;
use crate::message::{MessageDirection, MessageId, MessageRecordId};
use crate::tracking::{RecipientRecord, TrackingState};
use hisp_address::{DirectAddress, Domain};

/// The row id of a queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueItemId(pub i64);

impl fmt::Display for QueueItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A worker's hold on a claimed queue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Random, unique to this claim.
    pub token: String,
    /// When the entry becomes claimable again if the worker has not finished.
    pub until: OffsetDateTime,
}

/// What shows that a worker still holds a claimed entry: the entry and its
/// claim's token (see [`QueueItem::held`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The queue entry.
    pub id: QueueItemId,
    /// The claim's token.
    pub token: String,
}

/// A claimed message: everything a worker needs to process it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// The queue entry.
    pub id: QueueItemId,
    /// The message.
    pub message: MessageRecordId,
    /// Which way it travels.
    pub direction: MessageDirection,
    /// Its Message-ID, if the header has one.
    pub message_id: Option<MessageId>,
    /// MAIL FROM; `None` for the null reverse-path.
    pub envelope_from: Option<DirectAddress>,
    /// What tracking expects of it (whether to request MDNs).
    pub expect: Expectation,
    /// The recipients with their tracking state.
    pub recipients: Vec<RecipientRecord>,
    /// The message as received, shared: the worker hands it to sealing,
    /// opening and the Sent copy without copying it.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// How many times it has been claimed, this claim included.
    pub attempts: u32,
    /// The error of the previous attempt, if any.
    pub last_error: Option<String>,
    /// This claim.
    pub lease: Lease,
}

impl QueueItem {
    /// This claim, for the moves only its holder may make
    /// ([`Store::track_steps_held`](crate::Store::track_steps_held)).
    pub fn held(&self) -> Held {
        Held {
            id: self.id,
            token: self.lease.token.clone(),
        }
    }

    /// Where an attempt at this entry goes: the distinct domains of the
    /// recipients still queued of an outbound message, in order. Inbound
    /// entries go nowhere on the network and have none. A claim with
    /// [`ClaimLimits::per_destination`] counts an entry against each of them.
    pub fn destinations(&self) -> Vec<Domain> {
        if self.direction != MessageDirection::Outbound {
            return Vec::new();
        }
        let mut out: Vec<Domain> = self
            .recipients
            .iter()
            .filter(|r| r.state == TrackingState::Queued)
            .map(|r| r.address.domain().clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What one claim ([`Store::claim_due_within`](crate::Store::claim_due_within))
/// may take: at most [`limit`](Self::limit) entries, and no entry that would
/// put one of its [destinations](QueueItem::destinations) over
/// [`per_destination`](Self::per_destination) entries in hand, counting
/// [`in_hand`](Self::in_hand) and the entries this claim takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Most entries this claim takes.
    pub limit: usize,
    /// Most entries in hand at once for one destination; 0 means no cap.
    pub per_destination: usize,
    /// The entries the caller holds now, per destination.
    pub in_hand: BTreeMap<Domain, usize>,
}

impl ClaimLimits {
    /// The destinations that may take no further entry now.
    pub fn full(&self) -> Vec<&Domain> {
        if self.per_destination == 0 {
            return Vec::new();
        }
        self.in_hand
            .iter()
            .filter(|(_, n)| **n >= self.per_destination)
            .map(|(d, _)| d)
            .collect()
    }

    /// Whether an entry going to `destinations` fits; if so it is counted
    /// in [`in_hand`](Self::in_hand).
    pub fn take(&mut self, destinations: &[Domain]) -> bool {
        let cap = self.per_destination;
        if cap > 0
            && destinations
                .iter()
                .any(|d| self.in_hand.get(d).copied().unwrap_or(0) >= cap)
        {
            return false;
        }
        for d in destinations {
            *self.in_hand.entry(d.clone()).or_insert(0) += 1;
        }
        true
    }
}

/// Rung by the store after a transaction that queued a message commits
/// ([`Store::on_enqueue`](crate::Store::on_enqueue)), so that a worker in the
/// same process takes it at once instead of at its next look. It runs on
/// the thread that committed, with the store's connection free again: it
/// must only signal (a `tokio::sync::Notify`, say), never call the store.
pub type QueueBell = Arc<dyn Fn() + Send + Sync>;

/// Which pending entries [`Store::retry_now`](crate::Store::retry_now) makes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySelection {
    /// One entry; it must be pending.
    One(QueueItemId),
    /// Every pending entry.
    All,
}

/// Where a queue entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueState {
    /// Waiting for its next attempt, or claimed by a worker.
    Pending,
    /// Finished: every recipient was handled.
    Done,
    /// Given up.
    Failed,
}

impl QueueState {
    /// The name in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Pending => "pending",
            QueueState::Done => "done",
            QueueState::Failed => "failed",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<QueueState> {
        match name {
            "pending" => Some(QueueState::Pending),
            "done" => Some(QueueState::Done),
            "failed" => Some(QueueState::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for QueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queue entry as listed (without the message bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The queue entry.
    pub id: QueueItemId,
    /// The message.
    pub message: MessageRecordId,
    /// Which way it travels.
    pub direction: MessageDirection,
    /// Its Message-ID, if the header has one.
    pub message_id: Option<MessageId>,
    /// MAIL FROM; `None` for the null reverse-path.
    pub envelope_from: Option<DirectAddress>,
    /// What tracking expects of it.
    pub expect: Expectation,
    /// The recipients with their tracking state.
    pub recipients: Vec<RecipientRecord>,
    /// Size of the message in bytes.
    pub size: u64,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// Pending, done or failed.
    pub state: QueueState,
    /// Claims so far.
    pub attempts: u32,
    /// When it is next due (pending entries).
    pub next_attempt_at: OffsetDateTime,
    /// Until when a worker holds it, if one does (the lease may have expired).
    pub leased_until: Option<OffsetDateTime>,
    /// The last error, or the reason it failed.
    pub last_error: Option<String>,
    /// When it was queued, to the millisecond (`None` for entries queued
    /// before schema version 8).
    pub queued_at: Option<OffsetDateTime>,
    /// When it was first claimed, to the millisecond; `None` before that.
    pub first_attempt_at: Option<OffsetDateTime>,
    /// When it was last claimed, to the millisecond; `None` before that.
    pub last_attempt_at: Option<OffsetDateTime>,
}
