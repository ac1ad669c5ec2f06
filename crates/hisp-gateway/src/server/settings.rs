//! What a server is made of, as plain values: where it listens and with
//! which limits, how its queue engine delivers, how it discovers and
//! judges certificates, and how long its stop may take. `hisp serve` turns
//! its configuration file into these; tests write them directly.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hisp_discovery::{Discoverer, LocalRecords};
use hisp_smtp::{Role, ServerConfig};
use hisp_trust::Fetcher;

use crate::auth_guard::AuthLimits;
use crate::context::TrustSettings;
use crate::portal_submit::PortalSendSettings;
use crate::routes::Routes;
use crate::worker::WorkerSettings;

/// Everything [`ServerBuilder`](super::ServerBuilder) needs to assemble one
/// running HISP, except the store.
pub struct ServerSettings {
    /// The submission listener (portals and EHRs, AUTH required).
    pub submission: ListenerSettings,
    /// The backbone listener (other HISPs).
    pub backbone: ListenerSettings,
    /// Certificate chain and key for STARTTLS on both listeners (RFC 3207);
    /// `None`: each listener keeps the `tls` of its [`ServerConfig`] (none
    /// by default: STARTTLS not offered).
    pub tls: Option<ServerPem>,
    /// How the queue engine claims, retries and delivers; its `client` is
    /// the delivering SMTP client, its `drain` the time attempts under way
    /// get at a stop. Its `seal_local` is set from
    /// [`seal_local_mail`](Self::seal_local_mail).
    pub worker: WorkerSettings,
    /// Whether the queue engine runs (`Worker::run`). Off: nothing takes
    /// queued messages up unless the caller drives a `Worker` itself (tests
    /// that step the queue with `Worker::run_once`).
    pub queue_engine: bool,
    /// Where mail for each destination domain goes: static routes, and MX
    /// routing when made with [`Routes::with_mx`].
    pub routes: Routes,
    /// Certificate discovery (DNS CERT, then LDAP).
    pub discoverer: Arc<Discoverer>,
    /// Revocation, network access and local intermediates for every
    /// judgement of trust.
    pub trust: TrustSettings,
    /// Mail between local domains travels the Direct way: sealed and
    /// delivered by its route (usually the own backbone listener), and a
    /// local recipient must be a Direct address. Applied to the listeners'
    /// policy, the queue engine and the portal's sender alike.
    pub seal_local_mail: bool,
    /// Limits on AUTH at the submission listener.
    pub auth_limits: AuthLimits,
    /// What the portal's sender allows (attachments, final delivery
    /// requests); its `seal_local` is set from
    /// [`seal_local_mail`](Self::seal_local_mail).
    pub portal_send: PortalSendSettings,
    /// The built-in DNS responder answering CERT (and demo MX, A) queries
    /// for the local domains; `None`: not run.
    pub dns_responder: Option<ResponderSettings>,
    /// Keeping the trust bundles current while serving; `None`: bundles are
    /// refreshed only by hand (`hisp bundle refresh`).
    pub bundle_refresh: Option<BundleRefresh>,
    /// How long sessions under way at the listeners, and then the attached
    /// services' requests, may run after a stop is asked for.
    pub drain: Duration,
    /// Time the queue engine has after its own drain
    /// ([`WorkerSettings::drain`]) to give back the messages it still
    /// holds before it is cut (their leases then lapse).
    pub engine_stop_margin: Duration,
}

impl ServerSettings {
    /// A server named `hostname` (greeting, EHLO, MDNs) discovering through
    /// `discoverer`: both listeners on a free port of 127.0.0.1 with the
    /// listener defaults, no STARTTLS, the worker defaults, the queue
    /// engine on, no routes, the default trust settings and AUTH limits,
    /// local mail delivered unsealed, no DNS responder, no bundle refresh,
    /// 10 s to drain and 5 s more for the engine to give back what it holds.
    pub fn new(hostname: &str, discoverer: Arc<Discoverer>) -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        ServerSettings {
            submission: ListenerSettings::new(
                loopback,
                ServerConfig::new(Role::Submission, hostname),
            ),
            backbone: ListenerSettings::new(loopback, ServerConfig::new(Role::Backbone, hostname)),
            tls: None,
            worker: WorkerSettings::new(hostname),
            queue_engine: true,
            routes: Routes::new(),
            discoverer,
            trust: TrustSettings::new(),
            seal_local_mail: false,
            auth_limits: AuthLimits::default(),
            portal_send: PortalSendSettings::default(),
            dns_responder: None,
            bundle_refresh: None,
            drain: DEFAULT_DRAIN,
            engine_stop_margin: DEFAULT_ENGINE_STOP_MARGIN,
        }
    }
}

/// Default for [`ServerSettings::drain`].
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// Default for [`ServerSettings::engine_stop_margin`].
pub const DEFAULT_ENGINE_STOP_MARGIN: Duration = Duration::from_secs(5);

/// One SMTP listener: where, and with which limits.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// The address to bind (port 0 picks a free port; the running server
    /// says which).
    pub listen: SocketAddr,
    /// Role, host name, size and session limits, timeouts.
    pub config: ServerConfig,
}

impl ListenerSettings {
    /// A listener on `listen` with `config`.
    pub fn new(listen: SocketAddr, config: ServerConfig) -> Self {
        ListenerSettings { listen, config }
    }
}

/// A TLS certificate chain and its private key, PEM, as read from files.
#[derive(Clone)]
pub struct ServerPem {
    /// The certificate chain, leaf first.
    pub chain: Vec<u8>,
    /// The private key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for ServerPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: secrets stay out of logs.
        f.debug_struct("ServerPem")
            .field("chain_bytes", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The built-in DNS responder.
#[derive(Debug, Clone)]
pub struct ResponderSettings {
    /// Where it answers, UDP and TCP (port 0 picks a free port for both).
    pub listen: SocketAddr,
    /// The zones and records it serves.
    pub records: LocalRecords,
}

/// Keeping the trust bundles current: every [`check_every`](Self::check_every),
/// each bundle whose own refresh interval has passed is fetched again
/// (`refresh_bundles`).
#[derive(Clone)]
pub struct BundleRefresh {
    /// Fetches a bundle's URL.
    pub fetcher: Arc<dyn Fetcher>,
    /// How often the bundles are looked at.
    pub check_every: Duration,
}

impl BundleRefresh {
    /// Bundles looked at every minute through `fetcher`.
    pub fn every_minute(fetcher: Arc<dyn Fetcher>) -> Self {
        BundleRefresh {
            fetcher,
            check_every: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for BundleRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleRefresh")
            .field("check_every", &self.check_every)
            .finish_non_exhaustive()
    }
}
