//! `hisp discover ADDRESS`: every certificate published for a Direct address
//! and the verdict on each, as a sending HISP would decide it.
//!
//! Exit status (a contract scripts rely on): 0 when at least one usable,
//! trusted certificate exists; 2 when none does; 3 on a temporary failure.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hisp_discovery::{Discoverer, Discovery, DnsDiscovery, Judged, LdapDiscovery, TrustContext};
use hisp_trust::{Anchors, HttpFetcher, Remote};
use openssl::asn1::Asn1TimeRef;
use openssl::x509::X509;
use serde_json::{json, Value};

use crate::cli::DiscoverArgs;
use crate::config::Config;
use crate::input::read_certs;

/// Exit status when no usable certificate exists.
const EXIT_NONE: u8 = 2;
/// Exit status on a temporary failure.
const EXIT_TEMPORARY: u8 = 3;

/// Runs a discovery and prints it.
pub fn discover(args: &DiscoverArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let anchors = Anchors::new(anchors(args, config)?).context("cannot use the anchors")?;
    let at = match args.at {
        Some(t) => t.unix_timestamp(),
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let name_servers = if args.nameservers.is_empty() {
        config.discovery.nameservers.clone()
    } else {
        args.nameservers.clone()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let discovery = runtime.block_on(async {
        let dns = config.discovery.dns(&name_servers);
        let ldap = config.discovery.ldap(&name_servers);
        let dns = DnsDiscovery::new(dns).context("cannot set up DNS discovery")?;
        let ldap = LdapDiscovery::new(ldap).context("cannot set up LDAP discovery")?;
        let remote = Remote::new(Arc::new(HttpFetcher::new(
            Duration::from_secs(15),
            32 << 20,
        )));
        let trust = TrustContext {
            anchors: &anchors,
            intermediates: &[],
            at,
            revocation: config.trust.revocation,
            remote: &remote,
        };
        anyhow::Ok(
            Discoverer::new(dns, ldap)
                .discover(&args.address, &trust)
                .await,
        )
    })?;
    if args.json {
        crate::cmd::print_json(&to_json(&discovery))?;
    } else {
        print_text(&discovery)?;
    }
    Ok(if discovery.usable {
        ExitCode::SUCCESS
    } else if discovery.temporary {
        ExitCode::from(EXIT_TEMPORARY)
    } else {
        ExitCode::from(EXIT_NONE)
    })
}

/// The anchors: `--anchor` files win; otherwise the outgoing anchors of every
/// local domain in the store, read afresh.
fn anchors(args: &DiscoverArgs, config: &Config) -> anyhow::Result<Vec<X509>> {
    if !args.anchors.is_empty() {
        let mut all = Vec::new();
        for path in &args.anchors {
            all.extend(read_certs(path, "anchor")?);
        }
        return Ok(all);
    }
    outgoing_anchors(config)
}

/// The outgoing anchors of every local domain (a recipient certificate must
/// chain to one of them), with the certificates of the last good copy of
/// each outgoing bundle, read from the store afresh. Without a store there
/// are none, and every certificate is reported untrusted.
fn outgoing_anchors(config: &Config) -> anyhow::Result<Vec<X509>> {
    use hisp_store::Flow;
    if config.data_dir.is_none() {
        return Ok(Vec::new());
    }
    let store = crate::store::open(config)?;
    let mut anchors = Vec::new();
    for domain in store.domains()? {
        for record in store.anchors_for(&domain.domain, Flow::Outgoing)? {
            anchors.push(
                X509::from_der(&record.der)
                    .with_context(|| format!("anchor {} in the store", record.info.subject))?,
            );
        }
        anchors.extend(crate::cmd::bundle::bundle_anchors(
            &*store,
            &domain.domain,
            Flow::Outgoing,
        )?);
    }
    Ok(anchors)
}

/// The JSON contract of `hisp discover --json` (more keys may be added).
fn to_json(d: &Discovery) -> Value {
    json!({
        "address": d.address,
        "usable": d.usable,
        "temporary": d.temporary,
        "reason": d.reason,
        "certificates": d.certificates.iter().map(cert_json).collect::<Vec<_>>(),
    })
}

fn cert_json(j: &Judged) -> Value {
    let (subject, issuer, serial, not_before, not_after) = match &j.cert {
        Some(c) => (
            json!(hisp_trust::name_line(c.subject_name())),
            json!(hisp_trust::name_line(c.issuer_name())),
            json!(hisp_trust::serial_hex(c)),
            json!(asn1_rfc3339(c.not_before())),
            json!(asn1_rfc3339(c.not_after())),
        ),
        None => (
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ),
    };
    json!({
        "source": j.found.source.to_string(),
        "owner": j.found.owner,
        "query": match j.query {
            hisp_discovery::Query::Address => "address",
            hisp_discovery::Query::Domain => "domain",
        },
        "binding": j.binding.as_str(),
        "subject": subject,
        "issuer": issuer,
        "serial": serial,
        "not_before": not_before,
        "not_after": not_after,
        "usable": j.usable,
        "temporary": j.temporary,
        "reason": if j.usable { Value::Null } else { json!(j.reason) },
        "note": if j.usable { json!(j.reason) } else { Value::Null },
    })
}

fn print_text(d: &Discovery) -> anyhow::Result<()> {
    let mut out = String::new();
    for (i, j) in d.certificates.iter().enumerate() {
        let subject = j
            .cert
            .as_ref()
            .map(|c| hisp_trust::name_line(c.subject_name()))
            .unwrap_or_else(|| "(undecodable)".into());
        out.push_str(&format!(
            "certificate {}: {} {} from {}\n  subject {}\n",
            i + 1,
            j.found.source,
            match j.query {
                hisp_discovery::Query::Address => "address-bound lookup",
                hisp_discovery::Query::Domain => "domain-bound lookup",
            },
            j.found.owner,
            subject
        ));
        if let Some(c) = &j.cert {
            out.push_str(&format!(
                "  issuer {}\n  serial {}\n  valid {} to {}\n",
                hisp_trust::name_line(c.issuer_name()),
                hisp_trust::serial_hex(c),
                asn1_rfc3339(c.not_before()),
                asn1_rfc3339(c.not_after())
            ));
        }
        out.push_str(&format!(
            "  binding {}\n  {}: {}\n",
            j.binding.as_str(),
            if j.usable { "usable" } else { "not usable" },
            j.reason
        ));
    }
    out.push_str(&format!(
        "{}: {} ({})\n",
        d.address,
        if d.usable {
            "usable"
        } else if d.temporary {
            "temporary failure"
        } else {
            "no usable certificate"
        },
        d.reason
    ));
    super::print_lines(&out)
}

/// An ASN.1 time as RFC 3339 UTC.
fn asn1_rfc3339(t: &Asn1TimeRef) -> String {
    let unix = openssl::asn1::Asn1Time::from_unix(0)
        .and_then(|epoch| epoch.diff(t))
        .map(|d| i64::from(d.days) * 86_400 + i64::from(d.secs));
    match unix {
        Ok(secs) => hisp_trust::rfc3339(secs),
        Err(_) => t.to_string(),
    }
}
