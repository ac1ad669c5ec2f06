//! One attempt at an inbound message: for each recipient domain, judge the
//! message with the recipients' keys and the domain's incoming anchors
//! (Applicability Statement 1.3 §4.1) and deliver the inner message to the
//! Inbox with its MDNs, hand a delivery report to tracking, or quarantine
//! the message with the reason (no MDN, no DSN).

use hisp_mdn::{report_kind, requested, DispositionType, FinalDelivery, ReportKind};
use hisp_store::{
    Answer, AuditKind, DirectAddress, Domain, Envelope, Filing, Flow, Held, Owner, QueueItem,
    RecipientRecord, TrackingState,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::notify_mail::file_noting;
use super::{report, Attempt, Worker};
use crate::error::GatewayError;
use crate::inbound::{judge_inbound, InboundContext, InboundVerdict};
use crate::material::KeyUse;
use crate::notice::{mdn, MdnNotice, Original};

/// Judges and delivers for every recipient still queued.
pub(super) async fn attempt(
    worker: &Worker,
    item: &QueueItem,
    now: OffsetDateTime,
) -> Result<Attempt, GatewayError> {
    let mut groups: Vec<(Domain, Vec<RecipientRecord>)> = Vec::new();
    for r in item
        .recipients
        .iter()
        .filter(|r| r.state == TrackingState::Queued)
    {
        match groups.iter_mut().find(|(d, _)| d == r.address.domain()) {
            Some((_, list)) => list.push(r.clone()),
            None => groups.push((r.address.domain().clone(), vec![r.clone()])),
        }
    }
    let mut again = Vec::new();
    for (domain, recipients) in groups {
        if let Some(why) = receive_for(worker, item, &domain, &recipients, now).await? {
            again.push(why);
        }
    }
    Ok(if again.is_empty() {
        Attempt::Finished
    } else {
        Attempt::Again(again.join("; "))
    })
}

/// Handles the recipients of one domain; returns why to try again, if so.
async fn receive_for(
    worker: &Worker,
    item: &QueueItem,
    domain: &Domain,
    recipients: &[RecipientRecord],
    now: OffsetDateTime,
) -> Result<Option<String>, GatewayError> {
    let mut owners: Vec<Owner> = recipients
        .iter()
        .map(|r| Owner::Address(r.address.clone()))
        .collect();
    owners.push(Owner::Domain(domain.clone()));
    let (d, material) = (domain.clone(), worker.ctx.material.clone());
    let (keys, trusted) = worker
        .ctx
        .store
        .run(move |s| {
            Ok((
                material.key_pairs(s, &owners, KeyUse::Decrypt)?,
                material.anchors(s, &d, Flow::Incoming)?,
            ))
        })
        .await?;
    let (bytes, trust, at) = (
        item.bytes.clone(),
        worker.ctx.trust.clone(),
        now.unix_timestamp(),
    );
    // Judging may fetch CRLs and issuers over the network: off the async threads.
    let verdict = tokio::task::spawn_blocking(move || {
        judge_inbound(
            &bytes,
            &InboundContext {
                keys: &keys,
                anchors: &trusted,
                intermediates: &trust.intermediates,
                at,
                revocation: trust.revocation,
                remote: &trust.remote,
            },
        )
    })
    .await?;
    match verdict {
        InboundVerdict::Accept {
            message,
            signer,
            from,
        } => {
            info!(%domain, %signer, "opened and trusted");
            let record = item.message;
            worker
                .ctx
                .store
                .call(move |s| s.audit(AuditKind::Opened, None, Some(record), &signer))
                .await?;
            let from = DirectAddress::parse(&from).ok();
            match report_kind(&message) {
                Some(ReportKind::Mdn | ReportKind::Dsn) => {
                    report::track(worker, &item.held(), record, &message, from.as_ref(), now)
                        .await?;
                    consumed(worker, item.held(), recipients, now).await?;
                }
                // Never answer a report with an MDN (RFC 8098 §2.1; RFC 3464 §2),
                // and tell no portal user of one: it is not a secure message
                // someone wrote.
                Some(ReportKind::Other(_)) => {
                    file(worker, recipients, &message, None, false, now).await?
                }
                None => file(worker, recipients, &message, from.as_ref(), true, now).await?,
            }
            Ok(None)
        }
        InboundVerdict::Quarantine { refusal, reason } => {
            let (kind, code) = (refusal.quarantine_reason(), refusal.code());
            warn!(%domain, %code, %reason, "quarantined");
            let envelope = Envelope {
                from: item.envelope_from.clone(),
                recipients: recipients.iter().map(|r| r.address.clone()).collect(),
                received_at: item.received_at,
            };
            let record = item.message;
            let ids: Vec<_> = recipients.iter().map(|r| r.id).collect();
            let detail = format!("{code}: {reason}");
            // The entry and the recipients' move to failed are one
            // transaction: a crash between them cannot leave either alone.
            worker
                .ctx
                .store
                .call_retrying("quarantining an inbound message", move |s| {
                    s.quarantine_inbound(record, kind, &detail, &envelope, &ids, now)
                        .map(|_| ())
                })
                .await?;
            Ok(None)
        }
        InboundVerdict::Temporary { reason } => Ok(Some(format!("{domain}: {reason}"))),
    }
}

/// A report for our own outbound mail went to tracking: the inbound copy is
/// done, and no mailbox holds it.
/// Only while the report's entry is in hand (see `Worker::track`).
async fn consumed(
    worker: &Worker,
    held: Held,
    recipients: &[RecipientRecord],
    now: OffsetDateTime,
) -> Result<(), GatewayError> {
    let list = recipients.to_vec();
    worker
        .ctx
        .store
        .call(move |s| {
            for r in &list {
                s.track_steps_held(
                    &held,
                    r.id,
                    &[TrackingState::Delivered],
                    now,
                    Some("a delivery report, consumed by tracking"),
                )?;
            }
            Ok(())
        })
        .await
}

/// Files `message` in each recipient's Inbox and, when `answer_to` is the
/// sender to answer, queues the MDNs (Implementation Guide for Delivery
/// Notification in Direct 1.0 §3.3): `processed` for each recipient once
/// the message passed every check and is stored; `dispatched` too, with the
/// final-delivery extension, when the sender asked for final delivery
/// (filing in the mailbox store is the point at which the recipient's portal
/// shows it); `processed` then `failed` for a recipient whose mailbox cannot
/// take it. A malformed request gets `processed` only.
///
/// Each recipient's filing, tracking move and MDNs are one transaction
/// (`Store::file_inbound`), and a recipient already done is left alone: a
/// retry after a crash or a lapsed lease files nothing twice and sends no
/// MDN twice. With `notice` and a `[notify]` smart host, the e-mail notice
/// for the recipient's portal user is queued in that transaction too
/// (`Store::file_inbound_notifying`, issue 11 item 9).
async fn file(
    worker: &Worker,
    recipients: &[RecipientRecord],
    message: &[u8],
    answer_to: Option<&DirectAddress>,
    notice: bool,
    now: OffsetDateTime,
) -> Result<(), GatewayError> {
    let original = Original::of(message);
    let final_delivery = match requested(message).final_delivery {
        FinalDelivery::Requested { .. } => true,
        FinalDelivery::NotRequested => false,
        FinalDelivery::Malformed(why) => {
            info!(%why, "malformed final-delivery request: processed MDN only");
            false
        }
    };
    let mut plans = Vec::new();
    for r in recipients {
        let (mut if_filed, mut if_missing) = (Vec::new(), Vec::new());
        if let Some(sender) = answer_to {
            let answer = |kind: DispositionType, failure: Option<&str>, extension: bool| {
                let name = kind.as_str().to_string();
                let (bytes, _) = mdn(&MdnNotice {
                    original: &original,
                    recipient: &r.address,
                    sender,
                    kind,
                    failure,
                    final_delivery: extension,
                    reporting_host: &worker.settings.reporting_host,
                    now,
                });
                Answer {
                    from: r.address.clone(),
                    to: sender.clone(),
                    bytes,
                    kind: name,
                }
            };
            let processed = answer(DispositionType::Processed, None, final_delivery);
            if_filed.push(processed.clone());
            if final_delivery {
                if_filed.push(answer(DispositionType::Dispatched, None, true));
            }
            if_missing.push(processed);
            if_missing.push(answer(
                DispositionType::Failed,
                Some("the recipient's mailbox is not available"),
                final_delivery,
            ));
        }
        plans.push((r.clone(), if_filed, if_missing));
    }
    let message = message.to_vec();
    let notify = worker.settings.notify.clone().filter(|_| notice);
    let outcomes = worker
        .ctx
        .store
        .call(move |s| {
            let mut out = Vec::new();
            for (r, if_filed, if_missing) in &plans {
                let filing = file_noting(
                    s,
                    notify.as_ref(),
                    r.id,
                    &r.address,
                    &message,
                    now,
                    if_filed,
                    if_missing,
                )?;
                out.push((r.address.clone(), filing));
            }
            Ok(out)
        })
        .await?;
    for (address, filing) in outcomes {
        match filing {
            Filing::Filed(entry) => info!(rcpt = %address, %entry, "filed in the Inbox"),
            Filing::NoSuchAddress => {
                warn!(rcpt = %address, "no such local address any more; failed")
            }
            Filing::AlreadyDone(state) => {
                info!(rcpt = %address, %state, "already done; left alone")
            }
            Filing::Duplicate(entry) => {
                info!(rcpt = %address, %entry, "sent again: the Inbox holds it already; answered, not filed twice")
            }
        }
    }
    Ok(())
}
