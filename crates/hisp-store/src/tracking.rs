//! Per-recipient tracking of a message: where each recipient's copy is in
//! its life, following the Implementation Guide for Delivery Notification in
//! Direct 1.0 (processed MDN, then dispatched MDN when final delivery was
//! requested, or a failure).

use std::fmt;

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::expect::Expectation;
use crate::message::{MessageDirection, MessageId, MessageRecordId};
use hisp_address::DirectAddress;

/// Where one recipient's copy of a message is.
///
/// The allowed moves are the methods; anything else is refused with
/// [`StoreError::Transition`]:
///
/// ```text
/// queued ──relayed──> relayed ──processed──> processed ──dispatched──> dispatched
///   │                   │  └──dispatched──────────────────────────────────┘ │
///   │                   │                      │                            │
///   ├──delivered (local)│                      ├──delivered (no final       ├──delivered
///   └──failed           └──failed              │   delivery asked)          │
///                                              └──failed                    │
/// ```
///
/// `failed` is final; so is `delivered`, but for a failure report that
/// follows a processed MDN (see [`TrackingState::failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackingState {
    /// Committed to the queue; nothing sent yet.
    Queued,
    /// Handed to the destination HISP (its SMTP server said 250).
    Relayed,
    /// The destination HISP sent a `processed` MDN.
    Processed,
    /// The destination sent a `dispatched` MDN: in the recipient's hands.
    Dispatched,
    /// Done: in a local mailbox, or confirmed as far as the sender asked.
    Delivered,
    /// Will not be delivered: refused, a failure DSN/MDN, or timed out.
    Failed,
}

impl TrackingState {
    /// Every state, in life order.
    pub const ALL: [TrackingState; 6] = [
        TrackingState::Queued,
        TrackingState::Relayed,
        TrackingState::Processed,
        TrackingState::Dispatched,
        TrackingState::Delivered,
        TrackingState::Failed,
    ];

    /// The name in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingState::Queued => "queued",
            TrackingState::Relayed => "relayed",
            TrackingState::Processed => "processed",
            TrackingState::Dispatched => "dispatched",
            TrackingState::Delivered => "delivered",
            TrackingState::Failed => "failed",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<TrackingState> {
        TrackingState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether no move leaves this state.
    pub fn is_final(self) -> bool {
        matches!(self, TrackingState::Delivered | TrackingState::Failed)
    }

    /// Queued -> relayed: the destination HISP accepted the message.
    pub fn relayed(self) -> Result<TrackingState, StoreError> {
        self.go(
            TrackingState::Relayed,
            matches!(self, TrackingState::Queued),
        )
    }

    /// Relayed -> processed: a `processed` MDN arrived.
    pub fn processed(self) -> Result<TrackingState, StoreError> {
        self.go(
            TrackingState::Processed,
            matches!(self, TrackingState::Relayed),
        )
    }

    /// Relayed or processed -> dispatched: a `dispatched` MDN arrived (it may
    /// overtake the `processed` one).
    pub fn dispatched(self) -> Result<TrackingState, StoreError> {
        self.go(
            TrackingState::Dispatched,
            matches!(self, TrackingState::Relayed | TrackingState::Processed),
        )
    }

    /// Queued (local delivery), processed (no final delivery asked) or
    /// dispatched -> delivered.
    pub fn delivered(self) -> Result<TrackingState, StoreError> {
        self.go(
            TrackingState::Delivered,
            matches!(
                self,
                TrackingState::Queued | TrackingState::Processed | TrackingState::Dispatched
            ),
        )
    }

    /// Queued, relayed or processed -> failed; also delivered -> failed, for
    /// a failure MDN that follows the processed MDN which completed a
    /// recipient whose sender asked for no final delivery (Implementation
    /// Guide for Delivery Notification in Direct 1.0: a HISP that cannot
    /// deliver after processing sends processed, then failed). The caller
    /// decides when that applies; a dispatched MDN already says the
    /// recipient has the message, so dispatched never fails.
    pub fn failed(self) -> Result<TrackingState, StoreError> {
        self.go(
            TrackingState::Failed,
            matches!(
                self,
                TrackingState::Queued
                    | TrackingState::Relayed
                    | TrackingState::Processed
                    | TrackingState::Delivered
            ),
        )
    }

    /// Whether a recipient in this state has gone past `step` in life
    /// order without failing: dispatched and delivered are past processed
    /// (a `dispatched` MDN may overtake the `processed` one).
    pub fn went_past(self, step: TrackingState) -> bool {
        let index = |s: TrackingState| TrackingState::ALL.iter().position(|x| *x == s);
        self != TrackingState::Failed && step != TrackingState::Failed && index(self) > index(step)
    }

    /// The move to `next` through its method.
    pub fn to(self, next: TrackingState) -> Result<TrackingState, StoreError> {
        match next {
            TrackingState::Queued => self.go(next, false),
            TrackingState::Relayed => self.relayed(),
            TrackingState::Processed => self.processed(),
            TrackingState::Dispatched => self.dispatched(),
            TrackingState::Delivered => self.delivered(),
            TrackingState::Failed => self.failed(),
        }
    }

    fn go(self, next: TrackingState, allowed: bool) -> Result<TrackingState, StoreError> {
        if allowed {
            Ok(next)
        } else {
            Err(StoreError::Transition {
                from: self.as_str(),
                to: next.as_str(),
            })
        }
    }
}

impl fmt::Display for TrackingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The row id of one recipient of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipientId(pub i64);

/// One recipient of a queued message and where its copy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRecord {
    /// Row id.
    pub id: RecipientId,
    /// The message.
    pub message: MessageRecordId,
    /// The message's Message-ID, if it has one.
    pub message_id: Option<MessageId>,
    /// The recipient.
    pub address: DirectAddress,
    /// The current state.
    pub state: TrackingState,
    /// When each state was reached, in [`TrackingState::ALL`] order (`None`:
    /// not reached).
    pub reached_at: [Option<OffsetDateTime>; 6],
    /// Why it failed, or the last note given with a move.
    pub reason: Option<String>,
    /// When the sender was sent the final notice (a DSN) about this
    /// recipient's failure; `None` until then. Set once, by
    /// [`notify_sender`](crate::Store::notify_sender).
    pub notified_at: Option<OffsetDateTime>,
    /// MAIL FROM of the message; `None` for the null reverse-path.
    pub envelope_from: Option<DirectAddress>,
    /// Which way the message travels.
    pub direction: MessageDirection,
    /// What tracking expects of the message.
    pub expect: Expectation,
    /// For a failed recipient, the RFC 3463 status its refusal carried (a
    /// destination's `550 5.1.1`), the Status of the DSN that tells its
    /// sender; `None` when none did.
    pub status: Option<DeliveryStatus>,
}

