//! Sending from the portal: what the HTTP API's `POST /api/v1/messages` and
//! `POST /api/v1/messages/{id}/reply` call. A portal user's message is
//! composed (`compose`), then takes the same path as mail submitted over
//! SMTP, through the same functions (`submit`): every recipient judged by
//! [`judge_recipient`] (nothing queued when any is refused), the header
//! bytes and policy checked, the requests for notification added, and the
//! message committed to the queue before the caller is answered.

use hisp_store::{
    DirectAddress, Folder, MailboxEntryId, MailboxView, MessageDirection, MessageRecordId,
    PortalUser, TrackingState,
};
use time::OffsetDateTime;
use tracing::{info, info_span, Instrument};

use crate::compose::{
    check_attachments, compose, header_text, reply_basis, AttachmentLimits, ComposeError,
    Composition, Draft, NewAttachment, Thread,
};
use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::header_bytes::check_header_bytes;
use crate::policy::new_message_id;
use crate::submit::{
    distinct, enqueue, judge_recipient, prepare_submission, Prepared, RecipientRefusal,
    SubmissionRefusal,
};

/// How the portal sends. The defaults are those of issue 11; `hisp serve`
/// fills them from `[portal]` when it has keys for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSendSettings {
    /// How many attachments and bytes a message may carry.
    pub limits: AttachmentLimits,
    /// Whether portal messages ask for final delivery notification (the
    /// dispatched MDN), as a submission account's
    /// `request_final_delivery` does; on by default, as for new accounts.
    pub request_final_delivery: bool,
    /// Mail to local domains travels the Direct way, so local recipients
    /// must be Direct addresses too (`[smtp] seal_local_mail`, as
    /// [`GatewayPolicy::sealing_local_mail`](crate::GatewayPolicy::sealing_local_mail)).
    pub seal_local: bool,
}

impl Default for PortalSendSettings {
    fn default() -> Self {
        PortalSendSettings {
            limits: AttachmentLimits::default(),
            request_final_delivery: true,
            seal_local: false,
        }
    }
}

/// A reply as the user wrote it; To, Subject and the thread come from the
/// message answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplyDraft {
    /// The plain-text body.
    pub text: String,
    /// The attachments.
    pub attachments: Vec<NewAttachment>,
}

/// A recipient of a queued message and its tracking state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecipient {
    /// The address.
    pub address: DirectAddress,
    /// Its state (queued, right after sending).
    pub state: TrackingState,
}

/// A message the portal queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The id of its copy in the sender's Sent folder (the API's `id`),
    /// filed before it was queued so the API can answer with it at once;
    /// the worker then files no second copy.
    pub sent_id: MailboxEntryId,
    /// The queue's id of the message.
    pub queue_id: MessageRecordId,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// Each recipient, in the order given, once.
    pub recipients: Vec<SentRecipient>,
}

/// A message the portal queued once under a mark
/// ([`PortalSender::send_once`]); its Sent copy is filed by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedOnce {
    /// The queue's id of the message.
    pub queue_id: MessageRecordId,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// Each recipient, in the order given, once.
    pub recipients: Vec<SentRecipient>,
}

