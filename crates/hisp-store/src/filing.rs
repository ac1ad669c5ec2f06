//! Filing an accepted inbound message for one recipient, with the MDNs that
//! answer it, as one change ([`Store::file_inbound`](crate::Store::file_inbound)).

use crate::mailbox::MailboxEntryId;
use crate::portal_user::EmailAddress;
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
    /// The Inbox already holds this message (the same Message-ID from the
    /// same From: the sender sent it again), as this entry: nothing is
    /// filed, the recipient is delivered, the answers for a filed message
    /// are queued again, no portal notice is queued, and an
    /// [`AuditKind::Duplicate`](crate::AuditKind::Duplicate) event is written.
    Duplicate(MailboxEntryId),
}

/// How to tell the recipient's portal user that new secure mail waits
/// (issue 11 item 9), given to
/// [`Store::file_inbound_notifying`](crate::Store::file_inbound_notifying).
/// The store decides, in the filing's transaction, whether the recipient
/// gets a notice (a portal account that is enabled, has an e-mail address
/// and notices on); only then is [`compose`](Self::compose) called.
pub struct NewMailNotice<'a> {
    /// The notice's envelope sender (its bounce address).
    pub from: DirectAddress,
    /// Writes the notice (header and body) to the portal user's ordinary
    /// e-mail address. It must carry no health information: nothing of the
    /// secure message, only that one waits and where to read it.
    pub compose: &'a dyn Fn(&EmailAddress) -> Vec<u8>,
}

impl std::fmt::Debug for NewMailNotice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMailNotice")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}
