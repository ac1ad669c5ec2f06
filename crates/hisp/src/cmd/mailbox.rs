//! `hisp mailbox list|show`: what a portal shows a user.

use std::process::ExitCode;

use anyhow::bail;
use hisp_store::{Folder, MailboxEntry, StoreError};
use serde_json::{json, Value};

use super::{print_json, print_message, print_table, rfc3339, say};
use crate::cli::{MailboxListArgs, MailboxShowArgs};
use crate::config::Config;
use crate::store;

/// Lists one folder of a mailbox. An empty folder says so; an address that
/// is not local (and has no mail kept from when it was) is an error naming it.
pub fn list(args: &MailboxListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let folder = Folder::from(args.folder);
    let entries = store.mailbox(&args.address, folder)?;
    if entries.is_empty() {
        if let Err(StoreError::NotFound { .. }) = store.address(&args.address) {
            bail!(
                "{} is not a local address: no mailbox (`hisp address list` shows the local ones)",
                args.address
            );
        }
    }
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
        if rows.is_empty() {
            say(&format!(
                "{} of {} is empty",
                folder_name(folder),
                args.address
            ))?;
        }
        print_table(&["ID", "NEW", "DATE", "FROM", "SIZE", "SUBJECT"], &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The folder as the portal names it.
fn folder_name(folder: Folder) -> &'static str {
    match folder {
        Folder::Inbox => "Inbox",
        Folder::Sent => "Sent",
        Folder::Disregarded => "Disregarded",
    }
}

/// Prints one message exactly as stored (escaped on a terminal), or its
/// entry and the message (base64) as JSON.
pub fn show(args: &MailboxShowArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let message = store.read_message(args.id)?;
    if args.json {
        let mut value = entry_json(&message.entry);
        if let Value::Object(map) = &mut value {
            map.insert(
                "message_base64".into(),
                Value::String(openssl::base64::encode_block(&message.bytes)),
            );
        }
        print_json(&value)?;
    } else {
        print_message(&message.bytes)?;
    }
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
