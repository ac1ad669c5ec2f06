//! Quarantine: inbound mail that could not be trusted or opened, kept with
//! the reason, shown to the administrator, never delivered.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::message::{Envelope, MessageId};

/// Why a message was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuarantineReason {
    /// No local key decrypts it.
    Undecryptable,
    /// The signature does not verify: the content was changed.
    Tampered,
    /// The signer's chain does not reach an incoming anchor of the domain.
    Untrusted,
    /// A certificate of the signer's chain is revoked.
    Revoked,
    /// The signer's certificate is not bound to the From address.
    Unbound,
    /// Signed with a digest the policy forbids (SHA-1, MD5).
    DisallowedDigest,
    /// Not an S/MIME message, or not one hisp can read.
    Malformed,
}

impl QuarantineReason {
    /// Every reason.
    pub const ALL: [QuarantineReason; 7] = [
        QuarantineReason::Undecryptable,
        QuarantineReason::Tampered,
        QuarantineReason::Untrusted,
        QuarantineReason::Revoked,
        QuarantineReason::Unbound,
        QuarantineReason::DisallowedDigest,
        QuarantineReason::Malformed,
    ];

    /// The code in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::Undecryptable => "undecryptable",
            QuarantineReason::Tampered => "tampered",
            QuarantineReason::Untrusted => "untrusted",
            QuarantineReason::Revoked => "revoked",
            QuarantineReason::Unbound => "unbound",
            QuarantineReason::DisallowedDigest => "disallowed-digest",
            QuarantineReason::Malformed => "malformed",
        }
    }
}

impl fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuarantineReason {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QuarantineReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| StoreError::Invalid {
                what: "quarantine reason",
                value: s.to_string(),
                reason: "not a known reason code".into(),
            })
    }
}

/// The row id of a quarantined message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuarantineId(pub i64);

impl fmt::Display for QuarantineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A quarantined message as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    /// Row id.
    pub id: QuarantineId,
    /// The outer Message-ID, if the header has one.
    pub message_id: Option<MessageId>,
    /// The SMTP envelope it came with.
    pub envelope: Envelope,
    /// Why it is here.
    pub reason: QuarantineReason,
    /// What exactly failed, for the administrator (which certificate, which
    /// anchor, which check).
    pub detail: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was quarantined.
    pub quarantined_at: OffsetDateTime,
}

/// A quarantined message with its bytes, exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedMessage {
    /// Its listing record.
    pub record: QuarantineRecord,
    /// The message as received (still encrypted).
    pub bytes: Vec<u8>,
}
