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
use hisp_smtp::{Account, Envelope, Policy, Refusal, Reply, Role, Session};
use hisp_store::{
    Account as StoreAccount, AddressError, DirectAddress, Expectation, MessageDirection, UserName,
};
use time::OffsetDateTime;
use tracing::{info, info_span, warn, Instrument};

use crate::auth_guard::{AuthGuard, AuthLimits, Hold};
use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::header_bytes::check_header_bytes;
use crate::submit::{
    bad_recipient, distinct, enqueue, judge_recipient, local_error, prepare_submission,
    unknown_local,
};

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

/// `553 5.1.7`: the sender address does not parse (RFC 3463 §3.2).
fn bad_sender(addr: &str, e: &AddressError) -> Reply {
    Reply::new(553, (5, 1, 7), format!("<{addr}>: bad sender address: {e}"))
}

/// The envelope's recipients, each once, in the order first given: RFC
/// 5321 §3.3 lets a client name a recipient again, and a Direct address in
/// another letter case is the same recipient ([`DirectAddress`] equality),
/// so the message is queued, delivered and tracked once for it.
fn distinct_recipients(rcpt_to: &[String]) -> Result<Vec<DirectAddress>, Reply> {
    let parsed = rcpt_to
        .iter()
        .map(|r| DirectAddress::parse(r).map_err(|e| bad_recipient(r, &e)))
        .collect::<Result<Vec<_>, Reply>>()?;
    Ok(distinct(parsed))
}

/// Whether `to` names a recipient the transaction already accepted.
fn already_accepted(envelope: &Envelope, to: &DirectAddress) -> bool {
    envelope
        .rcpt_to
        .iter()
        .any(|r| DirectAddress::parse(r).is_ok_and(|r| &r == to))
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
        let sender = DirectAddress::parse(&envelope.mail_from)
            .map_err(|e| bad_sender(&envelope.mail_from, &e))?;
        judge_recipient(&self.ctx, self.seal_local, &sender, to)
            .await
            .map(|_| ())
            .map_err(|refusal| refusal.reply())
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
        let queued = enqueue(
            &self.ctx,
            direction,
            from,
            recipients,
            message,
            OffsetDateTime::now_utc(),
            expect,
        )
        .await;
        match queued {
            Ok(queued) => Reply::ok_queued(&queued.id.to_string()),
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
        // Reading the message (up to its whole body for a multipart one)
        // and copying it grow with its size: off the async threads.
        let (mail_from, rcpt_to, for_sender) = (
            envelope.mail_from.clone(),
            envelope.rcpt_to.clone(),
            sender.clone(),
        );
        let checked = tokio::task::spawn_blocking(move || {
            prepare_submission(
                &message,
                &mail_from,
                &for_sender,
                &rcpt_to,
                &account,
                account.request_final_delivery,
            )
        })
        .await;
        let prepared = match checked {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                info!(reason = %e, "message refused by the submission policy");
                return e.reply();
            }
            Err(e) => return local_error(&GatewayError::from(e)),
        };
        let span = info_span!("queue", msg_id = %prepared.message_id);
        let (message, expect) = (prepared.message, prepared.expect);
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
}