/// An RFC 3463 enhanced status code, `class.subject.detail` (RFC 3463 §2:
/// class 2, 4 or 5; subject and detail of at most three digits). Stored
/// as its text (`5.1.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryStatus {
    class: u8,
    subject: u16,
    detail: u16,
}

impl DeliveryStatus {
    /// The status `class.subject.detail`, if RFC 3463 §2 allows it.
    pub fn new(class: u8, subject: u16, detail: u16) -> Option<DeliveryStatus> {
        (matches!(class, 2 | 4 | 5) && subject <= 999 && detail <= 999).then_some(DeliveryStatus {
            class,
            subject,
            detail,
        })
    }

    /// Its class: 2 success, 4 persistent transient failure, 5 permanent failure.
    pub fn class(self) -> u8 {
        self.class
    }

    /// Whether it is a permanent failure (class 5).
    pub fn is_permanent(self) -> bool {
        self.class == 5
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || StoreError::Invalid {
            what: "delivery status",
            value: s.to_string(),
            reason: "not an RFC 3463 status code (class.subject.detail)".into(),
        };
        let mut parts = s.split('.');
        let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let number = |p: &str| {
            (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u16>().ok())
                .flatten()
        };
        match (number(class), number(subject), number(detail)) {
            (Some(c), Some(s), Some(d)) if class.len() == 1 => {
                DeliveryStatus::new(c as u8, s, d).ok_or_else(invalid)
            }
            _ => Err(invalid()),
        }
    }
}

impl RecipientRecord {
    /// When `state` was reached, if it was.
    pub fn at(&self, state: TrackingState) -> Option<OffsetDateTime> {
        TrackingState::ALL
            .iter()
            .position(|s| *s == state)
            .and_then(|i| self.reached_at[i])
    }
}

/// Which outbound messages [`tracked_messages`](crate::Store::tracked_messages)
/// lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackFilter {
    /// Every outbound message.
    All,
    /// Messages with at least one recipient in this state.
    State(TrackingState),
    /// Messages with at least one recipient not in a final state.
    Pending,
}

/// An outbound message with where each of its recipients is, for
/// `hisp message list` and `hisp message status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedMessage {
    /// The message.
    pub message: MessageRecordId,
    /// Its Message-ID, if the header has one.
    pub message_id: Option<MessageId>,
    /// MAIL FROM; `None` for the null reverse-path.
    pub envelope_from: Option<DirectAddress>,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// The Subject, read from the header when it was queued (`None` for
    /// messages queued before schema version 3).
    pub subject: Option<String>,
    /// What tracking expects of it.
    pub expect: Expectation,
    /// Every recipient, by row id.
    pub recipients: Vec<RecipientRecord>,
}

#[cfg(test)]
mod tests {
    use super::TrackingState::*;
    use super::*;

    #[test]
    fn outbound_life_with_final_delivery_requested() {
        let s = Queued.relayed().unwrap().processed().unwrap();
        assert_eq!(s.dispatched().unwrap().delivered().unwrap(), Delivered);
    }

    #[test]
    fn impossible_moves_are_refused_and_named() {
        for (from, to) in [
            (Queued, Processed),
            (Queued, Dispatched),
            (Relayed, Delivered),
            (Dispatched, Failed),
            (Failed, Relayed),
            (Processed, Queued),
        ] {
            match from.to(to) {
                Err(StoreError::Transition { from: f, to: t }) => {
                    assert_eq!((f, t), (from.as_str(), to.as_str()));
                }
                other => panic!("{from} -> {to}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_move_to_the_state_already_reached_is_refused() {
        // A duplicate MDN must not move or be audited twice: the store
        // reports it as a refused transition.
        for s in TrackingState::ALL {
            assert!(
                matches!(s.to(s), Err(StoreError::Transition { .. })),
                "{s} -> {s}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for s in TrackingState::ALL {
            assert_eq!(TrackingState::from_name(s.as_str()), Some(s));
        }
    }

    #[test]
    fn delivery_status_reads_and_writes_rfc3463_codes() {
        for text in ["5.1.1", "4.4.3", "2.0.0", "5.7.999"] {
            let status: DeliveryStatus = text.parse().unwrap();
            assert_eq!(status.to_string(), text);
        }
        for bad in [
            "", "5", "5.1", "5.1.1.1", "3.1.1", "55.1.1", "5.1000.1", "5.x.1", "5..1",
        ] {
            assert!(bad.parse::<DeliveryStatus>().is_err(), "{bad}");
        }
        assert!(DeliveryStatus::new(5, 7, 1).unwrap().is_permanent());
        assert!(!DeliveryStatus::new(4, 4, 3).unwrap().is_permanent());
    }
}
