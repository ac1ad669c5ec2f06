//! The errors of this crate, by cause.

use std::io;

/// What went wrong while setting up or running an SMTP listener.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// Binding or accepting on the listening socket failed.
    #[error("listener on {addr}: {source}")]
    Listen {
        /// The address that was to be bound.
        addr: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// A TLS certificate or key could not be loaded.
    #[error("TLS certificate or key: {0}")]
    TlsMaterial(String),
    /// The TLS library refused the configuration.
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] tokio_rustls::rustls::Error),
    /// A socket error during a session.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}
