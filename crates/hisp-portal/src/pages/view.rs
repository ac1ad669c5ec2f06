//! Reading: a folder's messages, one message (marked read as the API's
//! `GET /api/v1/messages/{id}` marks it), its attachments, Disregard and
//! Restore (nothing is deleted: there is no delete button), and the
//! Direct Status of a message the user sent.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hisp_store::{DirectAddress, Folder, TrackingState};
use serde::Deserialize;

use super::render::{chrome, page, Chrome, PageError};
use super::{see_other, words, CsrfOnly, PageUser};
use crate::api::parse_id;
use crate::error::ApiError;
use crate::mailbox::{self, Listed};
use crate::Portal;

/// One row of a folder's list.
struct Row {
    id: i64,
    who: String,
    subject: String,
    date: String,
    iso: String,
    unread: bool,
    attachments: bool,
}

#[derive(Template)]
#[template(path = "folder.html")]
struct FolderPage {
    title: &'static str,
    chrome: Option<Chrome>,
    heading: &'static str,
    who_heading: &'static str,
    rows: Vec<Row>,
    retention_days: Option<u32>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// "Name <address>" or the address alone.
fn person(name: Option<&str>, address: Option<&str>) -> String {
    match (name.map(str::trim).filter(|n| !n.is_empty()), address) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (Some(name), None) => name.to_string(),
        (None, Some(address)) => address.to_string(),
        (None, None) => "(unknown sender)".to_string(),
    }
}

fn subject_of(m: &Listed) -> String {
    match m.parsed.subject.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "(no subject)".to_string(),
    }
}

/// Whether the owner wrote the message (then its list shows recipients).
fn sent_by(m: &Listed, owner: &DirectAddress) -> bool {
    m.entry.folder == Folder::Sent
        || m.parsed
            .from
            .as_deref()
            .and_then(|f| DirectAddress::parse(&f.to_ascii_lowercase()).ok())
            .is_some_and(|f| &f == owner)
}

