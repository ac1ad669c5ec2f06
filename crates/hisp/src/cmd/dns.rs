//! `hisp dns export` and `hisp dns serve`: publishing the local addresses'
//! and domains' certificates in DNS (RFC 4398 CERT records).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use hisp_discovery::LocalRecords;
use hisp_store::{Owner, Store};

use crate::cli::{DnsExportArgs, DnsServeArgs};
use crate::config::Config;

/// The CERT records of the store's certificates, with A and MX records for
/// each local domain when an address for them is given.
pub(crate) fn records(
    store: &dyn Store,
    mail_ip: Option<Ipv4Addr>,
) -> anyhow::Result<LocalRecords> {
    let mut records = LocalRecords::default();
    for domain in store.domains()? {
        let name = domain.domain.as_str().to_string();
        if let Some(ip) = mail_ip {
            // A demo needs the domain to be a mail host of its own.
            records.a.push((name.clone(), ip));
            records.mx.push((name.clone(), 10, name.clone()));
        }
        records.zones.push(name);
    }
    for cert in store.certificates(None)? {
        let owner = match &cert.owner {
            // Certificate Discovery for Direct: an address-bound certificate
            // lives at user.domain (the @ replaced by a dot).
            Owner::Address(a) => format!("{}.{}", a.local_part(), a.domain().as_str()),
            Owner::Domain(d) => d.as_str().to_string(),
        };
        records
            .certs
            .push((owner.to_ascii_lowercase(), cert.der.clone()));
    }
    Ok(records)
}

/// Prints zone-file lines that BIND 9 loads unchanged.
pub fn export(args: &DnsExportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let mail_ip = args.mail_ip.or(config.dns_responder.mail_ip);
    let records = records(&*crate::store::open(config)?, mail_ip)?;
    crate::input::write_stdout(records.zone_lines().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the built-in DNS responder in the foreground until interrupted.
pub fn serve(args: &DnsServeArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let listen: SocketAddr = match args.listen.or(config.dns_responder.listen) {
        Some(l) => l,
        None => anyhow::bail!(
            "no address to listen on: give --listen IP:PORT or set [dns_responder] listen"
        ),
    };
    let mail_ip = args.mail_ip.or(config.dns_responder.mail_ip);
    let records = records(&*crate::store::open(config)?, mail_ip)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let responder = hisp_discovery::Responder::start(listen, &records)
            .await
            .with_context(|| format!("cannot start the DNS responder on {listen}"))?;
        tracing::info!(listen = %responder.local_addr(), certs = records.certs.len(), "DNS responder started");
        eprintln!(
            "hisp: answering CERT queries on {} (udp and tcp) for {} zone(s); Ctrl-C stops",
            responder.local_addr(),
            records.zones.len()
        );
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        responder.shutdown().await.context("stopping the DNS responder")?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
