//! `hisp bundle add|list|remove|refresh`. The store keeps the bundles;
//! hisp-trust reads and parses them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hisp_store::{BundleRecord, BundleSource, NewBundle, Store};
use serde_json::{json, Value};

use super::domain::require_local;
use super::{print_json, print_table, rfc3339, say};
use crate::cli::{BundleAddArgs, BundleListArgs, BundleRefreshArgs, BundleRemoveArgs};
use crate::config::Config;
use crate::store;

/// Attaches a bundle to a local domain.
pub fn add(args: &BundleAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let source = source(&args.source, true)?;
    let store = store::open(config)?;
    require_local(&*store, &args.domain)?;
    let b = store.add_bundle(&NewBundle {
        domain: args.domain.clone(),
        source,
        direction: args.direction.into(),
        refresh_secs: args.refresh,
    })?;
    tracing::info!(domain = %b.domain, source = %b.source, "added bundle");
    say(&format!(
        "added bundle {} to {} ({}, refreshed every {} s)",
        b.source, b.domain, b.direction, b.refresh_secs
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Lists bundles, of one domain or all, with the state of their last fetch.
pub fn list(args: &BundleListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    if let Some(d) = &args.domain {
        require_local(&*store, d)?;
    }
    let bundles = store.bundles(args.domain.as_ref())?;
    if args.json {
        print_json(&Value::Array(bundles.iter().map(bundle_json).collect()))?;
    } else {
        let rows: Vec<Vec<String>> = bundles
            .iter()
            .map(|b| {
                vec![
                    b.domain.to_string(),
                    b.direction.to_string(),
                    b.refresh_secs.to_string(),
                    b.last_fetched_at.map_or("never".into(), rfc3339),
                    status(b),
                    b.source.to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "DOMAIN",
                "DIRECTION",
                "REFRESH_S",
                "LAST_FETCHED",
                "STATUS",
                "SOURCE",
            ],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Detaches a bundle from a domain.
pub fn remove(args: &BundleRemoveArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let source = source(&args.source, false)?;
    let store = store::open(config)?;
    require_local(&*store, &args.domain)?;
    store.remove_bundle(&args.domain, &source)?;
    tracing::info!(domain = %args.domain, source = %source, "removed bundle");
    say(&format!("removed bundle {source} from {}", args.domain))?;
    Ok(ExitCode::SUCCESS)
}

/// A URL as given, or a file made absolute (and, when adding, checked to exist).
fn source(text: &str, must_exist: bool) -> anyhow::Result<BundleSource> {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || text.contains("://") {
        return Ok(BundleSource::parse(text)?);
    }
    let path = Path::new(text);
    let absolute = if must_exist {
        if !path.is_file() {
            bail!("bundle file {text} does not exist or is not a file");
        }
        path.canonicalize()
    } else {
        std::path::absolute(path)
    }
    .with_context(|| format!("cannot resolve the bundle file {text}"))?;
    let absolute = absolute
        .to_str()
        .with_context(|| format!("the bundle file path {text} is not UTF-8"))?;
    Ok(BundleSource::parse(absolute)?)
}

fn status(b: &BundleRecord) -> String {
    match (&b.last_error, &b.last_good_at) {
        (Some(e), Some(_)) => format!("error (keeping last good): {e}"),
        (Some(e), None) => format!("error: {e}"),
        (None, Some(_)) => "ok".into(),
        (None, None) => "not fetched yet".into(),
    }
}

/// The JSON shape of a bundle (docs/cli.md).
fn bundle_json(b: &BundleRecord) -> Value {
    json!({
        "domain": b.domain.as_str(),
        "kind": b.source.kind(),
        "source": b.source.location(),
        "direction": b.direction.as_str(),
        "refresh_seconds": b.refresh_secs,
        "last_fetched_at": b.last_fetched_at.map(rfc3339),
        "last_good_at": b.last_good_at.map(rfc3339),
        "last_good_bytes": b.last_good.as_ref().map(Vec::len),
        "last_error": b.last_error,
        "added_at": rfc3339(b.added_at),
    })
}

/// Fetches and parses every bundle (of one domain, or all) and records the
/// outcome in the store: a good copy replaces the last good one; a failure
/// is recorded beside it, and the last good copy stays in force.
pub fn refresh(args: &BundleRefreshArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    if let Some(d) = &args.domain {
        require_local(&*store, d)?;
    }
    let fetcher = hisp_trust::HttpFetcher::new(std::time::Duration::from_secs(30), 32 << 20);
    let outcomes = hisp_gateway::refresh_bundles(
        &*store,
        &fetcher,
        args.domain.as_ref(),
        time::OffsetDateTime::now_utc(),
        false,
    )?;
    let mut failed = 0;
    for o in outcomes {
        match o.result {
            Ok(count) => say(&format!(
                "refreshed bundle {} of {}: {count} certificate(s)",
                o.source, o.domain
            ))?,
            Err(e) => {
                failed += 1;
                let line = format!(
                    "hisp: bundle {} of {} not refreshed ({e}); {}",
                    o.source,
                    o.domain,
                    if o.had_good_copy {
                        "the last good copy stays in force"
                    } else {
                        "there is no good copy yet"
                    }
                );
                eprintln!("{}", crate::escape::escape_control(&line));
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The certificates of the last good copy of every bundle of `domain` that
/// covers `flow`, as anchors.
pub fn bundle_anchors(
    store: &dyn Store,
    domain: &hisp_store::Domain,
    flow: hisp_store::Flow,
) -> anyhow::Result<Vec<openssl::x509::X509>> {
    let mut anchors = Vec::new();
    for bundle in store.bundles(Some(domain))? {
        if !bundle.direction.covers(flow) {
            continue;
        }
        if let Some(bytes) = &bundle.last_good {
            match hisp_trust::parse_bundle(bytes, &bundle.source.to_string()) {
                Ok(certs) => anchors.extend(certs),
                Err(e) => {
                    tracing::warn!(source = %bundle.source, error = %e, "stored bundle does not parse")
                }
            }
        }
    }
    Ok(anchors)
}
