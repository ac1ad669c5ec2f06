//! The gateway's answers to the SMTP listeners ([`hisp_smtp::Policy`]), for
//! both roles:
//!
//! - Submission: the account logs in with its store password; MAIL FROM must
//!   be an address the account may send as; a local recipient must exist; a
//!   remote recipient (and a local one when local mail is sealed) is
//!   discovered at RCPT, so a portal learns at once that
//!   an address is not a Direct address (550 5.1.1) or cannot be checked now
//!   (451 4.4.3); DATA applies the header policy and commits the message to
//!   the queue before 250.
//! - Backbone: any sender; recipients only at existing local addresses
//!   (never an open relay); DATA commits the message to the queue before 250.

use std::net::IpAddr;

use async_trait::async_trait;
use hisp_mdn::{final_delivery_option_field, report_kind, requested, FinalDelivery};
use hisp_smtp::{Account, Envelope, Policy, Refusal, Reply, Role, Session};
use hisp_store::{
    Account as StoreAccount, AddressError, DirectAddress, Expectation, MessageDirection, UserName,
};
use mail_parser::MessageParser;
use time::OffsetDateTime;
use tracing::{info, info_span, warn, Instrument};

use crate::auth_guard::{AuthGuard, AuthLimits, Hold};
use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::header_bytes::check_header_bytes;
use crate::policy::{after_trace_fields, check_submission, PolicyError};

/// The [`Policy`] of both listeners of one HISP.
#[derive(Debug, Clone)]
pub struct GatewayPolicy {
    ctx: GatewayContext,
    seal_local: bool,
    auth: AuthGuard,
}

impl GatewayPolicy {
    /// A policy answering from `ctx`'s store and discovery.
    pub fn new(ctx: GatewayContext) -> Self {
        GatewayPolicy {
            ctx,
            seal_local: false,
            auth: AuthGuard::default(),
        }
    }

    /// The bound on parallel password checks and the failed-login throttle
    /// of AUTH (see [`AuthGuard`]); [`AuthLimits::default`] otherwise.
    pub fn with_auth_limits(mut self, limits: AuthLimits) -> Self {
        self.auth = AuthGuard::new(limits);
        self
    }

    /// Mail to local domains travels the Direct way (the workers'
    /// [`WorkerSettings::seal_local`](crate::WorkerSettings::seal_local)): a
    /// local recipient must then also have a discoverable, trusted
    /// certificate at RCPT, like a remote one, or the portal would learn only
    /// later that the message cannot be sealed for it.
    pub fn sealing_local_mail(mut self, on: bool) -> Self {
        self.seal_local = on;
        self
    }
}

/// Disposition-Notification-To (RFC 8098 §2.1).
const DNT: &str = "Disposition-Notification-To";
/// Disposition-Notification-Options (RFC 8098 §2.2).
const DNO: &str = "Disposition-Notification-Options";

/// Whether the header has a field called `name` (a request the portal
/// wrote, readable or not, is the portal's own choice).
fn has_field(message: &[u8], name: &str) -> bool {
    MessageParser::new()
        .parse_headers(message)
        .is_some_and(|m| {
            m.headers()
                .iter()
                .any(|h| h.name.as_str().eq_ignore_ascii_case(name))
        })
}

/// `553 5.1.7`: the sender address does not parse (RFC 3463 §3.2).
fn bad_sender(addr: &str, e: &AddressError) -> Reply {
    Reply::new(553, (5, 1, 7), format!("<{addr}>: bad sender address: {e}"))
}

/// `501 5.1.3`: the recipient address does not parse (RFC 3463 §3.2).
fn bad_recipient(addr: &str, e: &AddressError) -> Reply {
    Reply::new(
        501,
        (5, 1, 3),
        format!("<{addr}>: bad recipient address: {e}"),
    )
}

/// `550 5.1.1`: a local domain has no such address.
fn unknown_local(addr: &str) -> Reply {
    Reply::new(550, (5, 1, 1), format!("<{addr}>: no such address here"))
}

/// The envelope's recipients, each once, in the order first given: RFC
/// 5321 §3.3 lets a client name a recipient again, and a Direct address in
/// another letter case is the same recipient ([`DirectAddress`] equality),
/// so the message is queued, delivered and tracked once for it.
fn distinct_recipients(rcpt_to: &[String]) -> Result<Vec<DirectAddress>, Reply> {
    let mut recipients: Vec<DirectAddress> = Vec::with_capacity(rcpt_to.len());
    for r in rcpt_to {
        let address = DirectAddress::parse(r).map_err(|e| bad_recipient(r, &e))?;
        if !recipients.contains(&address) {
            recipients.push(address);
        }
    }
    Ok(recipients)
}

