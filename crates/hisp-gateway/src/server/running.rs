//! A running server and its ordered stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hisp_discovery::Responder;
use hisp_smtp::{Shutdown, ShutdownReport};
use hisp_store::Store;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::builder::Service;
use super::{BoundAddresses, ServerError};
use crate::context::GatewayContext;
use crate::portal_submit::PortalSender;

/// A server that serves: made by [`BoundServer::start`](super::BoundServer::start),
/// stopped by [`stop`](Self::stop) or [`run_until`](Self::run_until). Its
/// tasks run on the tokio runtime it was started on.
pub struct RunningServer {
    pub(super) addresses: BoundAddresses,
    pub(super) ctx: GatewayContext,
    pub(super) portal_sender: PortalSender,
    pub(super) stop_listeners: Shutdown,
    pub(super) stop_engine: Shutdown,
    pub(super) listeners: Vec<JoinHandle<ShutdownReport>>,
    pub(super) services: Vec<Service>,
    pub(super) bundles: Option<JoinHandle<()>>,
    pub(super) engine: Option<JoinHandle<()>>,
    pub(super) responder: Option<Responder>,
    /// How long the listeners' sessions and the services' requests get.
    pub(super) drain: Duration,
    /// How long the queue engine gets to stop: its drain and the margin.
    pub(super) engine_stop: Duration,
}

/// What a stop came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Each listener's sessions that finished and that were cut
    /// (submission, then backbone).
    pub listeners: Vec<ShutdownReport>,
    /// Whether the queue engine was cut because it did not stop in time
    /// (what it held then comes back when its leases end).
    pub engine_cut: bool,
}

impl RunningServer {
    /// Where the listeners and the responder listen.
    pub fn addresses(&self) -> BoundAddresses {
        self.addresses
    }

    /// Sends as a portal user does, through the submission checks.
    pub fn portal_sender(&self) -> &PortalSender {
        &self.portal_sender
    }

    /// The store served.
    pub fn store(&self) -> Arc<dyn Store> {
        self.ctx.store.inner().clone()
    }

    /// What the listeners and the engine share (the store, discovery, trust).
    pub fn context(&self) -> &GatewayContext {
        &self.ctx
    }

    /// Waits for `signal`, then [`stop`](Self::stop)s; returns what `signal`
    /// gave.
    pub async fn run_until<F: Future>(self, signal: F) -> Result<F::Output, ServerError> {
        let out = signal.await;
        self.stop().await?;
        Ok(out)
    }

    /// Stops in order. The listeners stop accepting and their transactions
    /// under way get the drain to reach their reply (every accepted message
    /// is committed before its 250). The attached services stop (same
    /// drain). The queue engine runs on meanwhile, so it may still relay
    /// what they accepted; then it claims nothing more, lets its attempts
    /// finish for its own drain and gives back what it still holds, due
    /// again at the next start. The bundle refresh ends; the DNS responder
    /// stops last.
    pub async fn stop(self) -> Result<StopReport, ServerError> {
        let mut report = StopReport::default();
        self.stop_listeners.trigger();
        for listener in self.listeners {
            match listener.await {
                Ok(stopped) => {
                    info!(
                        finished = stopped.finished,
                        aborted = stopped.aborted,
                        "listener stopped"
                    );
                    report.listeners.push(stopped);
                }
                Err(e) => warn!(error = %e, "listener task failed"),
            }
        }
        for service in self.services.into_iter().rev() {
            service.stop(self.drain).await;
        }
        self.stop_engine.trigger();
        if let Some(bundles) = self.bundles {
            bundles.abort();
        }
        if let Some(mut engine) = self.engine {
            if tokio::time::timeout(self.engine_stop, &mut engine)
                .await
                .is_err()
            {
                // Its claims lapse and the messages are tried again at the
                // next start.
                warn!("the queue worker did not finish its batch in time; stopped");
                engine.abort();
                report.engine_cut = true;
            }
        }
        if let Some(responder) = self.responder {
            responder
                .shutdown()
                .await
                .map_err(ServerError::ResponderStop)?;
        }
        Ok(report)
    }
}
