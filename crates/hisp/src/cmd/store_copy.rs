//! `hisp store copy` and `hisp store check`: an SQLite installation moved
//! into an empty PostgreSQL database, and the two compared table by table
//! (the work is `hisp_store::copy_sqlite_to_postgres` and
//! `check_sqlite_against_postgres`; this is the command line).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use hisp_store::{AuditCheck, CheckReport, CopyReport, PostgresUrl};
use serde_json::json;

use super::{print_json, print_table, say};
use crate::config::Config;
use crate::store_config::PASSWORD_ENV;

/// `hisp store copy` and `hisp store check`: the two stores.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The SQLite store: sqlite:PATH, a database file or a data directory
    /// (then PATH/hisp.db).
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The PostgreSQL database: postgres://USER@HOST:PORT/DB[?sslmode=...],
    /// without a password.
    #[arg(long, value_name = "postgres://...")]
    pub to: String,
    /// Read the database password from the first line of FILE (before
    /// HISP_STORE_PASSWORD and [store] password_file).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Print JSON (shape in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The two ends named on the command line, checked.
struct Ends {
    source: PathBuf,
    destination: PostgresUrl,
    password: Option<String>,
}

impl Ends {
    fn parse(args: &CopyArgs, config: &Config) -> anyhow::Result<Ends> {
        let Some(path) = args.from.strip_prefix("sqlite:") else {
            bail!(
                "--from must name the SQLite store as sqlite:PATH (a database file or a data \
                 directory), not '{}'",
                args.from
            );
        };
        if path.is_empty() {
            bail!("--from sqlite: names no path: give sqlite:PATH");
        }
        if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
            bail!(
                "--to must name the PostgreSQL database as postgres://USER@HOST:PORT/DB, not '{}'",
                args.to
            );
        }
        let destination = PostgresUrl::parse(&args.to).map_err(|e| {
            anyhow::anyhow!(
                "--to: {e}{}",
                if e.to_string().contains("password") {
                    format!(
                        "; give the password in {PASSWORD_ENV}, --password-file or [store] \
                         password_file"
                    )
                } else {
                    String::new()
                }
            )
        })?;
        let password = match &args.password_file {
            Some(file) => Some(password_from(file)?),
            None => config.store.password()?,
        };
        Ok(Ends {
            source: PathBuf::from(path),
            destination,
            password,
        })
    }
}

/// The first line of `file`, which must not be empty.
fn password_from(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the password file {}", file.display()))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        bail!(
            "the password file {} is empty: its first line is the password",
            file.display()
        );
    }
    Ok(password.to_string())
}

/// `hisp store copy`: exit 0 when copied; an error (exit 1) when not, the
/// destination left as it was.
pub fn copy(args: &CopyArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let ends = Ends::parse(args, config)?;
    let report = hisp_store::copy_sqlite_to_postgres(
        &ends.source,
        &ends.destination,
        ends.password.as_deref(),
    )
    .with_context(|| {
        format!(
            "cannot copy sqlite:{} to {}",
            ends.source.display(),
            ends.destination
        )
    })?;
    print_copy(args, &ends, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn print_copy(args: &CopyArgs, ends: &Ends, report: &CopyReport) -> anyhow::Result<()> {
    let from = report.source.display().to_string();
    let to = ends.destination.as_str();
    if args.json {
        return print_json(&json!({
            "from": from,
            "to": to,
            "source_schema": report.source_migration.to,
            "destination_schema": report.destination_migration.to,
            "tables": report.tables.iter().map(|t| json!({
                "table": t.table,
                "rows": t.rows,
            })).collect::<Vec<_>>(),
            "rows": report.rows(),
        }));
    }
    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| vec![t.table.to_string(), t.rows.to_string()])
        .collect();
    print_table(&["table", "rows"], &rows)?;
    say(&format!(
        "copied {} rows in {} tables from {from} to {to}",
        report.rows(),
        report.tables.len()
    ))
}

/// `hisp store check`: exit 0 when every table matches and the
/// destination's audit chain is intact, 1 when not (naming what differs);
/// an error (exit 1) when the stores cannot be read.
pub fn check(args: &CopyArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let ends = Ends::parse(args, config)?;
    let report = hisp_store::check_sqlite_against_postgres(
        &ends.source,
        &ends.destination,
        ends.password.as_deref(),
    )
    .with_context(|| {
        format!(
            "cannot compare sqlite:{} with {}",
            ends.source.display(),
            ends.destination
        )
    })?;
    print_check(args, &ends, &report)?;
    Ok(if report.matches() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn print_check(args: &CopyArgs, ends: &Ends, report: &CheckReport) -> anyhow::Result<()> {
    let from = report.source.display().to_string();
    let to = ends.destination.as_str();
    let differing = report.differing();
    if args.json {
        let chain = match &report.audit_chain {
            AuditCheck::Intact { events } => json!({"intact": true, "events": events}),
            AuditCheck::Broken { id, intact, reason } => json!({
                "intact": false,
                "broken_at": id,
                "events_before": intact,
                "reason": reason,
            }),
        };
        return print_json(&json!({
            "from": from,
            "to": to,
            "tables": report.tables.iter().map(|t| json!({
                "table": t.table,
                "source_rows": t.source_rows,
                "destination_rows": t.destination_rows,
                "source_hash": hex(&t.source_hash),
                "destination_hash": hex(&t.destination_hash),
                "matches": t.matches(),
            })).collect::<Vec<_>>(),
            "audit_chain": chain,
            "differing": differing,
            "matches": report.matches(),
        }));
    }
    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.to_string(),
                t.source_rows.to_string(),
                t.destination_rows.to_string(),
                if t.matches() { "same" } else { "DIFFERS" }.to_string(),
            ]
        })
        .collect();
    print_table(&["table", "source", "destination", "result"], &rows)?;
    say(&match &report.audit_chain {
        AuditCheck::Intact { events } => {
            format!("audit chain of the destination: intact, {events} events")
        }
        AuditCheck::Broken { id, reason, .. } => {
            format!("audit chain of the destination: BROKEN at event {id}: {reason}")
        }
    })?;
    if report.matches() {
        say(&format!(
            "the stores match: {} tables, {} rows ({from} and {to})",
            report.tables.len(),
            report.tables.iter().map(|t| t.source_rows).sum::<u64>()
        ))
    } else if differing.is_empty() {
        say("the stores differ: the destination's audit chain is broken")
    } else {
        say(&format!("the stores differ: {}", differing.join(", ")))
    }
}
