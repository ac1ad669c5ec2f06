//! `hisp audit verify|export`: the audit trail, and the check that nobody
//! changed or removed an event of it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use hisp_store::{AuditCheck, AuditEvent, AuditFilter, DirectAddress};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{print_json, print_table, rfc3339, say};
use crate::config::Config;
use crate::store;

/// `hisp audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit chain. Exit 0 with the number of events when
    /// every event matches its hash; 1 naming the first event that does
    /// not (it, or the one before it, was changed or removed).
    Verify,
    /// Print audit events, oldest first.
    Export(AuditExportArgs),
}

/// `hisp audit export`
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Print JSON (shape in docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only events written at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Only events about this address: those naming it, and those about a
    /// message it sent, was sent or has in its mailbox.
    #[arg(long, value_name = "USER@DOMAIN", value_parser = parse_address)]
    pub address: Option<DirectAddress>,
}

fn parse_address(s: &str) -> Result<DirectAddress, String> {
    DirectAddress::parse(s).map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time like 2024-01-31T00:00:00Z: {e}"))
}

/// Runs one `hisp audit` command.
pub fn run(command: &AuditCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => verify(config),
        AuditCommand::Export(args) => export(args, config),
    }
}

fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    match store.verify_audit_chain()? {
        AuditCheck::Intact { events } => {
            say(&format!("audit chain intact: {events} events"))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCheck::Broken { id, intact, reason } => {
            tracing::warn!(event = id, "audit chain broken");
            eprintln!(
                "hisp: audit event {id} breaks the chain: {reason} \
                 ({intact} events before it are intact)"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn export(args: &AuditExportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let events = store.audit_export(&AuditFilter {
        since: args.since,
        address: args.address.clone(),
    })?;
    if args.json {
        print_json(&Value::Array(events.iter().map(event_json).collect()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                rfc3339(e.at),
                e.kind.to_string(),
                e.address
                    .as_ref()
                    .map_or_else(|| "-".to_string(), ToString::to_string),
                e.message_id
                    .as_ref()
                    .map_or_else(|| "-".to_string(), ToString::to_string),
                e.detail.clone(),
            ]
        })
        .collect();
    // A detail can quote what a remote peer said (an SMTP reply, an MDN's
    // disposition): print_table escapes its control characters, so each
    // event stays one line and cannot drive the terminal.
    print_table(
        &["ID", "AT", "KIND", "ADDRESS", "MESSAGE-ID", "DETAIL"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn event_json(e: &AuditEvent) -> Value {
    json!({
        "id": e.id,
        "at": rfc3339(e.at),
        "kind": e.kind.as_str(),
        "address": e.address.as_ref().map(ToString::to_string),
        "message_id": e.message_id.as_ref().map(ToString::to_string),
        "message": e.message.map(|m| m.0),
        "detail": e.detail,
        "hash": e.hash.map(|h| h.to_string()),
    })
}
