//! Assembling a server: [`ServerBuilder`] binds, [`BoundServer`] starts.

use std::net::SocketAddr;
use std::sync::Arc;

use hisp_discovery::Responder;
use hisp_smtp::tls::server_config_from_pem;
use hisp_smtp::{Policy, Server, Shutdown};
use hisp_store::Store;
use tracing::info;

use super::refresh::refresh_bundles_forever;
use super::running::RunningServer;
use super::services::{Attachment, OnStart, RunningService, ServiceContext};
use super::settings::{ListenerSettings, ServerPem, ServerSettings};
use super::{role_name, Announcement, BoundAddresses, ServerError};
use crate::context::GatewayContext;
use crate::portal_submit::PortalSender;
use crate::routes::Routes;
use crate::smtp_policy::GatewayPolicy;
use crate::worker::Worker;

/// Told of each [`Announcement`] as it happens.
type Announcer = Arc<dyn Fn(&Announcement) + Send + Sync>;

/// Assembles one HISP server from its store and [`ServerSettings`], with
/// the services and start-up work the caller adds.
pub struct ServerBuilder {
    store: Arc<dyn Store>,
    settings: ServerSettings,
    attachments: Vec<Box<dyn Attachment>>,
    on_start: Option<OnStart>,
    announce: Announcer,
}

impl ServerBuilder {
    /// A server on `store` as `settings` say, with nothing attached.
    pub fn new(store: Arc<dyn Store>, settings: ServerSettings) -> Self {
        ServerBuilder {
            store,
            settings,
            attachments: Vec::new(),
            on_start: None,
            announce: Arc::new(|_| {}),
        }
    }

    /// Adds a service started after the listeners serve and stopped before
    /// the queue engine (see [`Attachment`]); services start in the order
    /// attached and stop in the reverse order.
    pub fn attach(mut self, service: Box<dyn Attachment>) -> Self {
        self.attachments.push(service);
        self
    }

    /// Work to do once the listeners and the DNS responder are up, before
    /// the queue engine starts (see [`OnStart`]).
    pub fn on_start(mut self, hook: OnStart) -> Self {
        self.on_start = Some(hook);
        self
    }

    /// Calls `announce` with each [`Announcement`] as it happens (each
    /// listener bound, the responder answering), in that order.
    pub fn announce(mut self, announce: impl Fn(&Announcement) + Send + Sync + 'static) -> Self {
        self.announce = Arc::new(announce);
        self
    }

    /// Binds both listeners (submission first), gives back the queue
    /// entries a stopped process still held, and starts the DNS responder.
    /// Nothing is served yet: connections wait until
    /// [`BoundServer::start`].
    pub async fn bind(self) -> Result<BoundServer, ServerError> {
        let ServerBuilder {
            store,
            settings,
            attachments,
            on_start,
            announce,
        } = self;
        let ctx = GatewayContext::new(
            store.clone(),
            settings.discoverer.clone(),
            settings.trust.clone(),
        );
        let policy: Arc<dyn Policy> = Arc::new(
            GatewayPolicy::new(ctx.clone())
                .sealing_local_mail(settings.seal_local_mail)
                .with_auth_limits(settings.auth_limits.clone()),
        );
        let tls = settings.tls.as_ref();
        let submission = bind_listener(&settings.submission, tls, &policy, &announce).await?;
        let backbone = bind_listener(&settings.backbone, tls, &policy, &announce).await?;
        // Both listeners are bound, so no other server runs on these
        // addresses: leases still running are a dead process's.
        let released = ctx
            .store
            .call(|s| s.release_leases())
            .await
            .map_err(ServerError::ReleaseLeases)?;
        if released > 0 {
            info!(
                released,
                "queue entries held by a stopped worker are claimable again"
            );
        }
        let responder = match &settings.dns_responder {
            Some(r) => {
                let started = Responder::start(r.listen, &r.records)
                    .await
                    .map_err(|source| ServerError::ResponderStart {
                        listen: r.listen,
                        source,
                    })?;
                info!(listen = %started.local_addr(), certs = r.records.certs.len(), "DNS responder started");
                announce(&Announcement::Responder {
                    addr: started.local_addr(),
                    zones: r.records.zones.len(),
                });
                Some(started)
            }
            None => None,
        };
        let addresses = BoundAddresses {
            submission: local_addr(&submission, &settings.submission)?,
            backbone: local_addr(&backbone, &settings.backbone)?,
            dns_responder: responder.as_ref().map(Responder::local_addr),
        };
        Ok(BoundServer {
            store,
            settings,
            attachments,
            on_start,
            ctx,
            submission,
            backbone,
            responder,
            addresses,
        })
    }

    /// [`bind`](Self::bind), then [`BoundServer::start`].
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        self.bind().await?.start().await
    }
}

