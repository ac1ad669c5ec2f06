//! `hisp serve`: the running HISP. This module turns the configuration into
//! the gateway's `ServerSettings` (config checks, TLS files, the system's
//! CA bundle, routes, discovery) and waits for the signal to stop;
//! `hisp_gateway::server` assembles and stops the server: the submission
//! and backbone SMTP listeners, the queue worker (relay to other HISPs by
//! `[[route]]`, delivery of inbound mail into mailboxes), and, when
//! `[dns_responder] listen` is set, the responder answering CERT queries for
//! the local certificates.
//!
//! On SIGTERM or Ctrl-C the listeners stop accepting, transactions under way
//! get up to [`DRAIN`] to reach their reply, then the worker finishes its
//! batch (also within [`DRAIN`]); what is still queued is taken up again at
//! the next start, since every accepted message is committed before its 250.
//!
//! With `[smtp] seal_local_mail` mail between local domains is sealed and
//! delivered by `[[route]]` too (usually to the own backbone listener), and
//! opened there like mail from another HISP.
//!
//! With `[portal] listen` it serves the portal's HTTP API there
//! (`serve_portal.rs`, attached to the server as a service).
//!
//! With `[smtp] tls_cert` and `tls_key` both listeners offer STARTTLS (RFC
//! 3207). The delivering client uses STARTTLS as `[smtp] relay_tls` says,
//! checking the peer's certificate against `relay_ca_file` or the system's
//! CA bundle (`serve_tls.rs`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hisp_discovery::{Discoverer, DnsConfig, DnsDiscovery, LdapDiscovery, MxResolver};
use hisp_gateway::server::{
    Announcement, BundleRefresh, ListenerSettings, OnStart, ResponderSettings, ServerBuilder,
    ServerSettings,
};
use hisp_gateway::{Routes, TrustSettings};
use hisp_smime::SealOptions;
use hisp_smtp::{Role, ServerConfig};
use hisp_store::{Domain, InstanceLock, Kept, Store};
use tracing::{error, warn};

use super::serve_tls::{client_tls, server_tls, Tls};
use crate::config::Config;

/// How long transactions under way, and then the worker's batch, may run
/// after a stop is asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// Time the queue engine has after its drain to give back the messages it
/// still holds.
const WORKER_STOP_MARGIN: Duration = Duration::from_secs(5);

/// Runs the HISP in the foreground until SIGTERM or Ctrl-C; exit 0 after a
/// clean stop.
pub fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    serve_store(config, None)
}

/// [`serve`] on `store` when one is open already (else the configured one
/// is opened after the configuration is checked): the process keeps this
/// one connection to the database and opens no other.
pub fn serve_store(
    config: &Config,
    store: Option<crate::store::OpenStore>,
) -> anyhow::Result<ExitCode> {
    serve_store_then(config, store, None)
}

