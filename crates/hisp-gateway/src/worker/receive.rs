//! One attempt at an inbound message: for each recipient domain, judge the
//! message with the recipients' keys and the domain's incoming anchors
//! (Applicability Statement 1.3 §4.1) and deliver the inner message to the
//! Inbox, or quarantine it with the reason (no MDN, no DSN).

use hisp_store::{
    AuditKind, Domain, Envelope, Flow, Folder, Owner, QuarantineReason, QueueItem, RecipientRecord,
    TrackingState,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::{Attempt, Worker};
use crate::context::{anchors, can_decrypt, key_pairs};
use crate::error::GatewayError;
use crate::inbound::{judge_inbound, InboundContext, InboundVerdict};

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
    let d = domain.clone();
    let (keys, trusted) = worker
        .ctx
        .store
        .call(move |s| {
            Ok((
                key_pairs(s, &owners, can_decrypt)?,
                anchors(s, &d, Flow::Incoming)?,
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
            message, signer, ..
        } => {
            info!(%domain, %signer, "opened and trusted");
            let (record, list) = (item.message, recipients.to_vec());
            worker
                .ctx
                .store
                .call(move |s| {
                    s.audit(AuditKind::Opened, None, Some(record), &signer)?;
                    for r in &list {
                        s.deliver_to_mailbox(&r.address, &message, Folder::Inbox, now)?;
                        s.track(r.id, TrackingState::Delivered, now, None)?;
                    }
                    Ok(())
                })
                .await?;
            Ok(None)
        }
        InboundVerdict::Quarantine { code, reason } => {
            let kind = quarantine_reason(&code, &reason);
            warn!(%domain, %code, %reason, "quarantined");
            let envelope = Envelope {
                from: item.envelope_from.clone(),
                recipients: recipients.iter().map(|r| r.address.clone()).collect(),
                received_at: item.received_at,
            };
            let (bytes, list) = (item.bytes.clone(), recipients.to_vec());
            let detail = format!("{code}: {reason}");
            worker
                .ctx
                .store
                .call(move |s| {
                    s.quarantine(&bytes, kind, &detail, &envelope)?;
                    let why = format!("quarantined ({kind}): {detail}");
                    for r in &list {
                        s.track(r.id, TrackingState::Failed, now, Some(&why))?;
                    }
                    Ok(())
                })
                .await?;
            Ok(None)
        }
        InboundVerdict::Temporary { reason } => Ok(Some(format!("{domain}: {reason}"))),
    }
}

/// The store's reason for a judgement's code (the S/MIME error codes of
/// `hisp_smime` and the codes of [`judge_inbound`]).
fn quarantine_reason(code: &str, reason: &str) -> QuarantineReason {
    match code {
        "not-a-recipient" | "bad-ciphertext" | "bad-key-material" | "crypto" => {
            QuarantineReason::Undecryptable
        }
        "digest-mismatch" | "bad-signature" => QuarantineReason::Tampered,
        "unbound-signer" => QuarantineReason::Unbound,
        "unsupported-algorithm" if reason.contains("digest") => QuarantineReason::DisallowedDigest,
        "untrusted-signer" | "expired-signer" | "signer-certificate-missing" | "weak-key"
            if reason.contains("revoked") =>
        {
            QuarantineReason::Revoked
        }
        "untrusted-signer" | "expired-signer" | "signer-certificate-missing" | "weak-key" => {
            QuarantineReason::Untrusted
        }
        _ => QuarantineReason::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgement_codes_map_to_quarantine_reasons() {
        let cases = [
            ("not-a-recipient", "", QuarantineReason::Undecryptable),
            ("digest-mismatch", "", QuarantineReason::Tampered),
            ("unbound-signer", "", QuarantineReason::Unbound),
            ("untrusted-signer", "chain", QuarantineReason::Untrusted),
            (
                "untrusted-signer",
                "certificate revoked",
                QuarantineReason::Revoked,
            ),
            (
                "unsupported-algorithm",
                "digest sha1 is not allowed",
                QuarantineReason::DisallowedDigest,
            ),
            ("not-encrypted", "", QuarantineReason::Malformed),
            ("not-smime", "", QuarantineReason::Malformed),
        ];
        for (code, reason, want) in cases {
            assert_eq!(quarantine_reason(code, reason), want, "{code}");
        }
    }
}