/// Why the portal did not send a message. Nothing was queued.
#[derive(Debug, thiserror::Error)]
pub enum PortalSendError {
    /// The message cannot be composed: too many or too large attachments
    /// (413), a type not accepted or not matching the bytes, a control
    /// character in the Subject, no recipient (422).
    #[error("{0}")]
    Compose(#[from] ComposeError),
    /// Recipients refused, each with the reply the SMTP listener gives to
    /// its RCPT (at least one).
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Recipients(Vec<RecipientRefusal>),
    /// The composed message broke a submission rule (the listener's DATA
    /// reply).
    #[error("{0}")]
    Refused(#[from] SubmissionRefusal),
    /// The message to reply to is not in the user's mailbox view.
    #[error("no such message in this mailbox")]
    NotFound,
    /// Only messages received (in the Inbox) can be replied to.
    #[error("only a message in the Inbox can be replied to; this one is in {0}")]
    NotReplyable(Folder),
    /// The portal account is disabled or gone (read afresh, as the SMTP
    /// listener reads an account's grants at DATA).
    #[error("the portal account {0} may not send: it is disabled or no longer exists")]
    AccountDisabled(DirectAddress),
    /// The store or a task failed: try again later.
    #[error("{0}")]
    Local(#[from] GatewayError),
}

/// How the API should answer a [`PortalSendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Over the limits (413).
    TooLarge,
    /// The request cannot be sent as it is (422).
    Unprocessable,
    /// No such message (404).
    NotFound,
    /// The account may not send (403).
    Forbidden,
    /// Try again later (503): discovery or the store failed for now.
    Unavailable,
}

impl PortalSendError {
    /// How the API answers it.
    pub fn outcome(&self) -> Outcome {
        match self {
            PortalSendError::Compose(e) if e.is_too_large() => Outcome::TooLarge,
            PortalSendError::Compose(_)
            | PortalSendError::Refused(_)
            | PortalSendError::NotReplyable(_) => Outcome::Unprocessable,
            // One permanent refusal is enough to make the request wrong.
            PortalSendError::Recipients(r) if r.iter().all(RecipientRefusal::is_temporary) => {
                Outcome::Unavailable
            }
            PortalSendError::Recipients(_) => Outcome::Unprocessable,
            PortalSendError::NotFound => Outcome::NotFound,
            PortalSendError::AccountDisabled(_) => Outcome::Forbidden,
            PortalSendError::Local(_) => Outcome::Unavailable,
        }
    }

    /// A stable code for the API's `error` key: the compose codes,
    /// the first permanent recipient refusal's code (`not-direct`,
    /// `no-such-address`, `bad-address`, or `discovery-unavailable`),
    /// `policy`, `not-found`, `not-replyable`, `account-disabled`,
    /// `local-error`.
    pub fn code(&self) -> &'static str {
        match self {
            PortalSendError::Compose(e) => e.code(),
            PortalSendError::Recipients(r) => r
                .iter()
                .find(|r| !r.is_temporary())
                .or(r.first())
                .map_or("not-direct", RecipientRefusal::code),
            PortalSendError::Refused(_) => "policy",
            PortalSendError::NotFound => "not-found",
            PortalSendError::NotReplyable(_) => "not-replyable",
            PortalSendError::AccountDisabled(_) => "account-disabled",
            PortalSendError::Local(_) => "local-error",
        }
    }
}

/// Sends portal users' messages through the gateway.
#[derive(Debug, Clone)]
pub struct PortalSender {
    ctx: GatewayContext,
    settings: PortalSendSettings,
}

impl PortalSender {
    /// A sender using `ctx`'s store and discovery.
    pub fn new(ctx: GatewayContext, settings: PortalSendSettings) -> Self {
        PortalSender { ctx, settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &PortalSendSettings {
        &self.settings
    }

    /// Sends a new message from `user` (its own address, with
    /// `display_name` when given) at `now`: composed, judged as the SMTP
    /// submission listener judges, and queued durably.
    pub async fn send(
        &self,
        user: &PortalUser,
        display_name: Option<&str>,
        draft: Draft,
        now: OffsetDateTime,
    ) -> Result<Sent, PortalSendError> {
        let span = info_span!("portal_send", from = %user.address);
        self.submit(
            user,
            display_name,
            draft.to,
            draft.subject,
            draft.text,
            draft.attachments,
            None,
            now,
        )
        .instrument(span)
        .await
    }

    /// Replies from `user` to the message `original` of its Inbox, as seen
    /// in `view` (another user's message, or one past retention, is
    /// [`PortalSendError::NotFound`]): To is the original's sender, Subject
    /// `Re: ` and the original's (not doubled), In-Reply-To and References
    /// continue its thread.
    pub async fn reply(
        &self,
        user: &PortalUser,
        display_name: Option<&str>,
        original: MailboxEntryId,
        view: MailboxView,
        reply: ReplyDraft,
        now: OffsetDateTime,
    ) -> Result<Sent, PortalSendError> {
        let span = info_span!("portal_reply", from = %user.address, original = %original);
        async move {
            let owner = user.address.clone();
            let found = self
                .ctx
                .store
                .call(move |s| {
                    let entry = s.view_entry(&owner, original, &view)?;
                    let message = s.read_message(entry.id)?;
                    Ok((entry.folder, message.bytes))
                })
                .await;
            let (folder, bytes) = match found {
                Ok(found) => found,
                Err(GatewayError::Store(e)) if e.is_not_found() => {
                    return Err(PortalSendError::NotFound)
                }
                Err(e) => return Err(e.into()),
            };
            if folder != Folder::Inbox {
                return Err(PortalSendError::NotReplyable(folder));
            }
            let basis = reply_basis(&bytes)?;
            self.submit(
                user,
                display_name,
                vec![basis.to.to_string()],
                basis.subject,
                reply.text,
                reply.attachments,
                Some(basis.thread),
                now,
            )
            .await
        }
        .instrument(span)
        .await
    }

    /// Sends a new message from `user` as [`send`](Self::send) does, at
    /// most once under `mark` (see [`hisp_store::Store::enqueue_once`]): the
    /// message is queued and the mark recorded in one transaction. When the
    /// mark is recorded already, nothing is judged, composed or queued and
    /// the answer is `Ok(None)`. No Sent copy is filed up front: the worker
    /// files it when it first takes the message (as for mail submitted over
    /// SMTP), so a stop before the enqueue leaves nothing behind and a stop
    /// after it leaves the message queued with its mark.
    pub async fn send_once(
        &self,
        mark: &str,
        user: &PortalUser,
        display_name: Option<&str>,
        draft: Draft,
        now: OffsetDateTime,
    ) -> Result<Option<QueuedOnce>, PortalSendError> {
        let span = info_span!("portal_send_once", from = %user.address, mark);
        async move {
            let key = mark.to_string();
            if self
                .ctx
                .store
                .call(move |s| s.queued_once(&key))
                .await?
                .is_some()
            {
                info!("already queued under this mark");
                return Ok(None);
            }
            let ready = self
                .prepare(
                    user,
                    display_name,
                    draft.to,
                    draft.subject,
                    draft.text,
                    draft.attachments,
                    None,
                    now,
                )
                .await?;
            let Ready {
                sender,
                recipients,
                prepared,
            } = ready;
            let (key, from, rcpts) = (mark.to_string(), sender.clone(), recipients.clone());
            let (bytes, expect) = (prepared.message, prepared.expect);
            let queued = self
                .ctx
                .store
                .call(move |s| {
                    s.enqueue_once(
                        &key,
                        MessageDirection::Outbound,
                        Some(&from),
                        &rcpts,
                        &bytes,
                        now,
                        expect,
                    )
                })
                .instrument(info_span!("queue", msg_id = %prepared.message_id))
                .await?;
            let Some(queue_id) = queued else {
                info!("already queued under this mark");
                return Ok(None);
            };
            info!(%queue_id, msg_id = %prepared.message_id, "portal message queued once");
            Ok(Some(QueuedOnce {
                queue_id,
                message_id: prepared.message_id,
                recipients: recipients
                    .into_iter()
                    .map(|address| SentRecipient {
                        address,
                        state: TrackingState::Queued,
                    })
                    .collect(),
            }))
        }
        .instrument(span)
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn submit(
        &self,
        user: &PortalUser,
        display_name: Option<&str>,
        to: Vec<String>,
        subject: String,
        text: String,
        attachments: Vec<NewAttachment>,
        thread: Option<Thread>,
        now: OffsetDateTime,
    ) -> Result<Sent, PortalSendError> {
        let Ready {
            sender,
            recipients,
            prepared,
        } = self
            .prepare(
                user,
                display_name,
                to,
                subject,
                text,
                attachments,
                thread,
                now,
            )
            .await?;
        // The Sent copy first, so that the worker, which files a Sent copy
        // unless one with this Message-ID is there, never files a second;
        // a failure here leaves nothing queued.
        let (owner, copy) = (sender.clone(), prepared.message.clone());
        let sent_id = self
            .ctx
            .store
            .call(move |s| s.deliver_to_mailbox(&owner, &copy, Folder::Sent, now))
            .await?;
        let span = info_span!("queue", msg_id = %prepared.message_id);
        let queued = enqueue(
            &self.ctx,
            MessageDirection::Outbound,
            Some(sender.clone()),
            recipients,
            prepared.message,
            now,
            prepared.expect,
        )
        .instrument(span)
        .await?;
        info!(queue_id = %queued.id, msg_id = %prepared.message_id, "portal message queued");
        Ok(Sent {
            sent_id,
            queue_id: queued.id,
            message_id: prepared.message_id,
            recipients: queued
                .recipients
                .into_iter()
                .map(|(address, state)| SentRecipient { address, state })
                .collect(),
        })
    }

    /// Everything before the message is filed and queued: the account
    /// read afresh, the limits, every recipient judged, the message
    /// composed and checked as DATA on the submission listener is.
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &self,
        user: &PortalUser,
        display_name: Option<&str>,
        to: Vec<String>,
        subject: String,
        text: String,
        attachments: Vec<NewAttachment>,
        thread: Option<Thread>,
        now: OffsetDateTime,
    ) -> Result<Ready, PortalSendError> {
        // The account as the store has it now: one disabled since the
        // session began sends nothing.
        let address = user.address.clone();
        let user = match self.ctx.store.call(move |s| s.portal_user(&address)).await {
            Ok(fresh) if fresh.is_enabled() => fresh,
            Ok(_) => return Err(PortalSendError::AccountDisabled(user.address.clone())),
            Err(GatewayError::Store(e)) if e.is_not_found() => {
                return Err(PortalSendError::AccountDisabled(user.address.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let user = &user;
        let sender = &user.address;
        // The cheap checks first: a request over the limits is answered
        // before any discovery.
        let attachments = check_attachments(attachments, &self.settings.limits)?;
        header_text("subject", &subject)?;
        if let Some(name) = display_name {
            header_text("display name", name)?;
        }
        if to.is_empty() {
            return Err(ComposeError::NoRecipient.into());
        }
        // Every recipient is judged before anything is queued, and every
        // refusal is reported, as each RCPT would be answered.
        let mut accepted = Vec::with_capacity(to.len());
        let mut refused = Vec::new();
        for address in &to {
            match judge_recipient(&self.ctx, self.settings.seal_local, sender, address).await {
                Ok(rcpt) => accepted.push(rcpt),
                Err(refusal) => {
                    info!(rcpt = ?address, reason = %refusal, "portal recipient refused");
                    refused.push(refusal);
                }
            }
        }
        if !refused.is_empty() {
            return Err(PortalSendError::Recipients(refused));
        }
        let recipients = distinct(accepted);
        let message_id = new_message_id(sender.domain().as_str());
        // Composing (base64 of the attachments) and reading the message
        // back grow with its size: off the async threads.
        let (user, display_name, settings) = (
            user.clone(),
            display_name.map(str::to_string),
            self.settings.clone(),
        );
        let to = recipients.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let sender = &user.address;
            let message = compose(&Composition {
                from: sender,
                display_name: display_name.as_deref(),
                to: &to,
                subject: &subject,
                text: &text,
                attachments: &attachments,
                thread: thread.as_ref(),
                date: now,
                message_id: &message_id,
            })?;
            let bound = settings.limits.composed_size_bound();
            if message.len() as u64 > bound {
                return Err(ComposeError::MessageTooLarge {
                    size: message.len() as u64,
                    max: bound,
                }
                .into());
            }
            // The same checks as DATA on the submission listener.
            check_header_bytes(&message).map_err(SubmissionRefusal::from)?;
            let rcpt_to: Vec<String> = to.iter().map(ToString::to_string).collect();
            Ok::<_, PortalSendError>(prepare_submission(
                &message,
                &sender.to_string(),
                sender,
                &rcpt_to,
                &user,
                settings.request_final_delivery,
            )?)
        })
        .await
        .map_err(GatewayError::from)??;
        Ok(Ready {
            sender: sender.clone(),
            recipients,
            prepared,
        })
    }
}

/// A message composed and checked, not yet filed or queued.
struct Ready {
    /// The sending user's address (the envelope sender).
    sender: DirectAddress,
    /// The distinct recipients, each judged.
    recipients: Vec<DirectAddress>,
    /// The message with the fields submission adds, and what tracking waits for.
    prepared: Prepared,
}
