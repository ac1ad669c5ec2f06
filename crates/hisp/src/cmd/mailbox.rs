//! `hisp mailbox list|show`: what a portal shows a user.

use std::process::ExitCode;

use hisp_store::{Folder, MailboxEntry, Store};
use serde_json::{json, Value};

use super::{print_json, print_table, rfc3339};
use crate::cli::{MailboxListArgs, MailboxShowArgs};
use crate::config::Config;
use crate::input::write_stdout;
use crate::store;

/// Lists one folder of a mailbox.
pub fn list(args: &MailboxListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let folder = Folder::from(args.folder);
    let entries = store.mailbox(&args.address, folder)?;
    if args.json {
        print_json(&Value::Array(entries.iter().map(entry_json).collect()))?;
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    if e.unread { "*" } else { "" }.to_string(),
                    e.date.map_or_else(|| "-".into(), rfc3339),
                    e.from.clone().unwrap_or_else(|| "-".into()),
                    e.size.to_string(),
                    e.subject.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["ID", "NEW", "DATE", "FROM", "SIZE", "SUBJECT"], &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one message exactly as stored.
pub fn show(args: &MailboxShowArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let message = store.read_message(args.id)?;
    write_stdout(&message.bytes)?;
    Ok(ExitCode::SUCCESS)
}

fn entry_json(e: &MailboxEntry) -> Value {
    json!({
        "id": e.id.0,
        "address": e.address.to_string(),
        "folder": e.folder.as_str(),
        "message_id": e.message_id.as_ref().map(ToString::to_string),
        "from": e.from,
        "subject": e.subject,
        "date": e.date.map(rfc3339),
        "size": e.size,
        "unread": e.unread,
        "received_at": rfc3339(e.received_at),
    })
}
