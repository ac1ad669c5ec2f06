//! `hisp smime seal` and `hisp smime open`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hisp_smime::{open_report, seal as seal_message, OpenOptions, OpenReport, SealOptions, Signer};
use hisp_trust::{validate_path, Anchors, HttpFetcher, Intermediates, PathFailure, Remote};
use openssl::x509::X509;
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

/// Why no signer of an opened message has a path to the `--anchor`s.
struct Untrusted {
    /// `expired-signer` or `untrusted-signer`.
    code: &'static str,
    /// `expired signer <cert>: ...` or `untrusted signer <cert>: ...`.
    reason: String,
}

/// What hisp-trust says of each signer: the path check of the `--anchor`s
/// at `at` (RFC 5280 §6.1, with the message's certificates and caIssuers
/// intermediates), one entry per signer in the report's order (`None`
/// for a signer whose signature did not verify), and the refusal when no
/// verified signer has a path. The CLI checks the path only: binding to an
/// address and revocation are for `hisp serve` and `hisp discover`.
fn judge_signers(
    report: &OpenReport,
    anchors: &Anchors,
    at: i64,
) -> (Vec<Option<Result<(), String>>>, Option<Untrusted>) {
    let remote = Remote::new(Arc::new(HttpFetcher::new(
        Duration::from_secs(15),
        32 << 20,
    )));
    let intermediates = Intermediates {
        message: &report.certificates,
        local: &[],
    };
    let mut verdicts = Vec::new();
    let mut failures: Vec<(bool, String)> = Vec::new();
    let mut trusted = false;
    for signer in &report.signers {
        if !signer.verified {
            verdicts.push(None);
            continue;
        }
        match validate_path(&signer.cert, anchors, &intermediates, at, &remote) {
            Ok(_) => {
                trusted = true;
                verdicts.push(Some(Ok(())));
            }
            Err(failure) => {
                let (expired, text) = untrusted_text(&signer.cert, &failure);
                failures.push((expired, text.clone()));
                verdicts.push(Some(Err(text)));
            }
        }
    }
    // As before hisp-trust judged signers: an expired path is the more
    // telling refusal.
    let refusal = if trusted {
        None
    } else {
        failures
            .iter()
            .find(|(expired, _)| *expired)
            .or(failures.first())
            .map(|(expired, reason)| Untrusted {
                code: if *expired {
                    "expired-signer"
                } else {
                    "untrusted-signer"
                },
                reason: reason.clone(),
            })
    };
    (verdicts, refusal)
}

/// A signer's path failure in words, and whether it is one of validity.
fn untrusted_text(cert: &X509, failure: &PathFailure) -> (bool, String) {
    let id = hisp_trust::cert_id(cert);
    if failure.failure().is_validity() {
        (true, format!("expired signer {id}: {failure}"))
    } else {
        (false, format!("untrusted signer {id}: {failure}"))
    }
}

/// Opens the sealed message on stdin. Exit 0 only when it decrypted, a
/// signature verified and that signer has a path to an anchor (hisp-trust).
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
    let anchors = Anchors::new(anchors).context("cannot use the anchors")?;
    let sealed = read_stdin("sealed message")?;
    let report = open_report(&sealed, &OpenOptions { keys: &keys });
    let at = args
        .at
        .unwrap_or_else(time::OffsetDateTime::now_utc)
        .unix_timestamp();
    let (verdicts, untrusted) = match &report.result {
        Some(Ok(_)) => judge_signers(&report, &anchors, at),
        _ => (vec![None; report.signers.len()], None),
    };
    let failure = match (&report.result, &untrusted) {
        (Some(Ok(_)), None) => None,
        (Some(Ok(_)), Some(u)) => Some(format!("open failed at trust: {}", u.reason)),
        (Some(Err(e)), _) => Some(format!("open failed at {}: {e}", e.step())),
        (None, _) => Some("open failed: nothing was opened".to_string()),
    };
    if let Some(reason) = &failure {
        eprintln!("hisp: {}", crate::escape::escape_control(reason));
    }
    if args.json {
        let mut text = serde_json::to_string(&report_json(&report, &verdicts, untrusted.as_ref()))
            .context("cannot encode the JSON report")?;
        text.push('\n');
        write_stdout(text.as_bytes())?;
    } else if let (Some(Ok(inner)), None) = (&report.result, &failure) {
        write_stdout(inner)?;
    }
    Ok(if failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `--json` report: `ok`, `reason`, `code`, `step`, the algorithms, every
/// signer (`trusted` when its signature verified and it has a path to an
/// anchor) and the size of the inner message.
fn report_json(
    report: &OpenReport,
    verdicts: &[Option<Result<(), String>>],
    untrusted: Option<&Untrusted>,
) -> Value {
    let (ok, reason, code, step, inner_size) = match (&report.result, untrusted) {
        (Some(Ok(_)), Some(u)) => (
            false,
            Some(u.reason.clone()),
            Some(u.code),
            Some("trust".to_string()),
            None,
        ),
        (Some(Ok(inner)), None) => (true, None, None, None, Some(inner.len())),
        (Some(Err(e)), _) => (
            false,
            Some(e.to_string()),
            Some(e.code()),
            Some(e.step().to_string()),
            None,
        ),
        (None, _) => (
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
        .zip(verdicts)
        .map(|(s, verdict)| {
            let problem = match (&s.problem, verdict) {
                (Some(p), _) => Some(p.to_string()),
                (None, Some(Err(why))) => Some(why.clone()),
                _ => None,
            };
            json!({
                "subject": s.subject,
                "issuer": s.issuer,
                "serial": s.serial,
                "not_after": s.not_after,
                "sans": s.sans,
                "trusted": matches!(verdict, Some(Ok(()))),
                "digest": s.digest.map(|d| d.name()),
                "problem": problem,
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
