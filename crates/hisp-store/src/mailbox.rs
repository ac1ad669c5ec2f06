//! Mailboxes of local addresses, as a portal shows them. Nothing is ever
//! deleted by a user: "disregard" moves a message to the Disregarded folder.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::message::MessageId;
use hisp_address::DirectAddress;

/// A folder of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    /// Mail received.
    Inbox,
    /// Mail the address sent.
    Sent,
    /// Mail the user set aside; it can be moved back where it came from.
    Disregarded,
}

impl Folder {
    /// `inbox`, `sent` or `disregarded`: the name in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Sent => "sent",
            Folder::Disregarded => "disregarded",
        }
    }
}

impl fmt::Display for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Folder {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inbox" => Ok(Folder::Inbox),
            "sent" => Ok(Folder::Sent),
            "disregarded" => Ok(Folder::Disregarded),
            other => Err(StoreError::Invalid {
                what: "folder",
                value: other.to_string(),
                reason: "use inbox, sent or disregarded".into(),
            }),
        }
    }
}

/// The row id of a message in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxEntryId(pub i64);

impl fmt::Display for MailboxEntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message in a mailbox listing. From, subject and date are read from the
/// message's header when it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEntry {
    /// Row id, for [`read_message`](crate::Store::read_message) and moves.
    pub id: MailboxEntryId,
    /// The mailbox's address.
    pub address: DirectAddress,
    /// The folder it is in now.
    pub folder: Folder,
    /// Its Message-ID, if the header has one.
    pub message_id: Option<MessageId>,
    /// The From field.
    pub from: Option<String>,
    /// The Subject field.
    pub subject: Option<String>,
    /// The Date field.
    pub date: Option<OffsetDateTime>,
    /// Size in bytes.
    pub size: u64,
    /// Whether nobody has marked it read.
    pub unread: bool,
    /// When it was stored.
    pub received_at: OffsetDateTime,
}

/// A message in a mailbox with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxMessage {
    /// Its listing entry.
    pub entry: MailboxEntry,
    /// The message (for inbound mail: decrypted and unwrapped).
    pub bytes: Vec<u8>,
}
