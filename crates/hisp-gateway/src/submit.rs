//! What every way of submitting mail shares — the SMTP submission listener
//! (`smtp_policy`) and the portal (`portal_submit`) call these same
//! functions, so a recipient or a message is judged the same whichever way
//! it came:
//!
//! - [`judge_recipient`]: a local recipient must exist; a remote one (and a
//!   local one when local mail is sealed) must have a discoverable, trusted
//!   certificate, else [`RecipientRefusal`] with the listener's reply;
//! - [`prepare_submission`]: the header policy ([`check_submission`]), the
//!   Disposition-Notification-To rule and the requests for notification;
//! - [`enqueue`]: the message and its distinct recipients committed to the
//!   queue in one transaction.

use hisp_mdn::{final_delivery_option_field, FinalDelivery, NotificationRequest};
use hisp_smtp::{Refusal, Reply};
use hisp_store::{
    AddressError, DirectAddress, Expectation, MessageDirection, MessageRecordId, TrackingState,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::header_bytes::HeaderByteError;
use crate::header_view::HeaderView;
use crate::policy::{after_trace_fields, check_header, PolicyError, SendingAccount};

/// Disposition-Notification-To (RFC 8098 §2.1).
pub(crate) const DNT: &str = "Disposition-Notification-To";
/// Disposition-Notification-Options (RFC 8098 §2.2).
pub(crate) const DNO: &str = "Disposition-Notification-Options";

/// Why a recipient is refused at submission. [`reply`](Self::reply) is the
/// answer the SMTP listener gives to its RCPT; the portal reports the same
/// text.
#[derive(Debug, thiserror::Error)]
pub enum RecipientRefusal {
    /// The address does not parse (`501 5.1.3`).
    #[error("{}", self.reply().text)]
    BadAddress {
        /// The address as given.
        address: String,
        /// The rule it breaks.
        error: AddressError,
    },
    /// A local domain has no such address (`550 5.1.1`).
    #[error("{}", self.reply().text)]
    NoSuchAddress {
        /// The address as given.
        address: String,
    },
    /// No usable trusted certificate: not a Direct address (`550 5.1.1`).
    #[error("{}", self.reply().text)]
    NotDirect {
        /// The address as given.
        address: String,
        /// What discovery and the trust judgement found.
        reason: String,
    },
    /// Discovery failed for now (`451 4.4.3`): try again later.
    #[error("{}", self.reply().text)]
    DiscoveryUnavailable {
        /// The address as given.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The store or a task failed (`451 4.3.0`).
    #[error("{}", self.reply().text)]
    Local(GatewayError),
}

impl RecipientRefusal {
    /// The SMTP listener's reply to RCPT for this refusal.
    pub fn reply(&self) -> Reply {
        match self {
            RecipientRefusal::BadAddress { address, error } => bad_recipient(address, error),
            RecipientRefusal::NoSuchAddress { address } => unknown_local(address),
            RecipientRefusal::NotDirect { address, reason } => {
                Reply::refusal(&Refusal::NotDirect {
                    address: address.clone(),
                    reason: reason.clone(),
                })
            }
            RecipientRefusal::DiscoveryUnavailable { address, reason } => {
                Reply::refusal(&Refusal::DiscoveryUnavailable {
                    address: address.clone(),
                    reason: reason.clone(),
                })
            }
            RecipientRefusal::Local(e) => local_error(e),
        }
    }

    /// A stable code for the refusal: `bad-address`, `no-such-address`,
    /// `not-direct`, `discovery-unavailable` or `local-error`.
    pub fn code(&self) -> &'static str {
        match self {
            RecipientRefusal::BadAddress { .. } => "bad-address",
            RecipientRefusal::NoSuchAddress { .. } => "no-such-address",
            RecipientRefusal::NotDirect { .. } => "not-direct",
            RecipientRefusal::DiscoveryUnavailable { .. } => "discovery-unavailable",
            RecipientRefusal::Local(_) => "local-error",
        }
    }

    /// The address refused, as given (none for a local failure).
    pub fn address(&self) -> Option<&str> {
        match self {
            RecipientRefusal::BadAddress { address, .. }
            | RecipientRefusal::NoSuchAddress { address }
            | RecipientRefusal::NotDirect { address, .. }
            | RecipientRefusal::DiscoveryUnavailable { address, .. } => Some(address),
            RecipientRefusal::Local(_) => None,
        }
    }

    /// Whether trying again later may succeed (a 4xx reply).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            RecipientRefusal::DiscoveryUnavailable { .. } | RecipientRefusal::Local(_)
        )
    }
}

