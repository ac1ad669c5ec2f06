//! `hisp store migrate`: the store's schema brought up to date, saying what
//! that applied; `hisp store copy` and `hisp store check` (`store_copy.rs`):
//! an SQLite installation moved to PostgreSQL, and the two compared. (`hisp serve` and every other command migrate on opening
//! the store too; this command does it alone, before an upgrade's start or
//! from a deployment script.) With `[store] url` set it migrates that
//! PostgreSQL database instead of the SQLite file.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hisp_store::MigrationReport;
use serde_json::json;

use super::{print_json, say};
use crate::config::Config;
use crate::store;

/// `hisp store ...`
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  hisp --config /etc/hisp/hisp.toml store migrate
  hisp --config hisp.toml store migrate --json
  hisp store copy --from sqlite:/var/lib/hisp --to postgres://hisp@db.example:5432/hisp
  hisp store check --from sqlite:/var/lib/hisp --to postgres://hisp@db.example:5432/hisp")]
pub enum StoreCommand {
    /// Bring the store's schema up to date: apply the migrations it lacks,
    /// each named, or say that it is current. Exit 0 then; 1 with the reason
    /// when the store cannot be migrated (a database written by a newer
    /// hisp, a schema history that does not fit this hisp's migrations).
    Migrate(MigrateArgs),
    /// Copy a whole SQLite installation (every table, every row, ids kept)
    /// into an empty PostgreSQL database, migrated first, in one
    /// transaction; print the rows copied per table. Stop `hisp serve` on
    /// the source first. Exit 0 when copied; 1 with the reason when not
    /// (the destination has rows, a store cannot be reached), nothing then
    /// written. The password: --password-file, else HISP_STORE_PASSWORD,
    /// else [store] password_file.
    Copy(crate::cmd::store_copy::CopyArgs),
    /// Compare an SQLite store with a PostgreSQL database table by table
    /// (row counts and a hash over the rows) and verify the destination's
    /// audit chain. Exit 0 when every table matches and the chain is
    /// intact; 1 naming the tables that differ.
    Check(crate::cmd::store_copy::CopyArgs),
}

/// `hisp store migrate`
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Print JSON (shape in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs one `hisp store` command.
pub fn run(command: &StoreCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Migrate(args) => migrate(args, config),
        StoreCommand::Copy(args) => crate::cmd::store_copy::copy(args, config),
        StoreCommand::Check(args) => crate::cmd::store_copy::check(args, config),
    }
}

fn migrate(args: &MigrateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if let Some(pool) = store::open_postgres(config)? {
        let report = pool
            .migrate()
            .with_context(|| format!("cannot migrate the PostgreSQL store {}", pool.url()))?;
        return print_report(args, pool.url().as_str(), &report);
    }
    let store = store::open(config)?;
    print_report(args, &store.database(), store.migration())
}

fn print_report(
    args: &MigrateArgs,
    database: &str,
    report: &MigrationReport,
) -> anyhow::Result<ExitCode> {
    if args.json {
        print_json(&json!({
            "database": database,
            "from": report.from,
            "to": report.to,
            "applied": report.applied.iter().map(|a| json!({
                "version": a.version,
                "name": a.name,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        for line in lines(database, report) {
            say(&line)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `hisp store migrate` says of a run.
fn lines(database: &str, report: &MigrationReport) -> Vec<String> {
    if report.was_current() {
        return vec![format!(
            "the schema of {database} is current: version {}, nothing to apply",
            report.to
        )];
    }
    let mut lines: Vec<String> = report
        .applied
        .iter()
        .map(|a| format!("applied migration {} ({})", a.version, a.name))
        .collect();
    lines.push(match report.from {
        0 => format!(
            "the schema of {database} is at version {} (a new database)",
            report.to
        ),
        from => format!(
            "the schema of {database} is at version {} (was {from})",
            report.to
        ),
    });
    lines
}
