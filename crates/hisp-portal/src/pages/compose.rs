//! Writing: a new message to one of the providers who wrote to the user
//! (the list `GET /api/v1/recipients` gives), and a reply to a message of
//! the Inbox. The form is `multipart/form-data` with the files as they
//! are; it goes to the API's sending path ([`crate::send::submit`]), so a
//! refusal is the one the API gives (422 with the SMTP listener's reason,
//! 413 over the limits), shown next to the field it is about, with the
//! typed subject and text kept.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hisp_gateway::compose::{reply_subject, AttachmentLimits, ComposeError, Draft, NewAttachment};
use hisp_gateway::{PortalSendError, ReplyDraft};
use hisp_store::{Folder, MailboxEntryId};
use serde::Deserialize;

use super::render::{chrome, page, Chrome, PageError};
use super::{see_other, words, PageUser, CSRF_FIELD};
use crate::api::parse_id;
use crate::error::ApiError;
use crate::mailbox;
use crate::send::{self, Submission};
use crate::Portal;

/// A provider the user may write to, as a checkbox.
struct Provider {
    address: String,
    label: String,
    checked: bool,
}

/// What is being answered.
struct Replying {
    id: i64,
    to: String,
    subject: String,
    original: String,
}

/// The reasons shown next to each field.
#[derive(Default)]
struct Errors {
    to: Option<String>,
    subject: Option<String>,
    attachments: Option<String>,
    form: Option<String>,
}

impl Errors {
    fn any(&self) -> bool {
        self.to.is_some()
            || self.subject.is_some()
            || self.attachments.is_some()
            || self.form.is_some()
    }
}

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage {
    title: &'static str,
    chrome: Option<Chrome>,
    action: String,
    csrf: String,
    replying: Option<Replying>,
    providers: Vec<Provider>,
    subject: String,
    text: String,
    errors: Errors,
    max_files: usize,
    max_size: String,
}

fn limits(portal: &Portal) -> AttachmentLimits {
    portal
        .sender
        .as_ref()
        .map(|s| s.settings().limits)
        .unwrap_or_default()
}

/// What the form held.
#[derive(Default)]
struct Posted {
    csrf: Option<String>,
    to: Vec<String>,
    subject: String,
    text: String,
    attachments: Vec<NewAttachment>,
    /// The body was over the upload limit: the files were not all read.
    too_large: bool,
}

