//! One attempt at an outbound message: local recipients go to their
//! mailboxes; remote ones are discovered again (certificates may have
//! changed since RCPT), grouped per destination domain, sealed with the
//! sender's key and delivered over SMTP to the domain's route. With
//! [`WorkerSettings::seal_local`](super::WorkerSettings::seal_local) local
//! recipients are handled like remote ones.

use std::collections::HashMap;

use hisp_smime::Signer;
use hisp_smtp::{ClientError, DeliveryReport, OutboundEnvelope, Peer, RecipientOutcome};
use hisp_store::{
    AuditKind, DeliveryStatus, DirectAddress, Expectation, Filing, Folder, Owner, QueueItem,
    RecipientId, RecipientRecord, TrackingState,
};
use openssl::x509::X509;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::notify_mail::file_noting;
use super::{Attempt, Worker};
use crate::error::GatewayError;
use crate::material::KeyUse;
use crate::notice::reply_status;
use crate::outbound::{destinations, seal_for, Destination};
use crate::routes::RouteError;

/// Tries every recipient still queued.
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
    let Some(sender) = item.envelope_from.clone() else {
        for r in pending {
            let why = "an outbound message needs a sender".to_string();
            worker
                .track(item, r.id, TrackingState::Failed, now, Some(why))
                .await?;
        }
        return Ok(Attempt::Finished);
    };
    // The MDNs and DSNs hisp writes are not the user's mail: no Sent copy.
    if item.attempts == 1 && item.expect != Expectation::Notification {
        sent_copy(worker, &sender, item, now).await;
    }

    let mut again = Vec::new();
    let mut remote: Vec<(String, Vec<X509>)> = Vec::new();
    let mut ids: HashMap<String, RecipientId> = HashMap::new();
    for r in pending {
        if !worker.settings.seal_local && worker.ctx.is_local(r.address.domain()).await? {
            deliver_locally(worker, item, r, now).await?;
            continue;
        }
        let found = worker
            .ctx
            .discover(sender.domain(), &r.address, now.unix_timestamp())
            .await?;
        if found.usable {
            let key = r.address.to_string();
            ids.insert(key.clone(), r.id);
            remote.push((key, found.usable_certs()));
        } else if found.temporary {
            again.push(format!("{}: {}", r.address, found.reason));
        } else {
            info!(rcpt = %r.address, reason = %found.reason, "no longer a Direct address");
            let why = format!("not a Direct address: {}", found.reason);
            worker
                .track(item, r.id, TrackingState::Failed, now, Some(why))
                .await?;
        }
    }

    if !remote.is_empty() {
        let owners = [
            Owner::Address(sender.clone()),
            Owner::Domain(sender.domain().clone()),
        ];
        let mut signers = worker.ctx.key_pairs(owners.to_vec(), KeyUse::Sign).await?;
        if signers.is_empty() {
            // The administrator can add the key; until the lifetime ends the
            // message waits for it.
            again.push(GatewayError::NoSigningKey(sender.to_string()).to_string());
        } else {
            let signer = Signer::new(signers.swap_remove(0));
            for dest in destinations(&remote) {
                let outcome = relay_to(worker, item, &sender, &signer, &dest, &ids, now).await?;
                again.extend(outcome);
            }
        }
    }
    Ok(if again.is_empty() {
        Attempt::Finished
    } else {
        Attempt::Again(again.join("; "))
    })
}

