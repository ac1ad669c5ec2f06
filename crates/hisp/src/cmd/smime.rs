//! `hisp smime seal` and `hisp smime open`.

use std::process::ExitCode;

use anyhow::{bail, Context};
use hisp_smime::{open_report, seal as seal_message, OpenOptions, OpenReport, SealOptions, Signer};
use serde_json::{json, Value};

use crate::cli::{OpenArgs, SealArgs};
use crate::config::Config;
use crate::input::{read_certs, read_pair, read_stdin, write_stdout};

/// Seals the message on stdin to every recipient; the sealed message goes to stdout.
pub fn seal(args: &SealArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let pair = read_pair(&args.signer_cert, &args.signer_key, "signer")?;
    let mut recipients = Vec::new();
    for path in &args.recipient_certs {
        recipients.extend(read_certs(path, "recipient certificate")?);
    }
    let options = SealOptions {
        cipher: args.cipher.unwrap_or(config.smime.cipher),
        key_transport: args.key_transport.unwrap_or(config.smime.key_transport),
        copy_subject: args.copy_subject || config.smime.copy_subject,
    };
    let message = read_stdin("message")?;
    let sealed =
        seal_message(&message, &Signer::new(pair), &recipients, &options).context("seal failed")?;
    tracing::info!(
        recipients = recipients.len(),
        cipher = options.cipher.name(),
        key_transport = options.key_transport.name(),
        "sealed"
    );
    write_stdout(&sealed)?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the sealed message on stdin. Exit 0 only when it decrypted, verified
/// and its signer chains to an anchor.
pub fn open(args: &OpenArgs) -> anyhow::Result<ExitCode> {
    if args.certs.len() != args.keys.len() {
        bail!(
            "give one --key for every --cert (got {} --cert and {} --key)",
            args.certs.len(),
            args.keys.len()
        );
    }
    let mut keys = Vec::new();
    for (cert, key) in args.certs.iter().zip(&args.keys) {
        keys.push(read_pair(cert, key, "recipient")?);
    }
    let mut anchors = Vec::new();
    for path in &args.anchors {
        anchors.extend(read_certs(path, "anchor")?);
    }
    let sealed = read_stdin("sealed message")?;
    let report = open_report(
        &sealed,
        &OpenOptions {
            keys: &keys,
            anchors: &anchors,
            at: args.at.map(|t| t.unix_timestamp()),
        },
    );
    let failure = match &report.result {
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(format!("open failed at {}: {e}", e.step())),
        None => Some("open failed: nothing was opened".to_string()),
    };
    if let Some(reason) = &failure {
        eprintln!("hisp: {}", crate::escape::escape_control(reason));
    }
    if args.json {
        let mut text = serde_json::to_string(&report_json(&report))
            .context("cannot encode the JSON report")?;
        text.push('\n');
        write_stdout(text.as_bytes())?;
    } else if let Some(Ok(inner)) = &report.result {
        write_stdout(inner)?;
    }
    Ok(if failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `--json` report: `ok`, `reason`, `code`, `step`, the algorithms, every
/// signer and the size of the inner message.
fn report_json(report: &OpenReport) -> Value {
    let (ok, reason, code, step, inner_size) = match &report.result {
        Some(Ok(inner)) => (true, None, None, None, Some(inner.len())),
        Some(Err(e)) => (
            false,
            Some(e.to_string()),
            Some(e.code()),
            Some(e.step().to_string()),
            None,
        ),
        None => (
            false,
            Some("nothing was opened".to_string()),
            None,
            None,
            None,
        ),
    };
    let signers: Vec<Value> = report
        .signers
        .iter()
        .map(|s| {
            json!({
                "subject": s.subject,
                "issuer": s.issuer,
                "serial": s.serial,
                "not_after": s.not_after,
                "sans": s.sans,
                "trusted": s.trusted,
                "digest": s.digest.map(|d| d.name()),
                "problem": s.problem.as_ref().map(|p| p.to_string()),
            })
        })
        .collect();
    json!({
        "ok": ok,
        "reason": reason,
        "code": code,
        "step": step,
        "cipher": report.cipher.map(|c| c.name()),
        "key_transport": report.key_transport.map(|k| k.name()),
        "digest": report.digest.map(|d| d.name()),
        "wrapped": report.wrapped,
        "signers": signers,
        "inner_size": inner_size,
    })
}
