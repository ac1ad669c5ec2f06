//! Sending from the portal (issue 11, items 1, 2 and 5): `POST
//! /api/v1/messages` and `POST /api/v1/messages/{id}/reply` hand the
//! request to the gateway's [`PortalSender`], which composes the message and
//! takes it down the path of SMTP submission (discovery, trust, the
//! sender's own address, the durable queue). Nothing is queued when any
//! recipient is refused.
//!
//! The answer's `id` is the message's id in the user's Sent folder (the
//! copy is filed before the message is queued), so
//! `GET /api/v1/messages/{id}` and `.../status` work with it at once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use hisp_gateway::compose::{AttachmentLimits, Draft, NewAttachment};
use hisp_gateway::portal_submit::Outcome;
use hisp_gateway::{PortalSendError, PortalSender, ReplyDraft, Sent};
use hisp_store::{DirectAddress, MailboxEntryId};
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use crate::api::{parse_body, parse_id, User};
use crate::error::ApiError;
use crate::Portal;

/// What the request body of a send may hold at most: the base64 of the
/// whole attachment allowance (4 characters per 3 bytes) plus room for the
/// JSON around it, the text and the file names.
pub fn body_limit(limits: &AttachmentLimits) -> usize {
    const ROOM: u64 = 1024 * 1024;
    let base64 = limits.max_total_bytes.div_ceil(3).saturating_mul(4);
    usize::try_from(base64.saturating_add(ROOM)).unwrap_or(usize::MAX)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentIn {
    name: String,
    content_type: String,
    data_base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    to: Vec<String>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReply {
    #[serde(default)]
    text: String,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
}

fn decode(attachments: Vec<AttachmentIn>) -> Result<Vec<NewAttachment>, ApiError> {
    attachments
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            // Line breaks are common in base64 written by other tools.
            let text: String = a
                .data_base64
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let data = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bad-base64",
                        format!("attachment {i}: data_base64 is not base64: {e}"),
                    )
                })?;
            Ok(NewAttachment {
                name: a.name,
                content_type: a.content_type,
                data,
            })
        })
        .collect()
}

pub(crate) fn sender(portal: &Portal) -> Result<&PortalSender, ApiError> {
    portal.sender.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sending-unavailable",
            "this server does not send from the portal",
        )
    })
}

/// The 202 answer: `id` (the Sent folder's), `message_id` and each
/// recipient's state.
fn accepted(sent: &Sent) -> Response {
    let recipients: Vec<_> = sent
        .recipients
        .iter()
        .map(|r| json!({ "address": r.address.to_string(), "state": r.state.as_str() }))
        .collect();
    let body = json!({
        "id": sent.sent_id.0,
        "message_id": format!("<{}>", sent.message_id),
        "recipients": recipients,
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// The status a refusal is answered with, by the API and the pages alike:
/// that of its [`Outcome`].
pub(crate) fn status_of(e: &PortalSendError) -> StatusCode {
    match e.outcome() {
        Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Outcome::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::NotFound => StatusCode::NOT_FOUND,
        Outcome::Forbidden => StatusCode::FORBIDDEN,
        Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A refusal as the API answers it: the status of its
/// [`Outcome`], its code, and for refused recipients each address with the
/// reply the SMTP listener would have given its RCPT (`refused`).
fn refusal(e: PortalSendError) -> Response {
    let status = status_of(&e);
    if let PortalSendError::Local(cause) = &e {
        return ApiError {
            status,
            ..ApiError::internal(cause)
        }
        .into_response();
    }
    let code = e.code();
    let mut body = json!({ "error": code, "message": e.to_string() });
    if let PortalSendError::Recipients(refused) = &e {
        // Each reply names its address, as the listener's RCPT reply does.
        let message: Vec<String> = refused.iter().map(|r| r.reply().to_string()).collect();
        body["message"] = json!(message.join("; "));
        body["refused"] = refused
            .iter()
            .map(|r| {
                json!({
                    "address": r.address(),
                    "error": r.code(),
                    "reply": r.reply().to_string(),
                })
            })
            .collect();
    }
    (status, Json(body)).into_response()
}

/// What a user sends: a new message, or a reply to a message of their
/// Inbox.
pub(crate) enum Submission {
    /// A new message.
    New(Draft),
    /// A reply to the message with this id.
    Reply(MailboxEntryId, ReplyDraft),
}

/// Sends `what` from `owner` through the [`PortalSender`]: `Ok(Ok(sent))`
/// when it is queued, `Ok(Err(refusal))` when the sender refused it
/// (nothing queued), `Err` when this portal cannot send at all (503
/// `sending-unavailable`) or the account cannot be read.
pub(crate) async fn submit(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    what: Submission,
) -> Result<Result<Sent, PortalSendError>, ApiError> {
    let sender = sender(portal)?;
    let address = owner.clone();
    let account =
        crate::api::blocking(portal, move |store, _| Ok(store.portal_user(&address)?)).await?;
    let now = portal.clock.now();
    Ok(match what {
        Submission::New(draft) => match sender.send(&account, None, draft, now).await {
            Ok(sent) => {
                info!(address = %owner, msg_id = %sent.message_id, id = sent.sent_id.0, "portal message sent");
                Ok(sent)
            }
            Err(e) => {
                info!(address = %owner, error = %e, "portal message refused");
                Err(e)
            }
        },
        Submission::Reply(id, draft) => match sender
            .reply(&account, None, id, portal.view(), draft, now)
            .await
        {
            Ok(sent) => {
                info!(address = %owner, msg_id = %sent.message_id, id = sent.sent_id.0, original = id.0, "portal reply sent");
                Ok(sent)
            }
            Err(e) => {
                info!(address = %owner, original = id.0, error = %e, "portal reply refused");
                Err(e)
            }
        },
    })
}

/// `POST /api/v1/messages`.
pub(crate) async fn send(
    State(portal): State<Arc<Portal>>,
    user: User,
    body: Bytes,
) -> Result<Response, ApiError> {
    sender(&portal)?;
    let m: NewMessage = parse_body(&body)?;
    let draft = Draft {
        to: m.to,
        subject: m.subject,
        text: m.text,
        attachments: decode(m.attachments)?,
    };
    Ok(
        match submit(&portal, &user.address, Submission::New(draft)).await? {
            Ok(sent) => accepted(&sent),
            Err(e) => refusal(e),
        },
    )
}

/// `POST /api/v1/messages/{id}/reply`.
pub(crate) async fn reply(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    sender(&portal)?;
    let id = parse_id(&id)?;
    let r: NewReply = parse_body(&body)?;
    let draft = ReplyDraft {
        text: r.text,
        attachments: decode(r.attachments)?,
    };
    Ok(
        match submit(&portal, &user.address, Submission::Reply(id, draft)).await? {
            Ok(sent) => accepted(&sent),
            Err(e) => refusal(e),
        },
    )
}
