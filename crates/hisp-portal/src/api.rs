//! The routes of `/api/v1` (issue 11, "The API"): every response is JSON,
//! every error `{"error","message"}`, every time RFC 3339 in UTC. Each
//! handler reads the mailbox of the session's address only, inside the
//! retention view at the clock's now, so another user's message id is 404
//! like one that does not exist.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hisp_store::{
    DirectAddress, MailboxEntry, MailboxEntryId, MailboxView, NotifySettings, Store, TrackingState,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tracing::info;

use crate::error::ApiError;
use crate::mailbox::{self, Listed};
use crate::message;
use crate::send;
use crate::session::{self, Session};
use crate::Portal;

/// The portal's routes on `portal`: the API under `/api/v1` and the web
/// pages ([`crate::pages`]), on the same sessions; an unknown path is a
/// JSON 404 under `/api/` and an HTML one elsewhere.
pub fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .merge(routes(portal.clone()))
        .merge(crate::pages::routes(portal))
        .fallback(no_such_route)
}

/// The API's routes, their errors in its JSON shape.
fn routes(portal: Arc<Portal>) -> Router {
    let limits = portal
        .sender
        .as_ref()
        .map(|s| s.settings().limits)
        .unwrap_or_default();
    Router::new()
        .route("/api/v1/session", post(login).delete(logout))
        // axum's default body limit (2 MiB) would refuse a send well
        // inside the attachment allowance: the two send routes take its
        // base64 and the JSON around it; every other route, the login
        // among them, keeps the default.
        .route(
            "/api/v1/messages",
            post(send::send).layer(DefaultBodyLimit::max(send::body_limit(&limits))),
        )
        .route(
            "/api/v1/messages/{id}/reply",
            post(send::reply).layer(DefaultBodyLimit::max(send::body_limit(&limits))),
        )
        .route("/api/v1/folders", get(folders))
        .route("/api/v1/folders/{folder}/messages", get(folder_messages))
        .route(
            "/api/v1/messages/{id}",
            get(read_message).delete(delete_message),
        )
        .route("/api/v1/messages/{id}/attachments/{index}", get(attachment))
        .route("/api/v1/messages/{id}/disregard", post(disregard))
        .route("/api/v1/messages/{id}/restore", post(restore))
        .route("/api/v1/messages/{id}/status", get(status))
        .route("/api/v1/recipients", get(recipients))
        .route("/api/v1/settings", get(settings).put(put_settings))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(finish))
        .with_state(portal)
}

/// Applied to every response: mail is private, so nothing is cached
/// (`Cache-Control: no-store`); and an error that axum itself produced
/// (a body it could not read, a path it could not decode) is given the
/// API's JSON error shape like every other error.
async fn finish(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (parts, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let code = match status {
            StatusCode::BAD_REQUEST => "bad-request",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            _ => "error",
        };
        let message = match String::from_utf8_lossy(&text).trim() {
            "" => status.canonical_reason().unwrap_or("error").to_string(),
            text => text.to_string(),
        };
        let mut fixed = ApiError::new(status, code, message).into_response();
        for name in [header::ALLOW, header::RETRY_AFTER] {
            if let Some(v) = parts.headers.get(&name) {
                fixed.headers_mut().insert(name, v.clone());
            }
        }
        fixed
    } else {
        response
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The logged-in user of a request: a live session named by the cookie,
/// and, for every method but GET and HEAD, the session's CSRF token in
/// `X-CSRF-Token` (403 without it).
pub struct User {
    /// The session's address: the one mailbox this request may see.
    pub address: DirectAddress,
    token: String,
}

impl FromRequestParts<Arc<Portal>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Arc<Portal>,
    ) -> Result<Self, Self::Rejection> {
        let (
            token,
            Session {
                address,
                csrf_token,
                ..
            },
        ) = session_of(parts, portal).ok_or_else(ApiError::unauthenticated)?;
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|s| session::tokens_equal(s, &csrf_token)) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a state-changing request must carry the session's X-CSRF-Token header",
                ));
            }
        }
        Ok(User { address, token })
    }
}

/// The live session named by a request's `hisp_session` cookie, with its
/// cookie token.
pub(crate) fn session_of(parts: &Parts, portal: &Portal) -> Option<(String, Session)> {
    let token = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session::cookie_value(v, session::COOKIE))?
        .to_string();
    let session = portal.sessions.get(&token, portal.clock.now())?;
    Some((token, session))
}

