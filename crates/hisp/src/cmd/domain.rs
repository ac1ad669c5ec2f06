//! `hisp domain add|list|remove`.

use std::collections::HashMap;
use std::process::ExitCode;

use hisp_ca::Binding;
use hisp_store::{Domain, Owner, Store};
use serde_json::{json, Value};

use super::address::{certificate_json, certificate_line, certificates_from};
use super::{print_json, print_table, rfc3339, say};
use crate::cli::{DomainAddArgs, DomainArgs, ListArgs};
use crate::config::Config;
use crate::store;

/// Adds a local domain, with a domain-bound certificate when asked.
pub fn add(args: &DomainAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let domain = &args.domain;
    if store.domain(domain).is_ok() {
        anyhow::bail!("domain {domain} already exists");
    }
    let certs = certificates_from(&args.cert, &Binding::Domain(domain.to_string()))?;
    let record = store.add_domain(domain, &certs)?;
    tracing::info!(domain = %record.domain, certificates = certs.len(), "added domain");
    say(&format!("added domain {}", record.domain))?;
    for c in store.certificates(Some(&Owner::Domain(domain.clone())))? {
        say(&certificate_line(&c))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists the local domains with counts of what hangs off them.
pub fn list(args: &ListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let domains = store.domains()?;
    let mut addresses: HashMap<Domain, usize> = HashMap::new();
    for a in store.addresses(None)? {
        *addresses.entry(a.address.domain().clone()).or_default() += 1;
    }
    let mut anchors: HashMap<Domain, usize> = HashMap::new();
    for a in store.anchors(None)? {
        *anchors.entry(a.domain).or_default() += 1;
    }
    let mut bundles: HashMap<Domain, usize> = HashMap::new();
    for b in store.bundles(None)? {
        *bundles.entry(b.domain).or_default() += 1;
    }
    let mut certs: HashMap<Domain, Vec<Value>> = HashMap::new();
    for c in store.certificates(None)? {
        if let Owner::Domain(d) = &c.owner {
            certs
                .entry(d.clone())
                .or_default()
                .push(certificate_json(&c));
        }
    }
    let count = |m: &HashMap<Domain, usize>, d: &Domain| m.get(d).copied().unwrap_or(0);
    if args.json {
        let list: Vec<Value> = domains
            .iter()
            .map(|d| {
                json!({
                    "domain": d.domain.as_str(),
                    "added_at": rfc3339(d.added_at),
                    "address_count": count(&addresses, &d.domain),
                    "anchor_count": count(&anchors, &d.domain),
                    "bundle_count": count(&bundles, &d.domain),
                    "certificates": certs.remove(&d.domain).unwrap_or_default(),
                })
            })
            .collect();
        print_json(&Value::Array(list))?;
    } else {
        let rows: Vec<Vec<String>> = domains
            .iter()
            .map(|d| {
                vec![
                    d.domain.to_string(),
                    count(&addresses, &d.domain).to_string(),
                    certs.get(&d.domain).map_or(0, Vec::len).to_string(),
                    count(&anchors, &d.domain).to_string(),
                    count(&bundles, &d.domain).to_string(),
                ]
            })
            .collect();
        print_table(
            &["DOMAIN", "ADDRESSES", "CERTIFICATES", "ANCHORS", "BUNDLES"],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes a local domain (refused while it has addresses).
pub fn remove(args: &DomainArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    store.remove_domain(&args.domain)?;
    tracing::info!(domain = %args.domain, "removed domain");
    say(&format!("removed domain {}", args.domain))?;
    Ok(ExitCode::SUCCESS)
}

/// Fails with advice unless `domain` is local.
pub(crate) fn require_local(store: &dyn Store, domain: &Domain) -> anyhow::Result<()> {
    match store.domain(domain) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => anyhow::bail!(
            "domain {domain} is not a local domain (`hisp domain list` shows them, \
             `hisp domain add {domain}` adds it)"
        ),
        Err(e) => Err(e.into()),
    }
}
