//! One attempt at a portal notice (issue 11 item 9): plain SMTP to the
//! `[notify]` smart host with the delivering client, never sealed (it holds
//! no health information and goes to an ordinary mailbox). Retried with
//! backoff like other outbound items and given up after the lifetime.

use hisp_smtp::{deliver, ClientConfig, OutboundEnvelope, RecipientOutcome};
use hisp_store::{
    Answer, DirectAddress, EmailAddress, Filing, NewMailNotice, QueueItem, RecipientId,
    RecipientRecord, Store, StoreError, TrackingState,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::{Attempt, Worker};
use crate::error::GatewayError;
use crate::portal_notice::{compose, NoticeSettings};

/// Sends the notice to every recipient still queued.
pub(super) async fn attempt(
    worker: &Worker,
    item: &QueueItem,
    now: OffsetDateTime,
) -> Result<Attempt, GatewayError> {
    let pending: Vec<&RecipientRecord> = item
        .recipients
        .iter()
        .filter(|r| r.state == TrackingState::Queued)
        .collect();
    if pending.is_empty() {
        return Ok(Attempt::Finished);
    }
    let Some(notify) = &worker.settings.notify else {
        // `[notify] smtp` was removed after the notice was queued: it waits
        // for one until its lifetime ends.
        return Ok(Attempt::Again(
            "no smart host for notices: [notify] smtp is not set".into(),
        ));
    };
    let envelope = OutboundEnvelope {
        id: item
            .message_id
            .as_ref()
            .map_or_else(|| item.id.to_string(), |m| m.as_str().to_string()),
        mail_from: item
            .envelope_from
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        rcpt_to: pending.iter().map(|r| r.address.to_string()).collect(),
    };
    // Plain SMTP: the smart host is the site's own relay, and the notice
    // says nothing worth protecting.
    let client = ClientConfig {
        tls: None,
        require_tls: false,
        ..worker.settings.client.clone()
    };
    let smart_host = format!("{}:{}", notify.smart_host, notify.port);
    let report = deliver(
        &client,
        &notify.smart_host,
        notify.port,
        &envelope,
        &item.bytes,
    )
    .await;
    let mut again = Vec::new();
    match report {
        Ok(report) => {
            for (rcpt, outcome) in report.recipients {
                let Some(r) = pending.iter().find(|r| r.address.to_string() == rcpt) else {
                    continue;
                };
                match outcome {
                    RecipientOutcome::Delivered(reply) => {
                        info!(rcpt = %rcpt, %reply, smart_host, "portal notice sent");
                        let (id, reply) = (r.id, format!("{smart_host}: {reply}"));
                        worker
                            .ctx
                            .store
                            .call_retrying("tracking a portal notice", move |s| {
                                s.portal_notice_sent(id, now, &reply).map(|_| ())
                            })
                            .await?;
                    }
                    RecipientOutcome::Temporary(reply) => again.push(format!("{rcpt}: {reply}")),
                    RecipientOutcome::Permanent(reply) => {
                        warn!(rcpt = %rcpt, %reply, smart_host, "portal notice refused");
                        let why = format!("notice refused by {smart_host}: {reply}");
                        worker
                            .track(item, r.id, TrackingState::Failed, now, Some(why))
                            .await?;
                    }
                }
            }
        }
        Err(e) if e.is_temporary() => {
            info!(smart_host, error = %e, "smart host not reached; portal notice deferred");
            again.push(format!("{smart_host}: {e}"));
        }
        Err(e) => {
            warn!(smart_host, error = %e, "portal notice failed");
            for r in &pending {
                let why = format!("notice not taken by {smart_host}: {e}");
                worker
                    .track(item, r.id, TrackingState::Failed, now, Some(why))
                    .await?;
            }
        }
    }
    Ok(if again.is_empty() {
        Attempt::Finished
    } else {
        Attempt::Again(again.join("; "))
    })
}

/// Files `bytes` for one recipient as [`Store::file_inbound`] does and,
/// when `notify` is given (a smart host is configured and the message is
/// mail, not a report), with the portal notice for the recipient's portal
/// user in the same transaction ([`Store::file_inbound_notifying`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn file_noting(
    s: &dyn Store,
    notify: Option<&NoticeSettings>,
    recipient: RecipientId,
    address: &DirectAddress,
    bytes: &[u8],
    now: OffsetDateTime,
    if_filed: &[Answer],
    if_missing: &[Answer],
) -> Result<Filing, StoreError> {
    let Some(notify) = notify else {
        return s.file_inbound(recipient, address, bytes, now, if_filed, if_missing);
    };
    let from = notify.sender_for(address);
    let compose = |to: &EmailAddress| compose(&from, to, &notify.public_url, now);
    let notice = NewMailNotice {
        from: from.clone(),
        compose: &compose,
    };
    s.file_inbound_notifying(
        recipient,
        address,
        bytes,
        now,
        if_filed,
        if_missing,
        Some(&notice),
    )
}