/// `501 5.1.3`: the recipient address does not parse (RFC 3463 §3.2).
pub(crate) fn bad_recipient(addr: &str, e: &AddressError) -> Reply {
    Reply::new(
        501,
        (5, 1, 3),
        format!("<{addr}>: bad recipient address: {e}"),
    )
}

/// `550 5.1.1`: a local domain has no such address.
pub(crate) fn unknown_local(addr: &str) -> Reply {
    Reply::new(550, (5, 1, 1), format!("<{addr}>: no such address here"))
}

/// A store or task failure: temporary for the client.
pub(crate) fn local_error(e: &GatewayError) -> Reply {
    warn!(error = %e, "local error answering a submission");
    Reply::refusal(&Refusal::LocalError {
        reason: "the message store is not available".into(),
    })
}

/// Judges one recipient of mail from `sender`: a local recipient must
/// exist (and, when `seal_local`, also be a Direct address); any other must
/// have a usable certificate that the sender domain's outgoing anchors
/// trust, found by discovery now (Applicability Statement 1.3 §5: mail is
/// encrypted to the recipient's certificate, so an address without one
/// cannot receive Direct mail). Returns the parsed address.
pub async fn judge_recipient(
    ctx: &GatewayContext,
    seal_local: bool,
    sender: &DirectAddress,
    to: &str,
) -> Result<DirectAddress, RecipientRefusal> {
    let rcpt = DirectAddress::parse(to).map_err(|error| RecipientRefusal::BadAddress {
        address: to.to_string(),
        error,
    })?;
    if ctx
        .is_local(rcpt.domain())
        .await
        .map_err(RecipientRefusal::Local)?
    {
        match ctx.is_local_address(&rcpt).await {
            Ok(true) if !seal_local => return Ok(rcpt),
            Ok(true) => {}
            Ok(false) => {
                return Err(RecipientRefusal::NoSuchAddress {
                    address: to.to_string(),
                })
            }
            Err(e) => return Err(RecipientRefusal::Local(e)),
        }
    }
    let at = OffsetDateTime::now_utc().unix_timestamp();
    let found = ctx
        .discover(sender.domain(), &rcpt, at)
        .await
        .map_err(RecipientRefusal::Local)?;
    if found.usable {
        info!(rcpt = %rcpt, reason = %found.reason, "recipient is a Direct address");
        Ok(rcpt)
    } else if found.temporary {
        info!(rcpt = %rcpt, reason = %found.reason, "discovery failed for now");
        Err(RecipientRefusal::DiscoveryUnavailable {
            address: to.to_string(),
            reason: found.reason,
        })
    } else {
        info!(rcpt = %rcpt, reason = %found.reason, "not a Direct address");
        Err(RecipientRefusal::NotDirect {
            address: to.to_string(),
            reason: found.reason,
        })
    }
}

/// Why a submitted message is refused after its recipients were accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionRefusal {
    /// A bare CR or a NUL in the header (`554 5.6.0`).
    #[error("{0}")]
    Header(#[from] HeaderByteError),
    /// The header policy ([`check_submission`]).
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// Disposition-Notification-To names someone other than the sender
    /// (`550 5.7.1`).
    #[error("Disposition-Notification-To names {other}: MDNs for Direct mail go back to the sender, {sender}")]
    ForeignNotificationRecipient {
        /// The address the field names.
        other: String,
        /// The sender.
        sender: String,
    },
}

