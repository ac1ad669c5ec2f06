//! `hisp queue list`: messages in transit and where each recipient is;
//! `hisp queue retry`: pending messages due now.

use std::process::ExitCode;

use hisp_store::{QueueEntry, QueueItemId, RecipientRecord, RetrySelection, TrackingState};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::{print_json, print_table, rfc3339, say};
use crate::cli::{QueueListArgs, QueueRetryArgs};
use crate::config::Config;
use crate::store;

/// Lists the queue, one row per recipient in text.
pub fn list(args: &QueueListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let entries = store.queue(args.state.map(Into::into))?;
    if args.json {
        print_json(&Value::Array(entries.iter().map(entry_json).collect()))?;
    } else {
        let mut rows = Vec::new();
        for e in &entries {
            for r in &e.recipients {
                rows.push(vec![
                    e.id.to_string(),
                    e.direction.to_string(),
                    e.state.to_string(),
                    e.attempts.to_string(),
                    e.message_id
                        .as_ref()
                        .map_or_else(|| "-".into(), ToString::to_string),
                    e.envelope_from
                        .as_ref()
                        .map_or_else(|| "<>".into(), ToString::to_string),
                    r.address.to_string(),
                    r.state.to_string(),
                    r.reason
                        .clone()
                        .or_else(|| e.last_error.clone())
                        .unwrap_or_default(),
                ]);
            }
        }
        print_table(
            &[
                "ID",
                "DIRECTION",
                "STATE",
                "ATTEMPTS",
                "MESSAGE-ID",
                "FROM",
                "RECIPIENT",
                "TRACKING",
                "REASON",
            ],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes one pending entry, or all of them, due now. A running `hisp serve`
/// sees the change within a fraction of a second and takes them.
pub fn retry(args: &QueueRetryArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let selection = match args.id {
        Some(id) => RetrySelection::One(QueueItemId(id)),
        None => RetrySelection::All,
    };
    let due = store.retry_now(selection, OffsetDateTime::now_utc())?;
    if args.json {
        print_json(&json!({ "due_now": due.iter().map(|id| id.0).collect::<Vec<_>>() }))?;
    } else if due.is_empty() {
        say("no pending queue entry was waiting for a retry")?;
    } else {
        let ids: Vec<String> = due.iter().map(ToString::to_string).collect();
        say(&format!(
            "due now: {} queue entr{} ({})",
            due.len(),
            if due.len() == 1 { "y" } else { "ies" },
            ids.join(", ")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn entry_json(e: &QueueEntry) -> Value {
    json!({
        "id": e.id.0,
        "direction": e.direction.as_str(),
        "message_id": e.message_id.as_ref().map(ToString::to_string),
        "from": e.envelope_from.as_ref().map(ToString::to_string),
        "size": e.size,
        "received_at": rfc3339(e.received_at),
        "state": e.state.as_str(),
        "attempts": e.attempts,
        "next_attempt_at": rfc3339(e.next_attempt_at),
        "leased_until": e.leased_until.map(rfc3339),
        "last_error": e.last_error,
        "queued_at": e.queued_at.map(rfc3339),
        "first_attempt_at": e.first_attempt_at.map(rfc3339),
        "last_attempt_at": e.last_attempt_at.map(rfc3339),
        "recipients": e.recipients.iter().map(recipient_json).collect::<Vec<_>>(),
    })
}

fn recipient_json(r: &RecipientRecord) -> Value {
    let mut reached = Map::new();
    for s in TrackingState::ALL {
        if let Some(at) = r.at(s) {
            reached.insert(s.as_str().to_string(), Value::String(rfc3339(at)));
        }
    }
    json!({
        "address": r.address.to_string(),
        "state": r.state.as_str(),
        "reached_at": reached,
        "reason": r.reason,
    })
}
