//! `hisp cert ca` and `hisp cert issue`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hisp_ca::{
    issue as issue_cert, Binding, CaOptions, CertificateAuthority, IssueOptions, Usage, Validity,
};
use time::{Duration, OffsetDateTime};

use crate::cli::{CaArgs, IssueArgs, UsageArg};
use crate::config::Config;
use crate::input::write_stdout;

/// Creates a root CA and prints the paths written, one per line.
pub fn ca(args: &CaArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let out = dir_or_default(args.out.clone(), config, "--out")?;
    let options = CaOptions {
        bits: args.bits,
        validity: Validity::Days(args.days),
    };
    let ca = CertificateAuthority::create(&args.cn, &options).context("cannot create the CA")?;
    let written = ca
        .save(&out)
        .with_context(|| format!("cannot save the CA in {}", out.display()))?;
    tracing::info!(cn = %args.cn, dir = %out.display(), "created CA");
    print_paths(&written)
}

/// Issues an address- or domain-bound certificate and prints the paths written.
pub fn issue(args: &IssueArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let ca_dir = dir_or_default(args.ca.clone(), config, "--ca")?;
    let binding = match (&args.address, &args.domain) {
        (Some(a), None) => Binding::Address(a.clone()),
        (None, Some(d)) => Binding::Domain(d.clone()),
        _ => bail!("give exactly one of --address or --domain"),
    };
    // Check the name before loading the CA, so a typo is reported as such.
    let binding = binding.normalized()?;
    let options = IssueOptions {
        bits: args.bits,
        validity: validity(args)?,
        usage: match args.usage {
            UsageArg::Both => Usage::Combined,
            UsageArg::Signing => Usage::SigningOnly,
            UsageArg::Encryption => Usage::EncryptionOnly,
        },
    };
    let ca = CertificateAuthority::load(&ca_dir).context("cannot load the CA")?;
    let issued = issue_cert(&ca, &binding, &options)
        .with_context(|| format!("cannot issue a certificate for the {binding}"))?;
    let written = issued
        .save(&args.out)
        .with_context(|| format!("cannot save the certificate in {}", args.out.display()))?;
    tracing::info!(%binding, dir = %args.out.display(), "issued certificate");
    print_paths(&written)
}

fn validity(args: &IssueArgs) -> anyhow::Result<Validity> {
    const DEFAULT_DAYS: u32 = 365;
    if args.expired {
        return Ok(Validity::expired(args.days.unwrap_or(DEFAULT_DAYS)));
    }
    let days = Duration::days(i64::from(args.days.unwrap_or(DEFAULT_DAYS)));
    Ok(match (args.not_before, args.not_after) {
        (None, None) => Validity::Days(args.days.unwrap_or(DEFAULT_DAYS)),
        (Some(_), Some(_)) if args.days.is_some() => {
            bail!("--days cannot be combined with both --not-before and --not-after")
        }
        (Some(not_before), Some(not_after)) => Validity::Between {
            not_before,
            not_after,
        },
        (Some(not_before), None) => Validity::Between {
            not_before,
            not_after: not_before + days,
        },
        (None, Some(not_after)) => {
            // Without --days, a future end starts now, and a past end (an
            // expired test certificate) gets the default length.
            let now = OffsetDateTime::now_utc();
            let not_before = match args.days {
                None if not_after > now => now - Duration::minutes(1),
                _ => not_after - days,
            };
            Validity::Between {
                not_before,
                not_after,
            }
        }
    })
}

fn dir_or_default(given: Option<PathBuf>, config: &Config, flag: &str) -> anyhow::Result<PathBuf> {
    match given.or_else(|| config.ca_dir()) {
        Some(dir) => Ok(dir),
        None => bail!(
            "{flag} DIR is required (or set data_dir in the config file to use <data_dir>/ca)"
        ),
    }
}

fn print_paths(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    for p in paths {
        text.push_str(&p.display().to_string());
        text.push('\n');
    }
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