impl SubmissionRefusal {
    /// The SMTP listener's reply to DATA for this refusal.
    pub fn reply(&self) -> Reply {
        let reason = self.to_string();
        Reply::refusal(&match self {
            SubmissionRefusal::Header(_) => Refusal::BadHeader { reason },
            SubmissionRefusal::ForeignNotificationRecipient { .. } => {
                Refusal::MessagePolicy { reason }
            }
            SubmissionRefusal::Policy(e) => match e {
                PolicyError::FromMismatch { .. }
                | PolicyError::FromNotGranted { .. }
                | PolicyError::SenderNotGranted { .. }
                | PolicyError::HiddenRecipient(_)
                | PolicyError::BccPresent => Refusal::MessagePolicy { reason },
                PolicyError::NoHeaders
                | PolicyError::FromCount(_)
                | PolicyError::BadSender
                | PolicyError::BadDate
                | PolicyError::BadMessageId => Refusal::BadHeader { reason },
            },
        })
    }
}

/// A submitted message ready for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The message with the fields hisp adds (Message-ID when missing,
    /// the requests for notification).
    pub message: Vec<u8>,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// What tracking waits for.
    pub expect: Expectation,
}

/// Applies the submission rules to a message from `sender` (the envelope
/// sender as given, `mail_from`, parsed; already granted to `account`) for
/// `recipients`: the header policy, MDNs only to
/// the sender, and the requests for notification (`request_final_delivery`
/// is the account's setting). A report the sender sends itself (an MDN of
/// its user's) asks for nothing and expects nothing (RFC 8098 §2.1: an MDN
/// never requests an MDN).
pub fn prepare_submission(
    message: &[u8],
    mail_from: &str,
    sender: &DirectAddress,
    recipients: &[String],
    account: &dyn SendingAccount,
    request_final_delivery: bool,
) -> Result<Prepared, SubmissionRefusal> {
    // One parse of the header for every check below. A Message-ID the
    // policy adds changes none of the fields the later checks read.
    let view = HeaderView::parse(message);
    let submission = check_header(
        &view,
        mail_from,
        recipients,
        sender.domain().as_str(),
        account,
    )?;
    // MDNs go back to the sender, where tracking waits for them: a request
    // naming anyone else would send them astray (and let a user have other
    // HISPs mail a third party).
    let request = view.requested();
    if let Some(other) = request
        .disposition_notification_to
        .iter()
        .find(|a| DirectAddress::parse(a).map_or(true, |a| &a != sender))
    {
        info!(%other, "Disposition-Notification-To names someone else");
        return Err(SubmissionRefusal::ForeignNotificationRecipient {
            other: other.clone(),
            sender: sender.to_string(),
        });
    }
    let message_id = submission.message_id;
    if view.report_kind().is_some() {
        return Ok(Prepared {
            message: submission.message,
            message_id,
            expect: Expectation::Notification,
        });
    }
    let (message, final_delivery) = ask_for_notification(
        &view,
        request,
        request_final_delivery,
        sender,
        submission.message,
    );
    Ok(Prepared {
        message,
        message_id,
        expect: Expectation::Mail { final_delivery },
    })
}

