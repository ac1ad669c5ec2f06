//! `hisp serve`: the running HISP. It wires the store, certificate
//! discovery and the gateway's policy into the submission and backbone SMTP
//! listeners, runs the queue worker (relay to other HISPs by `[[route]]`,
//! delivery of inbound mail into mailboxes), and, when `[dns_responder]
//! listen` is set, answers CERT queries for the local certificates.
//!
//! On SIGTERM or Ctrl-C the listeners stop accepting, transactions under way
//! get up to [`DRAIN`] to reach their reply, then the worker finishes its
//! batch (also within [`DRAIN`]); what is still queued is taken up again at
//! the next start, since every accepted message is committed before its 250.
//!
//! STARTTLS is not offered yet: no `[smtp]` key names a certificate for the
//! listeners, and the delivering client speaks plain SMTP.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hisp_discovery::{
    Discoverer, DnsConfig, DnsDiscovery, LdapDiscovery, LdapSettings, LocalRecords, Responder,
};
use hisp_gateway::{GatewayContext, GatewayPolicy, Routes, TrustSettings, Worker, WorkerSettings};
use hisp_smime::SealOptions;
use hisp_smtp::{Policy, Role, Server, ServerConfig, Shutdown};
use hisp_store::{Domain, Store};
use tracing::{info, warn};

use crate::config::Config;

/// How long transactions under way, and then the worker's batch, may run
/// after a stop is asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs the HISP in the foreground until SIGTERM or Ctrl-C; exit 0 after a
/// clean stop.
pub fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    let routes = routes(config)?;
    let store = crate::store::open(config)?;
    let domains = store.domains().context("cannot read the local domains")?;
    if domains.is_empty() {
        warn!("no local domains: every recipient is remote and nothing can be received (`hisp domain add DOMAIN`)");
    }
    let store: Arc<dyn Store> = Arc::new(store);
    let hostname = match &config.smtp.hostname {
        Some(h) => h.clone(),
        None => system_hostname().unwrap_or_else(|| "localhost".to_string()),
    };
    let responder = match config.dns_responder.listen {
        Some(listen) => Some((
            listen,
            crate::cmd::dns::records(config, config.dns_responder.mail_ip)?,
        )),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, store, routes, &hostname, responder))?;
    eprintln!("hisp: stopped");
    Ok(ExitCode::SUCCESS)
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
    let mut dns = DnsConfig::default();
    let mut ldap = LdapSettings::default();
    let servers = &config.discovery.nameservers;
    if !servers.is_empty() {
        dns.name_servers = servers.clone();
        ldap.name_servers = Some(servers.clone());
    }
    let dns = DnsDiscovery::new(dns).context("cannot set up DNS discovery")?;
    let ldap = LdapDiscovery::new(ldap).context("cannot set up LDAP discovery")?;
    Ok(Arc::new(Discoverer::new(dns, ldap)))
}

/// Binds one listener and says where it listens.
async fn bind(
    role: Role,
    addr: SocketAddr,
    config: &Config,
    hostname: &str,
    policy: Arc<dyn Policy>,
) -> anyhow::Result<Server> {
    let mut settings = ServerConfig::new(role, hostname);
    settings.max_message_size = config.smtp.max_message_size;
    let name = match role {
        Role::Submission => "submission",
        Role::Backbone => "backbone",
    };
    let server = Server::bind(addr, settings, policy)
        .await
        .with_context(|| format!("cannot listen for {name} on {addr}"))?;
    let local = server.local_addr()?;
    info!(role = name, listen = %local, "SMTP listener bound");
    eprintln!("hisp: {name} listener on {local} (no STARTTLS)");
    Ok(server)
}

async fn run(
    config: &Config,
    store: Arc<dyn Store>,
    routes: Routes,
    hostname: &str,
    responder: Option<(SocketAddr, LocalRecords)>,
) -> anyhow::Result<()> {
    let trust = TrustSettings {
        revocation: config.trust.revocation,
        ..TrustSettings::new()
    };
    let ctx = GatewayContext::new(store, discoverer(config)?, trust);
    let policy: Arc<dyn Policy> = Arc::new(GatewayPolicy::new(ctx.clone()));
    let submission = bind(
        Role::Submission,
        config.smtp.submission_listen,
        config,
        hostname,
        policy.clone(),
    )
    .await?;
    let backbone = bind(
        Role::Backbone,
        config.smtp.backbone_listen,
        config,
        hostname,
        policy,
    )
    .await?;
    let responder = match responder {
        Some((listen, records)) => {
            let r = Responder::start(listen, &records)
                .await
                .with_context(|| format!("cannot start the DNS responder on {listen}"))?;
            info!(listen = %r.local_addr(), certs = records.certs.len(), "DNS responder started");
            eprintln!(
                "hisp: DNS responder on {} (udp and tcp) for {} zone(s)",
                r.local_addr(),
                records.zones.len()
            );
            Some(r)
        }
        None => None,
    };

    let mut settings = WorkerSettings::new(hostname);
    settings.seal = SealOptions {
        cipher: config.smime.cipher,
        key_transport: config.smime.key_transport,
        copy_subject: config.smime.copy_subject,
    };
    let worker = Worker::new(ctx, routes, settings);
    let stop_listeners = Shutdown::new();
    let stop_worker = Shutdown::new();
    let listeners = [submission, backbone]
        .map(|server| tokio::spawn(server.serve(stop_listeners.clone(), DRAIN)));
    let mut worker_task = {
        let stop = stop_worker.clone();
        tokio::spawn(async move { worker.run(&stop).await })
    };
    eprintln!("hisp: serving; SIGTERM or Ctrl-C stops");

    let signal = wait_for_stop().await;
    eprintln!("hisp: {signal}: stopping (transactions under way may take up to {DRAIN:?})");
    stop_listeners.trigger();
    for listener in listeners {
        match listener.await {
            Ok(report) => info!(
                finished = report.finished,
                aborted = report.aborted,
                "listener stopped"
            ),
            Err(e) => warn!(error = %e, "listener task failed"),
        }
    }
    // The worker runs on while the listeners drain, so it may still relay
    // what they accepted; then it finishes its batch.
    stop_worker.trigger();
    if tokio::time::timeout(DRAIN, &mut worker_task).await.is_err() {
        // Its claims lapse and the messages are tried again at the next start.
        warn!("the queue worker did not finish its batch in time; stopped");
        worker_task.abort();
    }
    if let Some(r) = responder {
        r.shutdown().await.context("stopping the DNS responder")?;
    }
    Ok(())
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

/// The system's host name, the default name in the greeting and in EHLO.
fn system_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&buf[..end]).ok()?;
    (!name.is_empty()).then(|| name.to_string())
}
