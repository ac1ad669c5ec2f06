//! `hisp message status|list`: where each recipient of an outbound message
//! is, following the Implementation Guide for Delivery Notification in
//! Direct 1.0 (queued, relayed, processed, dispatched, delivered or failed).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use hisp_store::{Expectation, RecipientRecord, TrackFilter, TrackedMessage, TrackingState};
use serde_json::{json, Map, Value};

use super::{print_json, print_table, rfc3339};
use crate::cli::{MessageListArgs, MessageStatusArgs};
use crate::config::Config;
use crate::store;

/// Shows every outbound message with the Message-ID: each recipient's
/// state, when it reached each step, and why it failed.
pub fn status(args: &MessageStatusArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let messages = store.tracked_message(&args.message_id)?;
    if messages.is_empty() {
        bail!("no outbound message with Message-ID {}", args.message_id);
    }
    if args.json {
        print_json(&Value::Array(messages.iter().map(message_json).collect()))?;
    } else {
        let text: Vec<String> = messages.iter().map(status_text).collect();
        super::print_lines(&text.join("\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists outbound messages, newest first, one line each in text.
pub fn list(args: &MessageListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let filter = args.state.map_or(TrackFilter::All, Into::into);
    let messages: Vec<TrackedMessage> = store
        .tracked_messages(filter)?
        .into_iter()
        .filter(|m| args.notifications || m.expect.expects_mdn())
        .collect();
    if args.json {
        print_json(&Value::Array(messages.iter().map(message_json).collect()))?;
    } else {
        let rows: Vec<Vec<String>> = messages
            .iter()
            .map(|m| {
                let recipients: Vec<String> = m
                    .recipients
                    .iter()
                    .map(|r| format!("{}={}", r.address, r.state))
                    .collect();
                vec![
                    rfc3339(m.received_at),
                    message_id_text(m),
                    from_text(m),
                    kind(m.expect).to_string(),
                    m.subject.clone().unwrap_or_else(|| "-".into()),
                    recipients.join(","),
                ]
            })
            .collect();
        print_table(
            &[
                "RECEIVED",
                "MESSAGE-ID",
                "FROM",
                "KIND",
                "SUBJECT",
                "RECIPIENTS",
            ],
            &rows,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `mail`, `notification` (an MDN or DSN hisp sent itself) or
/// `portal-notice` (the e-mail telling a portal user of new secure mail).
fn kind(expect: Expectation) -> &'static str {
    match expect {
        Expectation::Mail { .. } => "mail",
        Expectation::Notification => "notification",
        Expectation::PortalNotice => "portal-notice",
    }
}

/// Whether the sender asked for final delivery (dispatched) notification.
fn final_delivery(expect: Expectation) -> bool {
    matches!(
        expect,
        Expectation::Mail {
            final_delivery: true
        }
    )
}

fn message_id_text(m: &TrackedMessage) -> String {
    m.message_id
        .as_ref()
        .map_or_else(|| "-".into(), ToString::to_string)
}

fn from_text(m: &TrackedMessage) -> String {
    m.envelope_from
        .as_ref()
        .map_or_else(|| "<>".into(), ToString::to_string)
}

/// The text of `status` for one message: a header, then a block per
/// recipient.
fn status_text(m: &TrackedMessage) -> String {
    let header = [
        ("Message-ID", message_id_text(m)),
        ("From", from_text(m)),
        ("Subject", m.subject.clone().unwrap_or_else(|| "-".into())),
        ("Queued at", rfc3339(m.received_at)),
        (
            "Final delivery",
            if final_delivery(m.expect) {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
        ("Kind", kind(m.expect).into()),
    ];
    let width = header.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (label, value) in header {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{:width$}  {value}", format!("{label}:"));
    }
    let step_width = TrackingState::ALL
        .iter()
        .map(|s| s.as_str().len())
        .max()
        .unwrap_or(0);
    for r in &m.recipients {
        let _ = writeln!(out, "\n  {}: {}", r.address, r.state);
        for s in TrackingState::ALL {
            if let Some(at) = r.at(s) {
                let _ = writeln!(out, "    {:step_width$}  {}", s.as_str(), rfc3339(at));
            }
        }
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "    reason: {reason}");
        }
        if let Some(at) = r.notified_at {
            let _ = writeln!(out, "    sender notified at {}", rfc3339(at));
        }
    }
    out
}

fn message_json(m: &TrackedMessage) -> Value {
    json!({
        "message_id": m.message_id.as_ref().map(ToString::to_string),
        "from": m.envelope_from.as_ref().map(ToString::to_string),
        "subject": m.subject,
        "received_at": rfc3339(m.received_at),
        "final_delivery": final_delivery(m.expect),
        "kind": kind(m.expect),
        "recipients": m.recipients.iter().map(recipient_json).collect::<Vec<_>>(),
    })
}

fn recipient_json(r: &RecipientRecord) -> Value {
    let mut steps = Map::new();
    for s in TrackingState::ALL {
        if let Some(at) = r.at(s) {
            steps.insert(s.as_str().to_string(), Value::String(rfc3339(at)));
        }
    }
    json!({
        "address": r.address.to_string(),
        "state": r.state.as_str(),
        "reason": r.reason,
        "notified_at": r.notified_at.map(rfc3339),
        "steps": steps,
    })
}
