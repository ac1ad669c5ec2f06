//! The HTTP API of the patient portal (issue 11): a patient or provider
//! with a portal account logs in with their Direct address and reads their
//! own mailbox — folders with unread counts, messages and attachments,
//! disregard and restore, the providers they may write to, the delivery
//! status of what they sent, their notification settings.
//!
//! Everything stands on the [`Store`]'s owner-scoped mailbox views
//! ([`MailboxView`]): every call names the session's address and the
//! retention view at the [`Clock`]'s now. Sending (`POST /api/v1/messages`,
//! `.../reply`) goes through the gateway's [`PortalSender`] given with
//! [`Portal::sender`], the same checks and queue as SMTP submission.

#![warn(missing_docs)]

mod api;
mod clock;
mod error;
mod mailbox;
mod message;
mod pages;
mod send;
mod session;
mod throttle;
mod tls;

use std::future::Future;
use std::sync::Arc;

use hisp_gateway::PortalSender;
use hisp_store::{MailboxView, Store};

pub use api::{router, User};
pub use clock::{Clock, FakeClock, OffsetFileClock, OffsetFileError, SystemClock};
pub use error::ApiError;
pub use message::{content_disposition, parse as parse_message, sanitise_name, Attachment, Parsed};
pub use send::body_limit;
pub use session::{Session, Sessions, COOKIE, CSRF_HEADER};
pub use throttle::{LoginThrottle, Verdict, MAX_FAILURES, WINDOW};
pub use tls::{TlsListener, HANDSHAKE_TIMEOUT};
/// The TLS server configuration [`serve_tls`] takes (rustls).
pub use tokio_rustls::rustls::ServerConfig as TlsServerConfig;

/// What the API is served with.
pub struct Portal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sessions: Sessions,
    throttle: LoginThrottle,
    retention_days: u32,
    secure_cookies: bool,
    sender: Option<PortalSender>,
}

impl Portal {
    /// The API on `store`, reading the time from `clock`; messages leave
    /// every view `retention_days` after they arrived or were sent.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, retention_days: u32) -> Portal {
        Portal {
            store,
            clock,
            sessions: Sessions::default(),
            throttle: LoginThrottle::default(),
            retention_days,
            secure_cookies: false,
            sender: None,
        }
    }

    /// Sends the users' messages with `sender` (without one, a send is
    /// answered 503 `sending-unavailable`); the request body limit follows
    /// its attachment limits ([`body_limit`]).
    pub fn sender(mut self, sender: PortalSender) -> Portal {
        self.sender = Some(sender);
        self
    }

    /// Marks the session cookie `Secure` (when served over HTTPS).
    pub fn secure_cookies(mut self, on: bool) -> Portal {
        self.secure_cookies = on;
        self
    }

    /// The view every mailbox call is made in: now, and the retention period.
    pub(crate) fn view(&self) -> MailboxView {
        MailboxView::new(self.clock.now(), self.retention_days)
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets
/// requests under way finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    portal: Arc<Portal>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(portal))
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`serve`] over HTTPS with the certificate and key of `tls`; the
/// session cookie should then be `Secure` ([`Portal::secure_cookies`]).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: &tokio_rustls::rustls::ServerConfig,
    portal: Arc<Portal>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TlsListener::new(listener, tls)?;
    axum::serve(listener, router(portal))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod pages_tests;
#[cfg(test)]
mod send_tests;
#[cfg(test)]
mod tests;
