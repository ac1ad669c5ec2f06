//! Listener settings: the role and the limits of a session.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::ServerConfig as TlsServerConfig;

/// What a listener is for; it decides what is offered and what is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Message submission from portals and EHRs (RFC 6409, port 587): AUTH required
    /// before MAIL.
    Submission,
    /// The Direct backbone (port 25): mail from other HISPs, no AUTH.
    Backbone,
}

impl Role {
    /// The port this role listens on by default.
    pub fn default_port(self) -> u16 {
        match self {
            Role::Submission => 587,
            Role::Backbone => 25,
        }
    }
}

/// Settings of one SMTP listener.
#[derive(Clone)]
pub struct ServerConfig {
    /// Submission or backbone.
    pub role: Role,
    /// The name this server gives in its greeting and EHLO reply.
    pub hostname: String,
    /// Largest message accepted, in octets (RFC 1870 SIZE).
    pub max_message_size: usize,
    /// Most recipients per message; RFC 5321 §4.5.3.1.8 asks for at least 100.
    pub max_recipients: usize,
    /// Longest command line including CRLF; RFC 5321 §4.5.3.1.4 sets 512.
    pub max_line_length: usize,
    /// Longest text line of a message including CRLF; RFC 5321 §4.5.3.1.6 sets 1000.
    pub max_data_line_length: usize,
    /// How long to wait for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes); also
    /// the longest writing a reply may take, so a client that stops reading is let go.
    pub command_timeout: Duration,
    /// How long to wait for each block of message text (RFC 5321 §4.5.3.2.5: 3 minutes
    /// for the client; the server waits longer).
    pub data_timeout: Duration,
    /// Most simultaneous sessions; further connections get `421 4.7.0`.
    pub max_connections: usize,
    /// Failed AUTH attempts before the session is closed.
    pub max_auth_failures: u32,
    /// Unknown or malformed commands before the session is closed.
    pub max_bad_commands: u32,
    /// TLS for STARTTLS; `None` means STARTTLS is not offered.
    pub tls: Option<Arc<TlsServerConfig>>,
    /// Offer AUTH in clear text to loopback peers (a portal on the same host).
    pub auth_on_loopback_without_tls: bool,
    /// Prepend a `Received:` trace field (RFC 5321 §4.4 requires it of a receiving server).
    pub add_received: bool,
    /// Most simultaneous sessions from one client address (IPv6: one /64), so that one
    /// client cannot take every slot of [`max_connections`](Self::max_connections);
    /// further connections from it get `421 4.7.0`.
    pub max_connections_per_address: usize,
    /// Most commands a session may send without moving a mail transaction on (NOOP,
    /// RSET, VRFY, HELO/EHLO, refused MAIL or RCPT, ...) before its next message is
    /// accepted; the one after gets `421 4.7.0` and the session is closed.
    pub max_commands_without_progress: u32,
    /// The longest a session may last, whatever it does; then `421 4.4.2` and close.
    pub max_session_duration: Duration,
    /// How long the TLS handshake after STARTTLS may take before the connection is
    /// closed.
    pub tls_handshake_timeout: Duration,
}

impl ServerConfig {
    /// Defaults for `role`: 25 MiB messages, 100 recipients, RFC 5321 limits and timeouts,
    /// no TLS; 200 sessions, 20 from one address, 50 commands without progress, an hour
    /// per session, 30 seconds for the TLS handshake.
    pub fn new(role: Role, hostname: impl Into<String>) -> Self {
        ServerConfig {
            role,
            hostname: hostname.into(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_line_length: 512,
            max_data_line_length: 1000,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_connections: 200,
            max_auth_failures: 3,
            max_bad_commands: 20,
            tls: None,
            auth_on_loopback_without_tls: true,
            add_received: true,
            max_connections_per_address: 20,
            max_commands_without_progress: 50,
            max_session_duration: Duration::from_secs(3600),
            tls_handshake_timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("role", &self.role)
            .field("hostname", &self.hostname)
            .field("max_message_size", &self.max_message_size)
            .field("max_recipients", &self.max_recipients)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}