/// Binds one listener with the STARTTLS of `tls` (when given) and says
/// where it listens.
async fn bind_listener(
    listener: &ListenerSettings,
    tls: Option<&ServerPem>,
    policy: &Arc<dyn Policy>,
    announce: &Announcer,
) -> Result<Server, ServerError> {
    let mut config = listener.config.clone();
    if let Some(pem) = tls {
        config.tls = Some(server_config_from_pem(&pem.chain, &pem.key).map_err(ServerError::Tls)?);
    }
    let starttls = config.tls.is_some();
    let role = config.role;
    let name = role_name(role);
    let server = Server::bind(listener.listen, config, policy.clone())
        .await
        .map_err(|source| ServerError::Listen {
            role: name,
            addr: listener.listen,
            source,
        })?;
    let addr = local_addr(&server, listener)?;
    let shown = if starttls { "STARTTLS" } else { "no STARTTLS" };
    info!(role = name, listen = %addr, starttls = shown, "SMTP listener bound");
    announce(&Announcement::Listener {
        role,
        addr,
        starttls,
    });
    Ok(server)
}

/// The address `server` is bound to.
fn local_addr(server: &Server, listener: &ListenerSettings) -> Result<SocketAddr, ServerError> {
    server.local_addr().map_err(|source| ServerError::Listen {
        role: role_name(listener.config.role),
        addr: listener.listen,
        source,
    })
}

/// A server whose listeners and responder are bound, not yet serving: its
/// addresses are known (a test can route a peer to them) and its routes
/// may still change.
pub struct BoundServer {
    store: Arc<dyn Store>,
    settings: ServerSettings,
    attachments: Vec<Box<dyn Attachment>>,
    on_start: Option<OnStart>,
    ctx: GatewayContext,
    submission: Server,
    backbone: Server,
    responder: Option<Responder>,
    addresses: BoundAddresses,
}

impl BoundServer {
    /// Where the listeners and the responder are bound.
    pub fn addresses(&self) -> BoundAddresses {
        self.addresses
    }

    /// The routes the queue engine will deliver by.
    pub fn routes_mut(&mut self) -> &mut Routes {
        &mut self.settings.routes
    }

    /// What the listeners and the engine share (the store, discovery, trust).
    pub fn context(&self) -> &GatewayContext {
        &self.ctx
    }

    /// Starts serving, in the order `hisp serve` always has: the start-up
    /// work ([`ServerBuilder::on_start`]), the listeners, the attached
    /// services, the bundle refresh, the queue engine. When a service cannot
    /// start, what was started is stopped again and the error returned.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let BoundServer {
            store,
            mut settings,
            attachments,
            on_start,
            ctx,
            submission,
            backbone,
            responder,
            addresses,
        } = self;
        settings.worker.seal_local = settings.seal_local_mail;
        settings.portal_send.seal_local = settings.seal_local_mail;
        let portal_sender = PortalSender::new(ctx.clone(), settings.portal_send.clone());
        if let Some(hook) = on_start {
            hook(portal_sender.clone()).await;
        }
        let engine_drain = settings.worker.drain;
        let worker = Worker::new(ctx.clone(), settings.routes, settings.worker);
        let stop_listeners = Shutdown::new();
        let stop_engine = Shutdown::new();
        let listeners = [submission, backbone]
            .map(|server| tokio::spawn(server.serve(stop_listeners.clone(), settings.drain)));
        let mut running = RunningServer {
            addresses,
            ctx,
            portal_sender,
            stop_listeners,
            stop_engine,
            listeners: Vec::from(listeners),
            services: Vec::new(),
            bundles: None,
            engine: None,
            responder,
            drain: settings.drain,
            engine_stop: engine_drain + settings.engine_stop_margin,
        };
        let service_ctx = ServiceContext {
            portal_sender: running.portal_sender.clone(),
            store: store.clone(),
            addresses,
        };
        for attachment in attachments {
            match attachment.start(service_ctx.clone()).await {
                Ok(service) => running.services.push(service),
                Err(e) => {
                    // Best effort: the error that stopped the start is the
                    // one to report.
                    let _ = running.stop().await;
                    return Err(ServerError::Service(e));
                }
            }
        }
        if let Some(refresh) = settings.bundle_refresh {
            running.bundles = Some(tokio::spawn(refresh_bundles_forever(
                store,
                refresh,
                running.stop_engine.clone(),
            )));
        }
        if settings.queue_engine {
            let stop = running.stop_engine.clone();
            running.engine = Some(tokio::spawn(async move { worker.run(&stop).await }));
        }
        Ok(running)
    }
}

/// An attached service already running, as [`RunningServer`] keeps it.
pub(super) type Service = Box<dyn RunningService>;