/// Whether `to` names a recipient the transaction already accepted.
fn already_accepted(envelope: &Envelope, to: &DirectAddress) -> bool {
    envelope
        .rcpt_to
        .iter()
        .any(|r| DirectAddress::parse(r).is_ok_and(|r| &r == to))
}

/// A store or task failure: temporary for the client.
fn local_error(e: &GatewayError) -> Reply {
    warn!(error = %e, "local error answering SMTP");
    Reply::refusal(&Refusal::LocalError {
        reason: "the message store is not available".into(),
    })
}

/// The reply for a message that breaks the submission header policy.
fn policy_refusal(e: &PolicyError) -> Reply {
    let reason = e.to_string();
    Reply::refusal(&match e {
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
    })
}

/// Whole seconds, rounded up, for a client told when to try again.
fn whole_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl GatewayPolicy {
    /// Lets an AUTH from `peer` for `user` (`account` when the name can be
    /// one) have its password checked, or refuses it with `454 4.7.0` when
    /// the throttle holds the address or the account; each refusal logged.
    fn admit(&self, peer: IpAddr, user: &str, account: Option<&str>) -> Result<(), Reply> {
        let reason = match self.auth.check(peer, account, std::time::Instant::now()) {
            Ok(()) => return Ok(()),
            Err(Hold::Address { key, retry_after }) => {
                let secs = whole_seconds(retry_after);
                warn!(%peer, user = ?user, held = "address", retry_after_secs = secs, "AUTH throttled: too many failed logins from this address");
                format!("Too many failed logins from {key}, try again in {secs} seconds")
            }
            Err(Hold::Account { retry_after }) => {
                let secs = whole_seconds(retry_after);
                warn!(%peer, user = ?user, held = "account", retry_after_secs = secs, "AUTH throttled: too many failed logins for this account");
                format!("Too many failed logins for this account, try again in {secs} seconds")
            }
        };
        Err(Reply::refusal(&Refusal::AuthThrottled { reason }))
    }

    /// Counts a failed login, and logs when it reaches a limit.
    fn login_failed(&self, peer: IpAddr, user: &str, account: Option<&str>) {
        if self.auth.failed(peer, account, std::time::Instant::now()) {
            warn!(
                %peer,
                user = ?user,
                window_secs = self.auth.limits().window.as_secs(),
                "failed logins reached the limit: further AUTH from this address or for this account is refused until the window ends"
            );
        }
    }

    async fn submission_rcpt(&self, envelope: &Envelope, to: &str) -> Result<(), Reply> {
        let rcpt = DirectAddress::parse(to).map_err(|e| bad_recipient(to, &e))?;
        // Accepted once already: it is the same recipient, not discovered again.
        if already_accepted(envelope, &rcpt) {
            return Ok(());
        }
        if self
            .ctx
            .is_local(rcpt.domain())
            .await
            .map_err(|e| local_error(&e))?
        {
            match self.ctx.is_local_address(&rcpt).await {
                Ok(true) if !self.seal_local => return Ok(()),
                Ok(true) => {}
                Ok(false) => return Err(unknown_local(to)),
                Err(e) => return Err(local_error(&e)),
            }
        }
        let sender = DirectAddress::parse(&envelope.mail_from)
            .map_err(|e| bad_sender(&envelope.mail_from, &e))?;
        let at = OffsetDateTime::now_utc().unix_timestamp();
        let found = self
            .ctx
            .discover(sender.domain(), &rcpt, at)
            .await
            .map_err(|e| local_error(&e))?;
        if found.usable {
            info!(rcpt = %rcpt, reason = %found.reason, "recipient is a Direct address");
            Ok(())
        } else if found.temporary {
            info!(rcpt = %rcpt, reason = %found.reason, "discovery failed for now");
            Err(Reply::refusal(&Refusal::DiscoveryUnavailable {
                address: to.to_string(),
                reason: found.reason,
            }))
        } else {
            info!(rcpt = %rcpt, reason = %found.reason, "not a Direct address");
            Err(Reply::refusal(&Refusal::NotDirect {
                address: to.to_string(),
                reason: found.reason,
            }))
        }
    }

    async fn backbone_rcpt(&self, to: &str) -> Result<(), Reply> {
        let rcpt = DirectAddress::parse(to).map_err(|e| bad_recipient(to, &e))?;
        match self.ctx.is_local(rcpt.domain()).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(Reply::refusal(&Refusal::RelayDenied {
                    address: to.to_string(),
                }))
            }
            Err(e) => return Err(local_error(&e)),
        }
        match self.ctx.is_local_address(&rcpt).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(unknown_local(to)),
            Err(e) => Err(local_error(&e)),
        }
    }

    /// Commits the message durably; the 250 names the queued message.
    async fn enqueue(
        &self,
        direction: MessageDirection,
        from: Option<DirectAddress>,
        envelope: &Envelope,
        message: Vec<u8>,
        expect: Expectation,
    ) -> Reply {
        let recipients = match distinct_recipients(&envelope.rcpt_to) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let queued = self
            .ctx
            .store
            .call(move |s| {
                s.enqueue_expecting(
                    direction,
                    from.as_ref(),
                    &recipients,
                    &message,
                    OffsetDateTime::now_utc(),
                    expect,
                )
            })
            .await;
        match queued {
            Ok(id) => {
                info!(queue_id = %id, %direction, "queued");
                Reply::ok_queued(&id.to_string())
            }
            Err(e) => local_error(&e),
        }
    }

    async fn submission_data(
        &self,
        session: &Session,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Reply {
        let sender = match DirectAddress::parse(&envelope.mail_from) {
            Ok(a) => a,
            Err(e) => return bad_sender(&envelope.mail_from, &e),
        };
        // The grants are read afresh, as at MAIL FROM: the header is judged
        // by what the account may send as now.
        let account = match self.account(session).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                return Reply::refusal(&Refusal::SenderNotOwned {
                    address: envelope.mail_from.clone(),
                })
            }
            Err(e) => return local_error(&e),
        };
        let submission = match check_submission(
            &message,
            &envelope.mail_from,
            &envelope.rcpt_to,
            sender.domain().as_str(),
            &account,
        ) {
            Ok(s) => s,
            Err(e) => {
                info!(reason = %e, "message refused by the submission policy");
                return policy_refusal(&e);
            }
        };
        let span = info_span!("queue", msg_id = %submission.message_id);
        // MDNs go back to the sender, where tracking waits for them: a
        // request naming anyone else would send them astray (and let a user
        // have other HISPs mail a third party).
        let request = requested(&submission.message);
        if let Some(other) = request
            .disposition_notification_to
            .iter()
            .find(|a| DirectAddress::parse(a).map_or(true, |a| a != sender))
        {
            info!(%other, "Disposition-Notification-To names someone else");
            return Reply::refusal(&Refusal::MessagePolicy {
                reason: format!(
                    "Disposition-Notification-To names {other}: MDNs for Direct mail go back to the sender, {sender}"
                ),
            });
        }
        // A report the portal sends itself (an MDN of its user's) asks for
        // nothing and expects nothing (RFC 8098 §2.1: an MDN never requests
        // an MDN).
        let (message, expect) = if report_kind(&submission.message).is_some() {
            (submission.message, Expectation::Notification)
        } else {
            let (message, final_delivery) =
                ask_for_notification(&account, &sender, submission.message);
            (message, Expectation::Mail { final_delivery })
        };
        self.enqueue(
            MessageDirection::Outbound,
            Some(sender),
            envelope,
            message,
            expect,
        )
        .instrument(span)
        .await
    }

    /// The session's account as the store has it now; `None` when it no
    /// longer exists (or the session never authenticated).
    async fn account(&self, session: &Session) -> Result<Option<StoreAccount>, GatewayError> {
        let Some(name) = session
            .account
            .as_ref()
            .and_then(|a| UserName::parse(&a.name).ok())
        else {
            return Ok(None);
        };
        match self.ctx.store.call(move |s| s.user(&name)).await {
            Ok(account) => Ok(Some(account)),
            Err(GatewayError::Store(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Adds the requests for delivery notification (Implementation Guide
/// for Delivery Notification in Direct 1.0 §3.1) and says whether final
/// delivery is asked for:
///
/// - processed MDNs: `Disposition-Notification-To: <sender>` (RFC 8098
///   §2.1), unless the portal wrote one;
/// - final-destination delivery (the dispatched MDN): a request the
///   portal wrote itself stands (a malformed one counts as none);
///   otherwise the `account`'s setting decides, and
///   `Disposition-Notification-Options` is added when it is on.
///
/// The fields go below the trace fields.
fn ask_for_notification(
    account: &StoreAccount,
    sender: &DirectAddress,
    message: Vec<u8>,
) -> (Vec<u8>, bool) {
    let request = requested(&message);
    let mut fields = String::new();
    if request.disposition_notification_to.is_empty() && !has_field(&message, DNT) {
        fields.push_str(&format!("{DNT}: <{sender}>\r\n"));
    }
    let final_delivery = match request.final_delivery {
        FinalDelivery::Requested { .. } => true,
        FinalDelivery::Malformed(_) => false,
        FinalDelivery::NotRequested if has_field(&message, DNO) => false,
        FinalDelivery::NotRequested => {
            let on = account.request_final_delivery;
            if on {
                fields.push_str(final_delivery_option_field());
                fields.push_str("\r\n");
            }
            on
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

#[async_trait]
impl Policy for GatewayPolicy {
    async fn authenticate(
        &self,
        session: &Session,
        user: &str,
        password: &str,
    ) -> Result<Account, Reply> {
        let peer = session.peer.ip();
        let name = UserName::parse(user).ok();
        let account = name.as_ref().map(|n| n.as_str().to_string());
        self.admit(peer, user, account.as_deref())?;
        let Some(name) = name else {
            self.login_failed(peer, user, None);
            return Err(Reply::refusal(&Refusal::BadCredentials));
        };
        let Some(place) = self.auth.place().await else {
            warn!(%peer, user = ?user, "AUTH refused: no place to check the password came free in time");
            return Err(Reply::refusal(&Refusal::AuthBusy {
                reason:
                    "Temporary authentication failure: too many logins at once, try again later"
                        .into(),
            }));
        };
        // Failures counted while this one waited may hold it back now.
        self.admit(peer, user, account.as_deref())?;
        let password = password.to_string();
        let checked = self
            .ctx
            .store
            .call(move |s| {
                // The place is held until the check itself ends, even if the
                // session is gone by then.
                let _place = place;
                s.verify_password(&name, &password)
            })
            .await;
        match checked {
            Ok(found) => {
                self.auth
                    .succeeded(peer, found.name.as_str(), std::time::Instant::now());
                Ok(Account::new(found.name.as_str()))
            }
            Err(GatewayError::Store(e)) if e.is_bad_credentials() => {
                self.login_failed(peer, user, account.as_deref());
                Err(Reply::refusal(&Refusal::BadCredentials))
            }
            Err(e) => Err(local_error(&e)),
        }
    }

    async fn mail_from(&self, session: &Session, from: &str) -> Result<(), Reply> {
        if session.role == Role::Backbone {
            return Ok(());
        }
        let not_owned = || {
            Reply::refusal(&Refusal::SenderNotOwned {
                address: from.to_string(),
            })
        };
        let Some(account) = &session.account else {
            return Err(Reply::refusal(&Refusal::AuthRequired));
        };
        if from.is_empty() {
            return Err(not_owned());
        }
        let sender = DirectAddress::parse(from).map_err(|e| bad_sender(from, &e))?;
        let name = UserName::parse(&account.name).map_err(|_| not_owned())?;
        // Grants are read afresh: one revoked with the CLI applies at once.
        match self.ctx.store.call(move |s| s.user(&name)).await {
            Ok(account) if account.may_send_as(&sender) => Ok(()),
            Ok(_) => Err(not_owned()),
            Err(GatewayError::Store(e)) if e.is_not_found() => Err(not_owned()),
            Err(e) => Err(local_error(&e)),
        }
    }

    async fn rcpt_to(&self, session: &Session, envelope: &Envelope, to: &str) -> Result<(), Reply> {
        let span = info_span!("rcpt", msg_id = %envelope.id, rcpt = %to);
        match session.role {
            Role::Submission => self.submission_rcpt(envelope, to).instrument(span).await,
            Role::Backbone => self.backbone_rcpt(to).instrument(span).await,
        }
    }

    async fn data(&self, session: &Session, envelope: &Envelope, message: Vec<u8>) -> Reply {
        let span = info_span!("data", msg_id = %envelope.id, from = %envelope.mail_from);
        // Both listeners: the checks below and the sealing must read the
        // same header fields (RFC 5322 §2.2).
        if let Err(e) = check_header_bytes(&message) {
            span.in_scope(|| info!(reason = %e, "message refused: bad bytes in the header"));
            return Reply::refusal(&Refusal::BadHeader {
                reason: e.to_string(),
            });
        }
        match session.role {
            Role::Submission => {
                self.submission_data(session, envelope, message)
                    .instrument(span)
                    .await
            }
            Role::Backbone => {
                // The null reverse-path (an MDN or DSN) or an unparsable one is kept as none.
                let from = DirectAddress::parse(&envelope.mail_from).ok();
                let expect = Expectation::Mail {
                    final_delivery: false,
                };
                self.enqueue(MessageDirection::Inbound, from, envelope, message, expect)
                    .instrument(span)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5321 §3.3: a recipient named again, in any letter case, is one
    /// recipient; the first spelling is kept.
    #[test]
    fn a_recipient_given_twice_is_queued_once() {
        let given: Vec<String> = [
            "Doc@B.example",
            "nurse@b.example",
            "doc@b.example",
            "DOC@b.EXAMPLE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let distinct = distinct_recipients(&given).unwrap();
        let shown: Vec<String> = distinct.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["Doc@b.example", "nurse@b.example"]);
    }

    #[test]
    fn an_options_field_is_found_in_any_letter_case() {
        assert!(has_field(
            b"disposition-notification-options: x=optional,false\r\nFrom: a@b\r\n\r\n",
            DNO
        ));
        assert!(!has_field(
            b"From: a@b\r\n\r\nDisposition-Notification-Options: in the body\r\n",
            DNO
        ));
    }
}
