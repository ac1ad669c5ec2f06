//! The portal's HTTP API in `hisp serve`: `[portal] listen` (HTTP, or HTTPS
//! with `tls_cert` and `tls_key`), on the store the daemon serves with, the
//! system clock and `[portal] retention_days`; messages sent through it
//! go through the gateway's `PortalSender` with `[portal] max_attachments`
//! and `max_attachment_bytes`. It is attached to the gateway's server
//! ([`attachment`]), which starts it after the SMTP listeners and stops it
//! after they have drained, before the queue engine stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hisp_gateway::compose::AttachmentLimits;
use hisp_gateway::server::{Attachment, BoxFuture, RunningService, ServiceContext, ServiceError};
use hisp_gateway::{PortalSendSettings, PortalSender};
use hisp_portal::{Clock, OffsetFileClock, Portal, SystemClock};
use hisp_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::PortalConfig;

/// The running API, stopped by [`PortalTask::stop`].
pub struct PortalTask {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// `[portal] tls_cert` and `tls_key`, read and checked at start so that a
/// bad file stops `hisp serve` rather than failing each connection.
pub fn tls(portal: &PortalConfig) -> anyhow::Result<Option<Arc<hisp_portal::TlsServerConfig>>> {
    let (cert, key) = match (&portal.tls_cert, &portal.tls_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            anyhow::bail!("[portal] tls_cert is set but tls_key is not: set both or neither")
        }
        (None, Some(_)) => {
            anyhow::bail!("[portal] tls_key is set but tls_cert is not: set both or neither")
        }
    };
    let chain = std::fs::read(cert)
        .with_context(|| format!("cannot read [portal] tls_cert {}", cert.display()))?;
    let key_pem = std::fs::read(key)
        .with_context(|| format!("cannot read [portal] tls_key {}", key.display()))?;
    let config = hisp_smtp::tls::server_config_from_pem(&chain, &key_pem).with_context(|| {
        format!(
            "bad TLS certificate or key ([portal] tls_cert {}, tls_key {})",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Some(config))
}

/// Binds `listen` and serves the API there (HTTPS with `tls`), keeping
/// messages in view for `retention_days`.
async fn start(
    portal: PortalAttachment,
    store: Arc<dyn Store>,
    sender: PortalSender,
) -> anyhow::Result<PortalTask> {
    let PortalAttachment {
        listen,
        tls,
        retention_days,
    } = portal;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for the portal API on {listen}"))?;
    let local = listener.local_addr()?;
    let api = Arc::new(
        Portal::new(store, clock()?, retention_days)
            .secure_cookies(tls.is_some())
            .sender(sender),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let scheme = if tls.is_some() { "HTTPS" } else { "HTTP" };
    let task =
        match tls {
            Some(config) => tokio::spawn(async move {
                hisp_portal::serve_tls(listener, &config, api, shutdown).await
            }),
            None => tokio::spawn(hisp_portal::serve(listener, api, shutdown)),
        };
    info!(listen = %local, scheme, retention_days, "portal API bound");
    crate::logging::announce(&format!("hisp: portal API on {local} ({scheme})"));
    Ok(PortalTask { stop, task })
}

/// The variable naming a file of seconds by which the portal's clock runs
/// ahead of the system's: for tests of retention and login throttling
/// through a running `hisp serve`, never for production.
pub const CLOCK_OFFSET_FILE: &str = "HISP_CLOCK_OFFSET_FILE";

/// The portal's clock: the system's, or with [`CLOCK_OFFSET_FILE`] set the
/// system's moved on by what that file says at each look.
fn clock() -> anyhow::Result<Arc<dyn Clock>> {
    let Some(path) = std::env::var_os(CLOCK_OFFSET_FILE) else {
        return Ok(Arc::new(SystemClock));
    };
    let clock = OffsetFileClock::new(std::path::Path::new(&path))
        .with_context(|| format!("{CLOCK_OFFSET_FILE} is set"))?;
    warn!(
        file = %std::path::Path::new(&path).display(),
        "the portal's clock runs ahead of the system's by the seconds in this file (testing only)"
    );
    Ok(Arc::new(clock))
}

impl PortalTask {
    /// Stops taking connections and lets requests under way finish, for
    /// at most `drain`.
    pub async fn stop(self, drain: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(drain, &mut task).await {
            Ok(Ok(Ok(()))) => info!("portal API stopped"),
            Ok(Ok(Err(e))) => warn!(error = %e, "portal API failed"),
            Ok(Err(e)) => warn!(error = %e, "portal API task failed"),
            Err(_) => {
                warn!("portal API requests did not finish in time; stopped");
                task.abort();
            }
        }
    }
}

/// What the portal's sender allows: `[portal]`'s attachment limits (the
/// server sets whether local recipients are sealed, as `[smtp]
/// seal_local_mail` says).
pub fn send_settings(portal: &PortalConfig) -> PortalSendSettings {
    PortalSendSettings {
        limits: AttachmentLimits {
            max_files: portal.max_attachments,
            max_total_bytes: portal.max_attachment_bytes,
        },
        ..PortalSendSettings::default()
    }
}

/// The portal as a service of the gateway's server, its TLS files read
/// now; `None` when `[portal] listen` is not set.
pub fn attachment(portal: &PortalConfig) -> anyhow::Result<Option<Box<dyn Attachment>>> {
    let Some(listen) = portal.listen else {
        return Ok(None);
    };
    Ok(Some(Box::new(PortalAttachment {
        listen,
        tls: tls(portal)?,
        retention_days: portal.retention_days,
    })))
}

/// The portal, started by the server with its sender and store.
struct PortalAttachment {
    /// `[portal] listen`.
    listen: SocketAddr,
    /// `[portal] tls_cert` and `tls_key`, read.
    tls: Option<Arc<hisp_portal::TlsServerConfig>>,
    /// `[portal] retention_days`.
    retention_days: u32,
}

impl Attachment for PortalAttachment {
    fn start(
        self: Box<Self>,
        ctx: ServiceContext,
    ) -> BoxFuture<Result<Box<dyn RunningService>, ServiceError>> {
        Box::pin(async move {
            match start(*self, ctx.store, ctx.portal_sender).await {
                Ok(task) => Ok(Box::new(task) as Box<dyn RunningService>),
                Err(e) => Err(e.into()),
            }
        })
    }
}

impl RunningService for PortalTask {
    fn stop(self: Box<Self>, drain: Duration) -> BoxFuture<()> {
        Box::pin(PortalTask::stop(*self, drain))
    }
}
