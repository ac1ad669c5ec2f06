//! What a session knows about its client, and the mail transaction it builds.

use std::net::SocketAddr;

use crate::config::Role;
use crate::policy::Account;

/// What the server knows about the client of one SMTP session; handed to the [`Policy`].
///
/// [`Policy`]: crate::policy::Policy
#[derive(Debug, Clone)]
pub struct Session {
    /// Unique id of the session, carried in logs and `Received:`.
    pub id: String,
    /// The listener's role.
    pub role: Role,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// The name the client gave in EHLO or HELO.
    pub helo: Option<Helo>,
    /// Whether the session runs over TLS (after STARTTLS).
    pub tls: bool,
    /// The authenticated account, if any.
    pub account: Option<Account>,
}

impl Session {
    /// True when the client connects from a loopback address.
    pub fn peer_is_loopback(&self) -> bool {
        self.peer.ip().to_canonical().is_loopback()
    }
}

/// The greeting the client gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helo {
    /// The domain or address literal given.
    pub name: String,
    /// True for EHLO, false for HELO.
    pub extended: bool,
}

/// The body type declared with MAIL FROM (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// No BODY parameter, or BODY=7BIT.
    SevenBit,
    /// BODY=8BITMIME.
    EightBitMime,
}

/// The envelope of one mail transaction.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Id of this transaction (`<session id>.<n>`), for logs.
    pub id: String,
    /// The reverse-path; empty for the null path `<>`.
    pub mail_from: String,
    /// The accepted recipients, in order.
    pub rcpt_to: Vec<String>,
    /// The declared body type.
    pub body: BodyType,
    /// The SIZE the client declared, if any (RFC 1870).
    pub declared_size: Option<usize>,
}
