//! `hisp quarantine list|show`: inbound mail held back, with the reason.

use std::process::ExitCode;

use hisp_store::QuarantineRecord;
use serde_json::{json, Value};

use super::{print_json, print_table, rfc3339};
use crate::cli::{ListArgs, QuarantineShowArgs};
use crate::config::Config;
use crate::store;

/// Lists quarantined messages.
pub fn list(args: &ListArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let records = store.quarantined()?;
    if args.json {
        print_json(&Value::Array(records.iter().map(record_json).collect()))?;
    } else {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    rfc3339(r.quarantined_at),
                    r.envelope
                        .from
                        .as_ref()
                        .map_or_else(|| "<>".into(), ToString::to_string),
                    r.reason.to_string(),
                    r.detail.clone(),
                ]
            })
            .collect();
        print_table(&["ID", "QUARANTINED", "FROM", "REASON", "DETAIL"], &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one quarantined message as received, or its record as JSON.
pub fn show(args: &QuarantineShowArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config)?;
    let message = store.quarantined_message(args.id)?;
    if args.json {
        let mut value = record_json(&message.record);
        if let Value::Object(map) = &mut value {
            map.insert(
                "message_base64".into(),
                Value::String(openssl::base64::encode_block(&message.bytes)),
            );
        }
        print_json(&value)?;
    } else {
        super::print_message(&message.bytes)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn record_json(r: &QuarantineRecord) -> Value {
    json!({
        "id": r.id.0,
        "message_id": r.message_id.as_ref().map(ToString::to_string),
        "from": r.envelope.from.as_ref().map(ToString::to_string),
        "recipients": r.envelope.recipients.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "received_at": rfc3339(r.envelope.received_at),
        "reason": r.reason.as_str(),
        "detail": r.detail,
        "size": r.size,
        "quarantined_at": rfc3339(r.quarantined_at),
    })
}
