//! The one place a whole HISP server is assembled: the submission and
//! backbone SMTP listeners with their limits and STARTTLS, the gateway's
//! policy, the queue engine with its routes, discovery and trust, the
//! built-in DNS responder, the trust bundle refresh, the services the
//! caller attaches (the portal), and the ordered stop.
//!
//! [`ServerSettings`] holds plain values; [`ServerBuilder::bind`] binds the
//! listeners (port 0 picks free ports) and the responder, and gives the
//! queue's leases back; [`BoundServer::start`] starts everything and
//! returns a [`RunningServer`], whose [`stop`](RunningServer::stop) stops
//! in order: the listeners stop accepting and drain, the attached services
//! stop, the queue engine finishes or gives back what it holds, the
//! responder stops. `hisp serve`, `hisp demo` and the gateway's tests all
//! start their servers here.

mod builder;
mod refresh;
mod running;
mod services;
mod settings;

use std::fmt;
use std::net::SocketAddr;

use hisp_discovery::ResponderError;
use hisp_smtp::{Role, SmtpError};

use crate::error::GatewayError;

pub use builder::{BoundServer, ServerBuilder};
pub use running::{RunningServer, StopReport};
pub use services::{Attachment, BoxFuture, OnStart, RunningService, ServiceContext, ServiceError};
pub use settings::{
    BundleRefresh, ListenerSettings, ResponderSettings, ServerPem, ServerSettings, DEFAULT_DRAIN,
    DEFAULT_ENGINE_STOP_MARGIN,
};

/// Where a server listens, once bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundAddresses {
    /// The submission listener.
    pub submission: SocketAddr,
    /// The backbone listener.
    pub backbone: SocketAddr,
    /// The DNS responder (UDP and TCP), when one runs.
    pub dns_responder: Option<SocketAddr>,
}

/// Something the administrator watching a starting server is told (where
/// it listens); the `Display` form is the line to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// An SMTP listener is bound.
    Listener {
        /// Submission or backbone.
        role: Role,
        /// Where it listens.
        addr: SocketAddr,
        /// Whether it offers STARTTLS.
        starttls: bool,
    },
    /// The DNS responder answers.
    Responder {
        /// Where it answers (UDP and TCP).
        addr: SocketAddr,
        /// How many zones it serves.
        zones: usize,
    },
}

impl fmt::Display for Announcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Announcement::Listener {
                role,
                addr,
                starttls,
            } => {
                let tls = if *starttls { "STARTTLS" } else { "no STARTTLS" };
                write!(f, "{} listener on {addr} ({tls})", role_name(*role))
            }
            Announcement::Responder { addr, zones } => {
                write!(
                    f,
                    "DNS responder on {addr} (udp and tcp) for {zones} zone(s)"
                )
            }
        }
    }
}

/// The name of a listener's role in logs and errors.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Submission => "submission",
        Role::Backbone => "backbone",
    }
}

/// Why a server could not be assembled, or not stopped cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The STARTTLS certificate or key is unusable.
    #[error("bad TLS certificate or key for the listeners")]
    Tls(#[source] SmtpError),
    /// A listener could not be bound.
    #[error("cannot listen for {role} on {addr}")]
    Listen {
        /// "submission" or "backbone".
        role: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: SmtpError,
    },
    /// The queue's leases could not be given back at start.
    #[error("cannot release the queue's leases")]
    ReleaseLeases(#[source] GatewayError),
    /// The DNS responder could not start.
    #[error("cannot start the DNS responder on {listen}")]
    ResponderStart {
        /// The address asked for.
        listen: SocketAddr,
        /// Why.
        #[source]
        source: ResponderError,
    },
    /// The DNS responder did not stop cleanly.
    #[error("stopping the DNS responder")]
    ResponderStop(#[source] ResponderError),
    /// An attached service could not start; its own error says why.
    #[error(transparent)]
    Service(ServiceError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_read_as_the_lines_hisp_serve_has_always_printed() {
        let addr: SocketAddr = "127.0.0.1:2587".parse().unwrap();
        let line = |a: Announcement| a.to_string();
        assert_eq!(
            line(Announcement::Listener {
                role: Role::Submission,
                addr,
                starttls: true
            }),
            "submission listener on 127.0.0.1:2587 (STARTTLS)"
        );
        assert_eq!(
            line(Announcement::Listener {
                role: Role::Backbone,
                addr,
                starttls: false
            }),
            "backbone listener on 127.0.0.1:2587 (no STARTTLS)"
        );
        assert_eq!(
            line(Announcement::Responder { addr, zones: 2 }),
            "DNS responder on 127.0.0.1:2587 (udp and tcp) for 2 zone(s)"
        );
    }
}