/// Adds the requests for delivery notification (Implementation Guide
/// for Delivery Notification in Direct 1.0 §3.1) and says whether final
/// delivery is asked for:
///
/// - processed MDNs: `Disposition-Notification-To: <sender>` (RFC 8098
///   §2.1), unless the portal wrote one;
/// - final-destination delivery (the dispatched MDN): a request the
///   portal wrote itself stands (a malformed one counts as none);
///   otherwise the account's setting (`request_final_delivery`) decides,
///   and `Disposition-Notification-Options` is added when it is on.
///
/// The fields go below the trace fields.
fn ask_for_notification(
    view: &HeaderView<'_>,
    request: NotificationRequest,
    request_final_delivery: bool,
    sender: &DirectAddress,
    message: Vec<u8>,
) -> (Vec<u8>, bool) {
    let mut fields = String::new();
    if request.disposition_notification_to.is_empty() && !view.has_field(DNT) {
        fields.push_str(&format!("{DNT}: <{sender}>\r\n"));
    }
    let final_delivery = match request.final_delivery {
        FinalDelivery::Requested { .. } => true,
        FinalDelivery::Malformed(_) => false,
        FinalDelivery::NotRequested if view.has_field(DNO) => false,
        FinalDelivery::NotRequested => {
            if request_final_delivery {
                fields.push_str(final_delivery_option_field());
                fields.push_str("\r\n");
            }
            request_final_delivery
        }
    };
    if fields.is_empty() {
        return (message, final_delivery);
    }
    (
        after_trace_fields(&message, fields.as_bytes()),
        final_delivery,
    )
}

/// The recipients, each once, in the order first given: RFC 5321 §3.3
/// lets a client name a recipient again, and a Direct address in another
/// letter case is the same recipient ([`DirectAddress`] equality), so the
/// message is queued, delivered and tracked once for it.
pub fn distinct(recipients: impl IntoIterator<Item = DirectAddress>) -> Vec<DirectAddress> {
    let mut out: Vec<DirectAddress> = Vec::new();
    for address in recipients {
        if !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

/// A message committed to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The queue's id of the message.
    pub id: MessageRecordId,
    /// Each recipient with its tracking state (queued).
    pub recipients: Vec<(DirectAddress, TrackingState)>,
}

/// Commits `message` for `recipients` (distinct) durably: message and
/// recipients in one store transaction, before the submitter is told it was
/// accepted (RFC 5321 §6.1: the server takes responsibility only once the
/// message is safely stored).
pub async fn enqueue(
    ctx: &GatewayContext,
    direction: MessageDirection,
    from: Option<DirectAddress>,
    recipients: Vec<DirectAddress>,
    message: Vec<u8>,
    received_at: OffsetDateTime,
    expect: Expectation,
) -> Result<Queued, GatewayError> {
    let (id, recipients) = ctx
        .store
        .call_retrying("queueing a message", move |s| {
            s.enqueue_expecting(
                direction,
                from.as_ref(),
                &recipients,
                &message,
                received_at,
                expect,
            )
            .map(|id| (id, recipients.clone()))
        })
        .await?;
    info!(queue_id = %id, %direction, "queued");
    Ok(Queued {
        id,
        recipients: recipients
            .into_iter()
            .map(|r| (r, TrackingState::Queued))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5321 §3.3: a recipient named again, in any letter case, is one
    /// recipient; the first spelling is kept.
    #[test]
    fn a_recipient_given_twice_is_kept_once() {
        let given = [
            "Doc@B.example",
            "nurse@b.example",
            "doc@b.example",
            "DOC@b.EXAMPLE",
        ]
        .iter()
        .map(|s| DirectAddress::parse(s).unwrap());
        let shown: Vec<String> = distinct(given).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["Doc@b.example", "nurse@b.example"]);
    }

    #[test]
    fn an_options_field_is_found_in_any_letter_case() {
        assert!(HeaderView::parse(
            b"disposition-notification-options: x=optional,false\r\nFrom: a@b\r\n\r\n"
        )
        .has_field(DNO));
        assert!(!HeaderView::parse(
            b"From: a@b\r\n\r\nDisposition-Notification-Options: in the body\r\n"
        )
        .has_field(DNO));
    }

    #[test]
    fn a_refusal_reports_the_listeners_reply_text() {
        let r = RecipientRefusal::NotDirect {
            address: "x@plain.example".into(),
            reason: "no certificate found".into(),
        };
        assert_eq!(r.code(), "not-direct");
        assert_eq!(r.reply().code, 550);
        assert_eq!(r.to_string(), r.reply().text);
        assert!(r.to_string().contains("x@plain.example"), "{r}");
    }
}
