//! Filing an accepted inbound message for one recipient, with the MDNs that
//! answer it, as one change ([`Store::file_inbound`](crate::Store::file_inbound)).

use crate::mailbox::MailboxEntryId;
use crate::tracking::TrackingState;
use hisp_address::DirectAddress;

/// An MDN (or other notification) to queue with a filing, as an outbound
/// [`Expectation::Notification`](crate::Expectation::Notification) message
/// from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The envelope sender: the recipient that answers.
    pub from: DirectAddress,
    /// The envelope recipient: the sender of the inbound message.
    pub to: DirectAddress,
    /// The notification as it goes on the queue (to be sealed on the way out).
    pub bytes: Vec<u8>,
    /// What it says (`processed`, `dispatched`, `failed`), for the
    /// [`AuditKind::MdnSent`](crate::AuditKind::MdnSent) event's detail.
    pub kind: String,
}

/// What [`Store::file_inbound`](crate::Store::file_inbound) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filing {
    /// Filed in the Inbox as this entry; the recipient is delivered and the
    /// answers for a filed message are queued.
    Filed(MailboxEntryId),
    /// The address is no longer local; the recipient is failed and the
    /// answers for a missing mailbox are queued.
    NoSuchAddress,
    /// The recipient was already in this final state (an earlier attempt
    /// committed); nothing was written.
    AlreadyDone(TrackingState),
}