/// Seals for one destination domain and delivers; returns what is left to
/// try again.
async fn relay_to(
    worker: &Worker,
    item: &QueueItem,
    sender: &DirectAddress,
    signer: &Signer,
    dest: &Destination,
    ids: &HashMap<String, RecipientId>,
    now: OffsetDateTime,
) -> Result<Vec<String>, GatewayError> {
    let fail_all = |why: String, status: Option<DeliveryStatus>| async move {
        for r in &dest.recipients {
            if let Some(id) = ids.get(r) {
                worker
                    .track_failed(item, *id, now, why.clone(), status)
                    .await?;
            }
        }
        Ok::<_, GatewayError>(())
    };
    let servers = match worker.routes.servers(&dest.domain).await {
        Ok(servers) => servers,
        Err(RouteError::Temporary(why)) => return Ok(vec![why]),
        Err(RouteError::Permanent(why)) => {
            warn!(domain = %dest.domain, %why, "no server takes mail for the domain");
            fail_all(why, None).await?;
            return Ok(Vec::new());
        }
    };
    let sealed = {
        let (bytes, signer, dest, options) = (
            item.bytes.clone(),
            signer.clone(),
            dest.clone(),
            worker.settings.seal,
        );
        tokio::task::spawn_blocking(move || seal_for(&bytes, &signer, &dest, &options)).await?
    };
    let sealed = match sealed {
        Ok(s) => s,
        Err(e) => {
            warn!(domain = %dest.domain, error = %e, "cannot seal");
            fail_all(format!("cannot seal for {}: {e}", dest.domain), None).await?;
            return Ok(Vec::new());
        }
    };
    let (record, domain, n) = (item.message, dest.domain.clone(), dest.certs.len());
    worker
        .ctx
        .store
        .call(move |s| {
            s.audit(
                AuditKind::Sealed,
                None,
                Some(record),
                &format!("for {domain}: signed, encrypted to {n} certificate(s)"),
            )
        })
        .await?;

    let envelope = OutboundEnvelope {
        id: item
            .message_id
            .as_ref()
            .map_or_else(|| item.id.to_string(), |m| m.as_str().to_string()),
        mail_from: sender.to_string(),
        rcpt_to: dest.recipients.clone(),
    };
    let report = deliver_to_first(worker, &servers, &envelope, &sealed).await;
    let mut again = Vec::new();
    match report {
        Ok(report) => {
            for (rcpt, outcome) in report.recipients {
                let Some(id) = ids.get(&rcpt).copied() else {
                    continue;
                };
                match outcome {
                    RecipientOutcome::Delivered(reply) => {
                        info!(rcpt = %rcpt, %reply, "relayed");
                        worker
                            .track(
                                item,
                                id,
                                TrackingState::Relayed,
                                now,
                                Some(reply.to_string()),
                            )
                            .await?;
                    }
                    RecipientOutcome::Temporary(reply) => again.push(format!("{rcpt}: {reply}")),
                    RecipientOutcome::Permanent(reply) => {
                        info!(rcpt = %rcpt, %reply, "refused by the destination");
                        worker
                            .track_failed(item, id, now, reply.to_string(), reply_status(&reply))
                            .await?;
                    }
                }
            }
        }
        Err(e) if e.is_temporary() => again.push(format!("{}: {e}", dest.domain)),
        Err(e) => {
            warn!(domain = %dest.domain, error = %e, "delivery failed permanently");
            // RFC 3464 §2.3.4: a refusal of the whole transaction carries
            // its status to every recipient's DSN.
            let status = match &e {
                ClientError::Rejected { reply, .. } => reply_status(reply),
                _ => None,
            };
            fail_all(e.to_string(), status).await?;
        }
    }
    Ok(again)
}

/// Delivers to the first of `servers` that takes the transaction: a server
/// that cannot be reached or answers with a temporary failure before any
/// recipient is accepted makes way for the next (RFC 5321 §5.1: try the
/// exchangers in order). The last server's outcome counts. Each server's
/// TLS certificate is checked against its name (the MX host name).
///
/// A session kept from an earlier delivery to the same server is used when
/// one is idle (`SessionCache::deliver`, RSET first); one that the server
/// closed meanwhile costs a new connection within this attempt, not a
/// failed attempt. Every deadline of the client holds on a kept session as
/// on a new one, and the attempt's own deadline around it all.
async fn deliver_to_first(
    worker: &Worker,
    servers: &[Peer],
    envelope: &OutboundEnvelope,
    sealed: &[u8],
) -> Result<DeliveryReport, ClientError> {
    let mut outcome = None;
    for (i, server) in servers.iter().enumerate() {
        let report = worker
            .sessions
            .deliver(&worker.settings.client, server, envelope, sealed)
            .await;
        match report {
            Err(e) if e.is_temporary() && i + 1 < servers.len() => {
                info!(server = %server.label(), port = server.addr.port(), error = %e, "trying the next mail exchanger");
                outcome = Some(Err(e));
            }
            other => return other,
        }
    }
    outcome.expect("servers is never empty")
}

/// A recipient of a local domain: straight to its Inbox, delivered (or
/// failed when the address is gone) in one transaction with the notice for
/// its portal user when the message is mail from a person and a `[notify]`
/// smart host is set.
async fn deliver_locally(
    worker: &Worker,
    item: &QueueItem,
    r: &RecipientRecord,
    now: OffsetDateTime,
) -> Result<(), GatewayError> {
    let (address, id, bytes) = (r.address.clone(), r.id, item.bytes.clone());
    let notify = worker
        .settings
        .notify
        .clone()
        .filter(|_| item.expect.expects_mdn());
    let filing = worker
        .ctx
        .store
        .call(move |s| file_noting(s, notify.as_ref(), id, &address, &bytes, now, &[], &[]))
        .await?;
    match filing {
        Filing::Filed(entry) => info!(rcpt = %r.address, %entry, "delivered locally"),
        Filing::NoSuchAddress => warn!(rcpt = %r.address, "no such local address; failed"),
        Filing::AlreadyDone(state) => info!(rcpt = %r.address, %state, "already done"),
        Filing::Duplicate(entry) => {
            info!(rcpt = %r.address, %entry, "the Inbox holds it already; not filed twice")
        }
    }
    Ok(())
}

/// A copy in the sender's Sent folder, once per message. A sender without a
/// local mailbox (sending as a domain grant) has none; a message sent from
/// the portal has its copy already (filed before it was queued, found by
/// its Message-ID).
async fn sent_copy(worker: &Worker, sender: &DirectAddress, item: &QueueItem, now: OffsetDateTime) {
    let (address, bytes) = (sender.clone(), item.bytes.clone());
    let stored = worker
        .ctx
        .store
        .call(move |s| s.deliver_to_mailbox_once(&address, &bytes, Folder::Sent, now))
        .await;
    if let Err(e) = stored {
        warn!(sender = %sender, error = %e, "no copy in the Sent folder");
    }
}