/// [`serve_store`], running `on_start` as [`OnStart`] says.
pub fn serve_store_then(
    config: &Config,
    store: Option<crate::store::OpenStore>,
    on_start: Option<OnStart>,
) -> anyhow::Result<ExitCode> {
    let timeout = config.tracking.mdn_timeout_secs;
    if timeout < 60 {
        anyhow::bail!(
            "[tracking] mdn_timeout_secs is {timeout}: at least 60 seconds, or every recipient fails as soon as it is relayed"
        );
    }
    crate::relay_limits::check(&config.smtp)?;
    crate::queue_config::check(&config.queue)?;
    config.smtp.check_limits().map_err(anyhow::Error::msg)?;
    let notify = crate::notify::settings(config)?;
    crate::cmd::serve_portal::tls(&config.portal)?;
    let routes = routes(config)?;
    let store = match store {
        Some(store) => store,
        None => crate::store::open(config)?,
    };
    let domains = store.domains().context("cannot read the local domains")?;
    if domains.is_empty() {
        warn!("no local domains: every recipient is remote and nothing can be received (`hisp domain add DOMAIN`)");
    }
    if config.smtp.seal_local() && !config.smtp.mx_routing {
        for d in domains
            .iter()
            .filter(|d| routes.get(d.domain.as_str()).is_none())
        {
            warn!(domain = %d.domain, "[smtp] seal_local_mail is on but the local domain has no [[route]] and mx_routing is off: mail to it waits in the queue");
        }
    }
    // On a shared database the instance name is this process's while it
    // runs, so that its start frees only its own leases (issue 14).
    let instance = match &store {
        crate::store::OpenStore::Postgres(s) => Some(Arc::new(Mutex::new(
            s.hold_instance()
                .with_context(|| format!("cannot start as instance '{}'", s.instance()))?,
        ))),
        crate::store::OpenStore::Sqlite(_) => None,
    };
    let store: Arc<dyn Store> = store.shared();
    let hostname = hostname_of(config);
    let mut tls = Tls {
        server: server_tls(config)?,
        client: client_tls(config, &hostname)?,
    };
    crate::relay_limits::apply_to_client(&config.smtp, &mut tls.client);
    let responder = match config.dns_responder.listen {
        Some(listen) => Some(ResponderSettings {
            listen,
            records: crate::cmd::dns::records(store.as_ref(), config.dns_responder.mail_ip)?,
        }),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The store and the instance name are let go only after the runtime,
    // outside it: PostgreSQL's blocking client closes a connection by
    // blocking, which a thread of the runtime may not do. So the runtime
    // never holds the last reference.
    let served = runtime.block_on(async {
        let mut settings = settings(config, &hostname, routes, tls)?;
        settings.worker.notify = notify;
        settings.dns_responder = responder;
        run(
            config,
            Arc::clone(&store),
            settings,
            on_start,
            instance.clone(),
        )
        .await
    });
    drop(runtime);
    drop(instance);
    drop(store);
    served?;
    crate::logging::announce("hisp: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `[smtp] hostname`, else the system's host name.
fn hostname_of(config: &Config) -> String {
    match &config.smtp.hostname {
        Some(h) => h.clone(),
        None => crate::host::name().unwrap_or_else(|| "localhost".to_string()),
    }
}

/// The `[[route]]` entries, each domain checked.
fn routes(config: &Config) -> anyhow::Result<Routes> {
    let mut routes = Routes::new();
    for route in &config.routes {
        let domain = Domain::parse(&route.domain)
            .with_context(|| format!("bad [[route]] domain {:?}", route.domain))?;
        routes.insert(domain.as_str(), route.to);
    }
    Ok(routes)
}

/// Discovery through `[discovery] nameservers` (the system's when empty),
/// DNS CERT first, then LDAP.
fn discoverer(config: &Config) -> anyhow::Result<Arc<Discoverer>> {
    let ldap = config.discovery.ldap(&config.discovery.nameservers);
    let dns = DnsDiscovery::new(dns_config(config)).context("cannot set up DNS discovery")?;
    let ldap = LdapDiscovery::new(ldap).context("cannot set up LDAP discovery")?;
    Ok(Arc::new(Discoverer::new(dns, ldap)))
}

/// DNS through `[discovery] nameservers` (the system's when empty).
fn dns_config(config: &Config) -> DnsConfig {
    config.discovery.dns(&config.discovery.nameservers)
}

/// The server's settings from `config`: the listeners with `[smtp]`'s
/// limits, the queue engine with `[queue]`'s, discovery and MX lookup
/// through `[discovery] nameservers`, trust, S/MIME, the portal's sender
/// and the bundle refresh. Made on the runtime (the resolvers need it).
fn settings(
    config: &Config,
    hostname: &str,
    routes: Routes,
    tls: Tls,
) -> anyhow::Result<ServerSettings> {
    let mut settings = ServerSettings::new(hostname, discoverer(config)?);
    settings.submission = listener(
        Role::Submission,
        config.smtp.submission_listen,
        config,
        hostname,
    );
    settings.backbone = listener(
        Role::Backbone,
        config.smtp.backbone_listen,
        config,
        hostname,
    );
    settings.tls = tls.server;
    settings.trust = TrustSettings {
        revocation: config.trust.revocation,
        discovery_ttl: Duration::from_secs(config.discovery.cache_secs),
        ..TrustSettings::new()
    };
    settings.seal_local_mail = config.smtp.seal_local();
    settings.auth_limits = crate::cmd::serve_limits::auth_limits(&config.smtp);
    settings.routes = if config.smtp.mx_routing {
        let mx = MxResolver::new(&dns_config(config)).context("cannot set up MX lookup")?;
        routes.with_mx(Arc::new(mx), config.smtp.relay_port)
    } else {
        routes
    };
    let worker = &mut settings.worker;
    worker.client = tls.client;
    worker.seal = SealOptions {
        cipher: config.smime.cipher,
        key_transport: config.smime.key_transport,
        copy_subject: config.smime.copy_subject,
    };
    worker.mdn_timeout = Duration::from_secs(config.tracking.mdn_timeout_secs);
    crate::relay_limits::apply_to_worker(&config.smtp, worker);
    crate::queue_config::apply(&config.queue, &config.smtp, worker);
    // The engine finishes or gives back what it holds within DRAIN itself.
    worker.drain = DRAIN;
    settings.portal_send = crate::cmd::serve_portal::send_settings(&config.portal);
    settings.bundle_refresh = Some(BundleRefresh::every_minute(Arc::new(
        hisp_trust::HttpFetcher::new(Duration::from_secs(30), 32 << 20),
    )));
    settings.drain = DRAIN;
    settings.engine_stop_margin = WORKER_STOP_MARGIN;
    Ok(settings)
}

/// One listener on `addr` with `[smtp]`'s size and session limits.
fn listener(role: Role, addr: SocketAddr, config: &Config, hostname: &str) -> ListenerSettings {
    let mut settings = ServerConfig::new(role, hostname);
    settings.max_message_size = config.smtp.max_message_size;
    if role == Role::Backbone {
        // Sealed mail is about 1.375 times the message it carries.
        settings.max_message_size = config.backbone_message_limit();
    }
    crate::cmd::serve_limits::apply(&config.smtp, &mut settings);
    ListenerSettings::new(addr, settings)
}

/// Starts the server (with the portal when `[portal] listen` is set),
/// says where it listens, and stops it in order at SIGTERM or Ctrl-C.
async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    settings: ServerSettings,
    on_start: Option<OnStart>,
    instance: Option<Arc<Mutex<InstanceLock>>>,
) -> anyhow::Result<()> {
    let mut builder = ServerBuilder::new(store, settings)
        .announce(|what: &Announcement| crate::logging::announce(&format!("hisp: {what}")));
    if let Some(hook) = on_start {
        builder = builder.on_start(hook);
    }
    if let Some(portal) = crate::cmd::serve_portal::attachment(&config.portal)? {
        builder = builder.attach(portal);
    }
    let running = builder.start().await?;
    crate::logging::announce("hisp: serving; SIGTERM or Ctrl-C stops");
    let mut lost = None;
    running
        .run_until(async {
            let signal = tokio::select! {
                signal = wait_for_stop() => signal,
                e = keep_instance(instance) => {
                    let why = format!("{e}");
                    lost = Some(e);
                    error!(error = %why, "the instance name was taken by another process");
                    "the instance name was lost"
                }
            };
            crate::logging::announce(&format!(
                "hisp: {signal}: stopping (transactions under way may take up to {DRAIN:?})"
            ));
        })
        .await?;
    match lost {
        Some(e) => Err(anyhow::Error::new(e).context(
            "stopped: another process runs under this instance name and may have freed this one's \
             leases",
        )),
        None => Ok(()),
    }
}

/// How often a running instance checks that it still holds its name.
const INSTANCE_CHECK: Duration = Duration::from_secs(10);

/// Keeps the instance name of a server on a shared database (none on
/// SQLite: never returns): every [`INSTANCE_CHECK`] it checks the name is
/// held, taking it again on a new connection when the old one ended (a
/// database restart, a dropped idle connection). Returns the error when
/// another process has taken the name: this one must stop, since that
/// process freed this one's leases when it started.
async fn keep_instance(instance: Option<Arc<Mutex<InstanceLock>>>) -> hisp_store::StoreError {
    let Some(lock) = instance else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(INSTANCE_CHECK).await;
        let lock = Arc::clone(&lock);
        // A blocking client: checked (and, if need be, connected again) on
        // the blocking pool, and never dropped inside the runtime.
        let checked = tokio::task::spawn_blocking(move || {
            let mut lock = lock.lock().unwrap_or_else(|p| p.into_inner());
            (lock.instance().to_string(), lock.keep())
        })
        .await;
        let Ok((name, kept)) = checked else {
            continue;
        };
        match kept {
            Ok(Kept::Held) => {}
            Ok(Kept::TakenAgain) => {
                warn!(instance = %name, "the connection holding the instance name had ended; the name is held again");
            }
            Err(e @ hisp_store::StoreError::InstanceRunning { .. }) => return e,
            Err(e) => {
                warn!(instance = %name, error = %e, "cannot check the instance name; tried again");
            }
        }
    }
}

/// Waits for SIGTERM or Ctrl-C (SIGINT) and names which came.
async fn wait_for_stop() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot watch for SIGTERM; only Ctrl-C stops");
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "interrupted",
    }
}