/// Runs `f` on the store off the async threads (store calls block, and a
/// login hashes a password).
pub(crate) async fn blocking<T: Send + 'static>(
    portal: &Arc<Portal>,
    f: impl FnOnce(&dyn Store, MailboxView) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = portal.store.clone();
    let view = portal.view();
    tokio::task::spawn_blocking(move || f(store.as_ref(), view))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub(crate) fn parse_id(text: &str) -> Result<MailboxEntryId, ApiError> {
    text.parse::<i64>()
        .map(MailboxEntryId)
        .map_err(|_| ApiError::not_found(format!("no message {text}")))
}

pub(crate) fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    address: String,
    password: String,
}

/// `POST /api/v1/session`.
async fn login(State(portal): State<Arc<Portal>>, body: Bytes) -> Result<Response, ApiError> {
    let Login { address, password } = parse_body(&body)?;
    let (token, session) = mailbox::log_in(&portal, &address, password).await?;
    let body = json!({
        "address": session.address.to_string(),
        "csrf_token": session.csrf_token,
        "expires_at": rfc3339(session.expires_at),
    });
    with_cookie(
        Json(body).into_response(),
        &session::set_cookie(&token, portal.secure_cookies),
    )
}

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(cookie).map_err(|e| ApiError::internal(&e))?;
    response.headers_mut().append(header::SET_COOKIE, value);
    Ok(response)
}

/// `DELETE /api/v1/session`.
async fn logout(State(portal): State<Arc<Portal>>, user: User) -> Result<Response, ApiError> {
    mailbox::log_out(&portal, &user.token, &user.address);
    let body = json!({ "address": user.address.to_string(), "logged_out": true });
    with_cookie(
        Json(body).into_response(),
        &session::clear_cookie(portal.secure_cookies),
    )
}

/// `GET /api/v1/folders`.
async fn folders(State(portal): State<Arc<Portal>>, user: User) -> Result<Json<Value>, ApiError> {
    let counts = mailbox::folder_counts(&portal, &user.address).await?;
    Ok(Json(Value::Array(
        counts
            .into_iter()
            .map(|c| json!({ "name": c.folder.as_str(), "total": c.total, "unread": c.unread }))
            .collect(),
    )))
}

/// `GET /api/v1/folders/{folder}/messages`, newest first.
async fn folder_messages(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(folder): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let folder = mailbox::folder_named(&folder)?;
    let items = mailbox::folder(&portal, &user.address, folder).await?;
    Ok(Json(Value::Array(
        items
            .into_iter()
            .map(|m| {
                json!({
                    "id": m.entry.id.0,
                    "folder": m.entry.folder.as_str(),
                    "from": m.parsed.from,
                    "from_name": m.parsed.from_name,
                    "to": m.parsed.to,
                    "subject": m.parsed.subject,
                    "date": rfc3339(m.date()),
                    "received_at": rfc3339(m.entry.received_at),
                    "unread": m.entry.unread,
                    "has_attachments": !m.parsed.attachments.is_empty(),
                })
            })
            .collect(),
    )))
}

/// `GET /api/v1/messages/{id}`: the message, marked read.
async fn read_message(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let m = mailbox::open(&portal, &user.address, id).await?;
    let attachments: Vec<Value> = m
        .parsed
        .attachments
        .iter()
        .map(|a| {
            json!({
                "index": a.index,
                "name": a.name,
                "content_type": a.content_type,
                "size": a.data.len(),
            })
        })
        .collect();
    let date = rfc3339(m.date());
    let Listed { entry, parsed } = m;
    Ok(Json(json!({
        "id": entry.id.0,
        "folder": entry.folder.as_str(),
        "message_id": entry.message_id.as_ref().map(|m| m.to_string()),
        "from": parsed.from,
        "from_name": parsed.from_name,
        "to": parsed.to,
        "subject": parsed.subject,
        "date": date,
        "received_at": rfc3339(entry.received_at),
        "text": parsed.text,
        "attachments": attachments,
        "in_reply_to": parsed.in_reply_to,
    })))
}

/// `GET /api/v1/messages/{id}/attachments/{index}`: the bytes.
async fn attachment(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::not_found(format!("no attachment {index}")))?;
    let a = mailbox::attachment(&portal, &user.address, id, index).await?;
    download(a)
}

