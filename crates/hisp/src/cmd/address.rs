//! `hisp address add|list|remove`, and the certificate source and JSON shape
//! shared with `hisp domain`.

use std::process::ExitCode;

use anyhow::{bail, Context};
use hisp_ca::{issue, Binding, CertificateAuthority, IssueOptions};
use hisp_store::{CertificateRecord, DirectAddress, NewCertificate, Owner};
use serde_json::{json, Value};

use super::domain::require_local;
use super::{print_json, print_table, rfc3339, say};
use crate::cli::{AddressAddArgs, AddressArgs, CertSourceArgs, ListArgs};
use crate::config::Config;
use crate::input::{read_certs, read_file};
use crate::store;

/// Adds a local address, with an address-bound certificate when asked.
pub fn add(args: &AddressAddArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let address = &args.address;
    require_local(&*store, address.domain())?;
    // Refuse a duplicate before a key is generated for nothing.
    if let Ok(existing) = store.address(address) {
        bail!("address {} already exists", existing.address);
    }
    let certs = certificates_from(&args.cert, &Binding::Address(address.to_string()))?;
    let record = store.add_address(address, &certs)?;
    tracing::info!(address = %record.address, certificates = certs.len(), "added address");
    say(&format!("added address {}", record.address))?;
    for c in store.certificates(Some(&Owner::Address(address.clone())))? {
        say(&certificate_line(&c))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists local addresses with their certificates.
pub fn list(args: &ListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let addresses = store.addresses(None)?;
    let certs = store.certificates(None)?;
    let certs_of = |a: &DirectAddress| -> Vec<&CertificateRecord> {
        certs
            .iter()
            .filter(|c| matches!(&c.owner, Owner::Address(o) if o == a))
            .collect()
    };
    if args.json {
        let list: Vec<Value> = addresses
            .iter()
            .map(|a| {
                json!({
                    "address": a.address.to_string(),
                    "domain": a.address.domain().as_str(),
                    "added_at": rfc3339(a.added_at),
                    "certificates": certs_of(&a.address)
                        .into_iter()
                        .map(certificate_json)
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&Value::Array(list))?;
    } else {
        let mut rows = Vec::new();
        for a in &addresses {
            let mut any = false;
            for c in certs_of(&a.address) {
                any = true;
                rows.push(vec![
                    a.address.to_string(),
                    c.usage.to_string(),
                    rfc3339(c.info.not_after),
                    yes_no(c.private_key.is_some()),
                    c.info.fingerprint.to_string(),
                ]);
            }
            if !any {
                rows.push(vec![
                    a.address.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
            }
        }
        print_table(
            &["ADDRESS", "USAGE", "NOT_AFTER", "KEY", "FINGERPRINT"],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes a local address with its certificates and keys.
pub fn remove(args: &AddressArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let record = store.address(&args.address)?;
    store.remove_address(&args.address)?;
    tracing::info!(address = %record.address, "removed address");
    say(&format!("removed address {}", record.address))?;
    Ok(ExitCode::SUCCESS)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// The certificate (with its key) that `--cert-from` issues or `--cert` and
/// `--key` import; none without those flags.
pub(crate) fn certificates_from(
    args: &CertSourceArgs,
    binding: &Binding,
) -> anyhow::Result<Vec<NewCertificate>> {
    match (&args.cert_from, &args.cert, &args.key) {
        (Some(ca_dir), None, None) => {
            let ca = CertificateAuthority::load(ca_dir)
                .with_context(|| format!("cannot load the CA in {}", ca_dir.display()))?;
            let issued = issue(&ca, binding, &IssueOptions::default())
                .with_context(|| format!("cannot issue a certificate for the {binding}"))?;
            let der = issued
                .cert
                .to_der()
                .context("cannot encode the certificate")?;
            let key = issued.key_pem()?;
            Ok(vec![NewCertificate::new(&der, Some(&key))?])
        }
        (None, Some(cert), Some(key)) => {
            let mut certs = read_certs(cert, "certificate")?;
            if certs.len() != 1 {
                bail!(
                    "certificate file {} holds {} certificates; give exactly one",
                    cert.display(),
                    certs.len()
                );
            }
            let der = certs
                .pop()
                .map(|c| c.to_der())
                .transpose()
                .context("cannot encode the certificate")?
                .context("no certificate")?;
            let key_bytes = read_file(key, "private key")?;
            let new = NewCertificate::new(&der, Some(&key_bytes)).with_context(|| {
                format!("certificate {} with key {}", cert.display(), key.display())
            })?;
            Ok(vec![new])
        }
        (None, None, None) => Ok(Vec::new()),
        _ => bail!("give either --cert-from CA_DIR, or both --cert FILE and --key FILE"),
    }
}

/// One line describing a stored certificate; never the key itself.
pub(crate) fn certificate_line(c: &CertificateRecord) -> String {
    format!(
        "  certificate {} serial {} fingerprint {} usage {} not after {}{}",
        c.info.subject,
        c.info.serial,
        c.info.fingerprint,
        c.usage,
        rfc3339(c.info.not_after),
        if c.private_key.is_some() {
            " (private key stored)"
        } else {
            ""
        }
    )
}

/// The JSON shape of a certificate (docs/cli.md); never the key itself.
pub(crate) fn certificate_json(c: &CertificateRecord) -> Value {
    json!({
        "subject": c.info.subject,
        "issuer": c.info.issuer,
        "serial": c.info.serial.as_str(),
        "fingerprint": c.info.fingerprint.to_string(),
        "not_before": rfc3339(c.info.not_before),
        "not_after": rfc3339(c.info.not_after),
        "usage": c.usage.as_str(),
        "has_private_key": c.private_key.is_some(),
    })
}
