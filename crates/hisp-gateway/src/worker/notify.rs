//! The sender's side of delivery notification, run by the worker after each
//! look at the queue:
//!
//! 1. Timeout: a recipient relayed longer ago than the MDN timeout (default
//!    1 hour) without completing — a processed MDN, and a dispatched one
//!    when final delivery was asked for — fails (Implementation Guide for
//!    Delivery Notification in Direct 1.0 §3.2).
//! 2. Notice: every failed recipient of a local sender's message whose
//!    sender has not been told yet (a timeout, a failure MDN or DSN, a
//!    permanent SMTP refusal, the end of the message's lifetime) is named in
//!    one DSN per message in the sender's Inbox. The store files the DSN and
//!    marks the recipients told in one transaction, so each recipient gets
//!    exactly one final notice, even across a crash.

use std::collections::BTreeMap;

use hisp_store::{AuditKind, MessageRecordId, RecipientRecord, TrackingState};
use time::OffsetDateTime;
use tracing::{info, info_span, warn, Instrument};

use super::Worker;
use crate::error::GatewayError;
use crate::notice::{dsn, DsnNotice, Failure, Original};

/// Fails the overdue recipients, then tells senders about failures.
pub(super) async fn sweep(worker: &Worker, now: OffsetDateTime) -> Result<(), GatewayError> {
    time_out(worker, now).await?;
    tell_senders(worker, now).await
}

async fn time_out(worker: &Worker, now: OffsetDateTime) -> Result<(), GatewayError> {
    let timeout = worker.settings.mdn_timeout;
    let cut = now - timeout;
    let overdue = worker
        .ctx
        .store
        .call_retrying("reading overdue recipients", move |s| s.overdue(cut))
        .await?;
    for r in overdue {
        let waited = match r.state {
            TrackingState::Relayed => "no processed MDN",
            _ => "no dispatched MDN",
        };
        let why = format!(
            "{waited} from the destination within {} of relaying",
            human(timeout)
        );
        let span = info_span!("timeout", msg_id = %msg_id(&r), rcpt = %r.address);
        span.in_scope(|| info!(%why, "recipient timed out"));
        let (id, record) = (r.id, r.message);
        let done = worker
            .ctx
            .store
            .call(move |s| {
                s.track(id, TrackingState::Failed, now, Some(&why))?;
                s.audit(AuditKind::TimedOut, None, Some(record), &why)
            })
            .await;
        // One recipient that cannot be moved must not hold up the others
        // or the notices: it is tried again at the next look.
        if let Err(e) = done {
            span.in_scope(|| warn!(error = %e, "cannot time the recipient out; tried again later"));
        }
    }
    Ok(())
}

async fn tell_senders(worker: &Worker, now: OffsetDateTime) -> Result<(), GatewayError> {
    let failures = worker
        .ctx
        .store
        .call_retrying("reading unnotified failures", |s| s.unnotified_failures())
        .await?;
    let mut by_message: BTreeMap<MessageRecordId, Vec<RecipientRecord>> = BTreeMap::new();
    for r in failures {
        by_message.entry(r.message).or_default().push(r);
    }
    for (record, recipients) in by_message {
        let span = info_span!("notice", msg_id = %msg_id(&recipients[0]));
        if let Err(e) = tell_sender(worker, record, &recipients, now)
            .instrument(span.clone())
            .await
        {
            span.in_scope(
                || warn!(error = %e, "cannot file the failure notice; tried again later"),
            );
        }
    }
    Ok(())
}

/// One DSN to the sender of `record` naming `recipients`.
async fn tell_sender(
    worker: &Worker,
    record: MessageRecordId,
    recipients: &[RecipientRecord],
    now: OffsetDateTime,
) -> Result<(), GatewayError> {
    let Some(sender) = recipients[0].envelope_from.clone() else {
        return Ok(());
    };
    let original = match recipients[0].message_id.clone() {
        Some(id) => {
            let tracked = worker
                .ctx
                .store
                .call(move |s| s.tracked_message(&id))
                .await?;
            let message = tracked.into_iter().find(|m| m.message == record);
            Original {
                message_id: recipients[0].message_id.as_ref().map(|m| m.to_string()),
                subject: message.as_ref().and_then(|m| m.subject.clone()),
            }
        }
        None => Original::default(),
    };
    let failures: Vec<Failure> = recipients
        .iter()
        .map(|r| Failure {
            address: r.address.clone(),
            reason: r
                .reason
                .clone()
                .unwrap_or_else(|| "not delivered".to_string()),
            status: r.status,
            at: r.at(TrackingState::Failed),
        })
        .collect();
    let bytes = dsn(&DsnNotice {
        original: &original,
        original_headers: None,
        sender: &sender,
        arrival: recipients[0].at(TrackingState::Queued),
        failures: &failures,
        reporting_host: &worker.settings.reporting_host,
        now,
    });
    let ids: Vec<_> = recipients.iter().map(|r| r.id).collect();
    let to = sender.clone();
    let filed = worker
        .ctx
        .store
        .call_retrying("filing a failure notice", move |s| {
            s.notify_sender(&to, &bytes, &ids, now)
        })
        .await?;
    match filed {
        Some(entry) => {
            info!(sender = %sender, %entry, failed = failures.len(), "failure notice filed in the sender's Inbox")
        }
        None => {
            info!(sender = %sender, "no notice filed: the sender was already told, or has no local mailbox")
        }
    }
    Ok(())
}

fn msg_id(r: &RecipientRecord) -> String {
    r.message_id
        .as_ref()
        .map_or_else(|| format!("message-{}", r.message.0), |m| m.to_string())
}

/// `1h`, `90m`, `45s`: a duration as an administrator wrote it.
fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(5400)), "90m");
        assert_eq!(human(Duration::from_secs(45)), "45s");
    }
}