/// An attachment as a download: its bytes with its content type,
/// `Content-Disposition: attachment` with the sanitised name, and
/// `nosniff` so a browser does not guess another type.
pub(crate) fn download(a: message::Attachment) -> Result<Response, ApiError> {
    let disposition = HeaderValue::from_str(&message::content_disposition(&a.name))
        .map_err(|e| ApiError::internal(&e))?;
    let content_type =
        HeaderValue::from_str(&a.content_type).map_err(|e| ApiError::internal(&e))?;
    let mut response = Response::new(Body::from(a.data));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

fn moved(entry: &MailboxEntry) -> Json<Value> {
    Json(json!({ "id": entry.id.0, "folder": entry.folder.as_str() }))
}

/// `POST /api/v1/messages/{id}/disregard`.
async fn disregard(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    Ok(moved(
        &mailbox::disregard(&portal, &user.address, id).await?,
    ))
}

/// `POST /api/v1/messages/{id}/restore`.
async fn restore(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    Ok(moved(&mailbox::restore(&portal, &user.address, id).await?))
}

/// `DELETE /api/v1/messages/{id}`: always 405, for audit integrity
/// nothing is deleted; the attempt is audited (`delete-refused`).
async fn delete_message(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let who = user.address.clone();
    blocking(&portal, move |store, view| {
        Ok(store.refuse_delete(&who, id, &view)?)
    })
    .await?;
    info!(address = %user.address, entry = id.0, "portal delete refused");
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "delete-not-allowed",
        "messages are never deleted: disregard it instead (POST .../disregard)",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    Ok(response)
}

/// `GET /api/v1/messages/{id}/status`: where each recipient of a message
/// the user sent is, from the tracking the store keeps.
async fn status(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let status = mailbox::status(&portal, &user.address, id).await?;
    let recipients: Vec<Value> = status
        .recipients
        .iter()
        .map(|r| {
            let steps: Vec<Value> = TrackingState::ALL
                .iter()
                .filter_map(|s| {
                    r.at(*s)
                        .map(|at| json!({ "state": s.as_str(), "at": rfc3339(at) }))
                })
                .collect();
            json!({
                "address": r.address.to_string(),
                "state": r.state.as_str(),
                "steps": steps,
                "reason": r.reason,
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id.0,
        "message_id": status.message_id.to_string(),
        "recipients": recipients,
    })))
}

/// `GET /api/v1/recipients`: who wrote to the user, newest first.
async fn recipients(
    State(portal): State<Arc<Portal>>,
    user: User,
) -> Result<Json<Value>, ApiError> {
    let list = mailbox::recipients(&portal, &user.address).await?;
    Ok(Json(Value::Array(
        list.into_iter()
            .map(|c| {
                json!({
                    "address": c.address.to_string(),
                    "name": c.name,
                    "last_at": rfc3339(c.last_at),
                })
            })
            .collect(),
    )))
}

fn settings_json(s: &NotifySettings) -> Json<Value> {
    Json(json!({
        "notify": s.notify,
        "email": s.email.as_ref().map(|e| e.to_string()),
    }))
}

/// `GET /api/v1/settings`.
async fn settings(State(portal): State<Arc<Portal>>, user: User) -> Result<Json<Value>, ApiError> {
    Ok(settings_json(
        &mailbox::settings(&portal, &user.address).await?,
    ))
}

/// A field that may be absent (keep), null (clear) or a value (set).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    #[serde(default)]
    notify: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
}

/// `PUT /api/v1/settings`: `notify` and `email`; a key left out keeps its
/// value, `"email": null` removes the address.
async fn put_settings(
    State(portal): State<Arc<Portal>>,
    user: User,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let change: SettingsChange = parse_body(&body)?;
    let saved = mailbox::change_settings(
        &portal,
        &user.address,
        mailbox::SettingsChange {
            notify: change.notify,
            email: change.email,
        },
    )
    .await?;
    Ok(settings_json(&saved))
}

/// An unknown path: under `/api/` the API's JSON 404 (not cached, like
/// every API answer), elsewhere the pages' HTML one.
async fn no_such_route(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let mut response = ApiError::not_found("no such endpoint").into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    } else {
        crate::pages::not_found().await
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not take that method",
    )
}