/// `GET /folders/{folder}`: the messages, newest first; unread ones bold.
pub(crate) async fn folder(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(name): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let folder = mailbox::folder_named(&name)?;
    let items = mailbox::folder(&portal, &user.address, folder).await?;
    let rows = items
        .iter()
        .map(|m| {
            let who = if sent_by(m, &user.address) {
                let to = m.parsed.to.join(", ");
                if folder == Folder::Sent {
                    to
                } else {
                    format!("To: {to}")
                }
            } else {
                person(m.parsed.from_name.as_deref(), m.parsed.from.as_deref())
            };
            Row {
                id: m.entry.id.0,
                who,
                subject: subject_of(m),
                date: words::date(m.date()),
                iso: words::machine(m.date()),
                unread: m.entry.unread,
                attachments: !m.parsed.attachments.is_empty(),
            }
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("disregarded") => Some("The message was moved to Disregarded."),
        Some("restored") => Some("The message was restored."),
        _ => None,
    };
    Ok(page(
        StatusCode::OK,
        &FolderPage {
            title: words::folder_name(folder),
            chrome: Some(chrome(&portal, &user, folder.as_str()).await?),
            heading: words::folder_name(folder),
            who_heading: match folder {
                Folder::Inbox => "From",
                Folder::Sent => "To",
                Folder::Disregarded => "From or to",
            },
            rows,
            retention_days: (folder == Folder::Inbox).then_some(portal.retention_days),
            notice,
        },
    ))
}

/// An attachment as the message page lists it.
struct AttachmentRow {
    index: usize,
    name: String,
    content_type: String,
    size: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    title: String,
    chrome: Option<Chrome>,
    csrf: String,
    id: i64,
    subject: String,
    from: String,
    to: String,
    date: String,
    iso: String,
    folder_name: &'static str,
    text: String,
    attachments: Vec<AttachmentRow>,
    can_reply: bool,
    disregarded: bool,
    has_status: bool,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct MessageQuery {
    #[serde(default)]
    sent: Option<String>,
}

/// `GET /messages/{id}`: the message, marked read.
pub(crate) async fn message(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let m = mailbox::open(&portal, &user.address, id).await?;
    let has_status =
        sent_by(&m, &user.address) && mailbox::has_status(&portal, &user.address, id).await?;
    let subject = subject_of(&m);
    let attachments = m
        .parsed
        .attachments
        .iter()
        .map(|a| AttachmentRow {
            index: a.index,
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: words::size(a.data.len() as u64),
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &MessagePage {
            title: subject.clone(),
            chrome: Some(chrome(&portal, &user, m.entry.folder.as_str()).await?),
            csrf: user.csrf.clone(),
            id: id.0,
            subject,
            from: person(m.parsed.from_name.as_deref(), m.parsed.from.as_deref()),
            to: m.parsed.to.join(", "),
            date: words::date(m.date()),
            iso: words::machine(m.date()),
            folder_name: words::folder_name(m.entry.folder),
            text: m.parsed.text.trim_end().to_string(),
            attachments,
            can_reply: m.entry.folder == Folder::Inbox,
            disregarded: m.entry.folder == Folder::Disregarded,
            has_status,
            notice: q.sent.map(|_| "Your message was sent."),
        },
    ))
}

/// `GET /messages/{id}/attachments/{index}`: the file, as a download.
pub(crate) async fn attachment(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::not_found(format!("no attachment {index}")))?;
    let a = mailbox::attachment(&portal, &user.address, id, index).await?;
    Ok(crate::api::download(a)?)
}

/// `POST /messages/{id}/disregard`: 303 to Disregarded.
pub(crate) async fn disregard(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    user.check_csrf(f.csrf_token.as_deref())?;
    let id = parse_id(&id)?;
    let entry = mailbox::disregard(&portal, &user.address, id).await?;
    Ok(see_other(&format!(
        "/folders/{}?done=disregarded",
        entry.folder.as_str()
    )))
}

/// `POST /messages/{id}/restore`: 303 to the folder it is back in.
pub(crate) async fn restore(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    user.check_csrf(f.csrf_token.as_deref())?;
    let id = parse_id(&id)?;
    let entry = mailbox::restore(&portal, &user.address, id).await?;
    Ok(see_other(&format!(
        "/folders/{}?done=restored",
        entry.folder.as_str()
    )))
}

/// One step of a recipient's tracking.
struct StepRow {
    words: &'static str,
    date: String,
    iso: String,
}

/// One recipient on the Direct Status page.
struct RecipientRow {
    address: String,
    words: String,
    class: &'static str,
    steps: Vec<StepRow>,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    title: &'static str,
    chrome: Option<Chrome>,
    id: i64,
    subject: String,
    date: String,
    recipients: Vec<RecipientRow>,
}

/// `GET /messages/{id}/status`: each recipient's state in words and the
/// time of each step.
pub(crate) async fn status(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let status = mailbox::status(&portal, &user.address, id).await?;
    let entry = mailbox::entry(&portal, &user.address, id).await?;
    let recipients = status
        .recipients
        .iter()
        .map(|r| RecipientRow {
            address: r.address.to_string(),
            words: words::state(r),
            class: words::state_class(r.state),
            steps: TrackingState::ALL
                .iter()
                .filter_map(|s| {
                    r.at(*s).map(|at| StepRow {
                        words: words::step(*s),
                        date: words::date_seconds(at),
                        iso: words::machine(at),
                    })
                })
                .collect(),
        })
        .collect();
    let subject = match entry.subject.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "(no subject)".to_string(),
    };
    Ok(page(
        StatusCode::OK,
        &StatusPage {
            title: "Direct Status",
            chrome: Some(chrome(&portal, &user, "sent").await?),
            id: id.0,
            subject,
            date: words::date(entry.date.unwrap_or(entry.received_at)),
            recipients,
        },
    ))
}