/// Reads the form's fields in their order (the token, the recipients, the
/// subject and the text come before the files).
async fn read_form(mut form: Multipart) -> Result<Posted, PageError> {
    let mut posted = Posted::default();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                posted.too_large = true;
                break;
            }
            Err(e) => return Err(ApiError::new(e.status(), "bad-form", e.body_text()).into()),
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let bytes = match field.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                posted.too_large = true;
                break;
            }
            Err(e) => return Err(ApiError::new(e.status(), "bad-form", e.body_text()).into()),
        };
        let text = || String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        match name.as_str() {
            CSRF_FIELD => posted.csrf = Some(text()),
            "to" => posted.to.push(text().trim().to_string()),
            "subject" => posted.subject = text(),
            "text" => posted.text = text(),
            "attachments" => {
                let file_name = file_name.unwrap_or_default();
                // An empty file input still sends a part with no name.
                if !(file_name.is_empty() && bytes.is_empty()) {
                    posted.attachments.push(NewAttachment {
                        name: file_name,
                        content_type,
                        data: bytes.to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(posted)
}

/// Where a refusal is shown, and its reason in words.
fn place(e: &PortalSendError, errors: &mut Errors) {
    match e {
        PortalSendError::Recipients(refused) => {
            let reasons: Vec<String> = refused.iter().map(ToString::to_string).collect();
            errors.to = Some(reasons.join(" "));
        }
        PortalSendError::Compose(ComposeError::NoRecipient) => {
            errors.to = Some("Choose at least one provider to write to.".into());
        }
        PortalSendError::Compose(
            c @ (ComposeError::TooManyFiles { .. }
            | ComposeError::TooLarge { .. }
            | ComposeError::UnsupportedType { .. }
            | ComposeError::TypeMismatch { .. }),
        ) => errors.attachments = Some(c.to_string()),
        PortalSendError::Compose(c @ ComposeError::ControlCharacter { field: "subject" }) => {
            errors.subject = Some(c.to_string());
        }
        other => errors.form = Some(other.to_string()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ComposeQuery {
    #[serde(default)]
    to: Option<String>,
}

/// The providers as checkboxes, `checked` ticked (or the only one).
async fn providers(
    portal: &Arc<Portal>,
    user: &PageUser,
    checked: &[String],
) -> Result<Vec<Provider>, PageError> {
    let list = mailbox::recipients(portal, &user.address).await?;
    let only = list.len() == 1;
    Ok(list
        .into_iter()
        .map(|c| {
            let address = c.address.to_string();
            let label = match c.name.as_deref().map(str::trim) {
                Some(name) if !name.is_empty() => format!("{name} <{address}>"),
                _ => address.clone(),
            };
            Provider {
                checked: only || checked.iter().any(|t| t.eq_ignore_ascii_case(&address)),
                address,
                label,
            }
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn compose_page(
    portal: &Arc<Portal>,
    user: &PageUser,
    status: StatusCode,
    replying: Option<Replying>,
    checked: &[String],
    subject: String,
    text: String,
    errors: Errors,
) -> Result<Response, PageError> {
    let limits = limits(portal);
    let (action, providers) = match &replying {
        Some(r) => (format!("/messages/{}/reply", r.id), Vec::new()),
        None => (
            "/compose".to_string(),
            providers(portal, user, checked).await?,
        ),
    };
    Ok(page(
        status,
        &ComposePage {
            title: if replying.is_some() {
                "Reply"
            } else {
                "Write a message"
            },
            chrome: Some(
                chrome(
                    portal,
                    user,
                    if replying.is_some() { "" } else { "compose" },
                )
                .await?,
            ),
            action,
            csrf: user.csrf.clone(),
            replying,
            providers,
            subject,
            text,
            errors,
            max_files: limits.max_files,
            max_size: words::size(limits.max_total_bytes),
        },
    ))
}

/// `GET /compose`: the form; `?to=` ticks a provider.
pub(crate) async fn page_get(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Query(q): Query<ComposeQuery>,
) -> Result<Response, PageError> {
    let checked: Vec<String> = q.to.into_iter().collect();
    compose_page(
        &portal,
        &user,
        StatusCode::OK,
        None,
        &checked,
        String::new(),
        String::new(),
        Errors::default(),
    )
    .await
}

/// The answer to a posted form: 303 to the sent message, or the form
/// again with the refusal.
async fn sent_or_refused(
    portal: &Arc<Portal>,
    user: &PageUser,
    posted: Posted,
    replying: Option<Replying>,
    what: impl FnOnce(Posted) -> Submission,
) -> Result<Response, PageError> {
    user.check_csrf(posted.csrf.as_deref())?;
    let (subject, text, to) = (
        posted.subject.clone(),
        posted.text.clone(),
        posted.to.clone(),
    );
    let mut errors = Errors::default();
    let status = if posted.too_large {
        let limits = limits(portal);
        errors.attachments = Some(format!(
            "The files are too large: at most {} may be sent with one message, in all.",
            words::size(limits.max_total_bytes)
        ));
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        match send::submit(portal, &user.address, what(posted)).await? {
            Ok(sent) => return Ok(see_other(&format!("/messages/{}?sent=1", sent.sent_id.0))),
            Err(e) => {
                place(&e, &mut errors);
                send::status_of(&e)
            }
        }
    };
    debug_assert!(errors.any());
    compose_page(portal, user, status, replying, &to, subject, text, errors).await
}

/// `POST /compose`.
pub(crate) async fn send(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    form: Multipart,
) -> Result<Response, PageError> {
    send::sender(&portal)?;
    let posted = read_form(form).await?;
    sent_or_refused(&portal, &user, posted, None, |p| {
        Submission::New(Draft {
            to: p.to,
            subject: p.subject,
            text: p.text,
            attachments: p.attachments,
        })
    })
    .await
}

/// What the reply form shows of the message answered; only a message of
/// the Inbox can be answered.
async fn replying(
    portal: &Arc<Portal>,
    user: &PageUser,
    id: MailboxEntryId,
) -> Result<Replying, PageError> {
    let m = mailbox::read(portal, &user.address, id).await?;
    if m.entry.folder != Folder::Inbox {
        let e = PortalSendError::NotReplyable(m.entry.folder);
        return Err(ApiError::new(send::status_of(&e), e.code(), e.to_string()).into());
    }
    Ok(Replying {
        id: id.0,
        to: m.parsed.from.clone().unwrap_or_default(),
        subject: reply_subject(m.parsed.subject.as_deref().unwrap_or("")),
        original: m.parsed.text.trim_end().to_string(),
    })
}

/// `GET /messages/{id}/reply`: the reply form.
pub(crate) async fn reply_page(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let replying = replying(&portal, &user, id).await?;
    compose_page(
        &portal,
        &user,
        StatusCode::OK,
        Some(replying),
        &[],
        String::new(),
        String::new(),
        Errors::default(),
    )
    .await
}

/// `POST /messages/{id}/reply`.
pub(crate) async fn reply(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(id): Path<String>,
    form: Multipart,
) -> Result<Response, PageError> {
    send::sender(&portal)?;
    let id = parse_id(&id)?;
    let posted = read_form(form).await?;
    user.check_csrf(posted.csrf.as_deref())?;
    let replying = replying(&portal, &user, id).await?;
    sent_or_refused(&portal, &user, posted, Some(replying), move |p| {
        Submission::Reply(
            id,
            ReplyDraft {
                text: p.text,
                attachments: p.attachments,
            },
        )
    })
    .await
}
