//! `hisp anchor add|list|remove`.

use std::process::ExitCode;

use anyhow::Context;
use hisp_store::{AnchorRecord, NewAnchor};
use serde_json::{json, Value};

use super::domain::require_local;
use super::{print_json, print_table, rfc3339, say};
use crate::cli::{AnchorAddArgs, AnchorListArgs, AnchorRemoveArgs};
use crate::config::Config;
use crate::input::read_certs;
use crate::store;

/// Adds every certificate in the file as an anchor of the domain, all or none.
pub fn add(args: &AnchorAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    require_local(&*store, &args.domain)?;
    let file = args.file.display();
    let anchors = read_certs(&args.file, "anchor file")?
        .iter()
        .map(|c| {
            let der = c
                .to_der()
                .with_context(|| format!("cannot encode a certificate of {file}"))?;
            NewAnchor::from_der(&der).with_context(|| format!("anchor file {file}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let added = store
        .add_anchors(&args.domain, args.direction.into(), &anchors)
        .with_context(|| format!("nothing added from {file}"))?;
    for a in &added {
        tracing::info!(domain = %a.domain, fingerprint = %a.info.fingerprint, "added anchor");
        say(&format!(
            "added anchor {} serial {} fingerprint {} to {} ({})",
            a.info.subject, a.info.serial, a.info.fingerprint, a.domain, a.direction
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists anchors, of one domain or all.
pub fn list(args: &AnchorListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    if let Some(d) = &args.domain {
        require_local(&*store, d)?;
    }
    let anchors = store.anchors(args.domain.as_ref())?;
    if args.json {
        print_json(&Value::Array(anchors.iter().map(anchor_json).collect()))?;
    } else {
        let rows: Vec<Vec<String>> = anchors
            .iter()
            .map(|a| {
                vec![
                    a.domain.to_string(),
                    a.direction.to_string(),
                    a.info.serial.to_string(),
                    rfc3339(a.info.not_after),
                    a.info.fingerprint.to_string(),
                    a.info.subject.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "DOMAIN",
                "DIRECTION",
                "SERIAL",
                "NOT_AFTER",
                "FINGERPRINT",
                "SUBJECT",
            ],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes one anchor of a domain.
pub fn remove(args: &AnchorRemoveArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    require_local(&*store, &args.domain)?;
    let a = store.remove_anchor(&args.domain, &args.anchor)?;
    tracing::info!(domain = %a.domain, fingerprint = %a.info.fingerprint, "removed anchor");
    say(&format!(
        "removed anchor {} serial {} fingerprint {} from {}",
        a.info.subject, a.info.serial, a.info.fingerprint, a.domain
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The JSON shape of an anchor (docs/cli.md).
fn anchor_json(a: &AnchorRecord) -> Value {
    json!({
        "domain": a.domain.as_str(),
        "direction": a.direction.as_str(),
        "subject": a.info.subject,
        "issuer": a.info.issuer,
        "serial": a.info.serial.as_str(),
        "fingerprint": a.info.fingerprint.to_string(),
        "not_before": rfc3339(a.info.not_before),
        "not_after": rfc3339(a.info.not_after),
        "added_at": rfc3339(a.added_at),
    })
}
