//! The routes of `/api/v1` (issue 11, "The API"): every response is JSON,
//! every error `{"error","message"}`, every time RFC 3339 in UTC. Each
//! handler reads the mailbox of the session's address only, inside the
//! retention view at the clock's now, so another user's message id is 404
//! like one that does not exist.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hisp_store::{
    DirectAddress, EmailAddress, Folder, MailboxEntry, MailboxEntryId, MailboxView, NotifySettings,
    Store, StoreError, TrackingState,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tracing::info;

use crate::error::ApiError;
use crate::message::{self, Parsed};
use crate::send;
use crate::session::{self, Session};
use crate::throttle::Verdict;
use crate::Portal;

/// The API's routes on `portal`.
pub fn router(portal: Arc<Portal>) -> Router {
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
        .fallback(no_such_route)
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
        let token = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| session::cookie_value(v, session::COOKIE))
            .ok_or_else(ApiError::unauthenticated)?
            .to_string();
        let Session {
            address,
            csrf_token,
            ..
        } = portal
            .sessions
            .get(&token, portal.clock.now())
            .ok_or_else(ApiError::unauthenticated)?;
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

fn rfc3339(t: OffsetDateTime) -> String {
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

/// The date of a message: its Date field, else when it was stored.
fn date_of(entry: &MailboxEntry, parsed: &Parsed) -> String {
    rfc3339(parsed.date.or(entry.date).unwrap_or(entry.received_at))
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
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad-credentials",
            "wrong address or password",
        )
    };
    // One spelling per account, so the failures of `Pat@` and `pat@` are
    // counted together by the throttle.
    let Ok(address) = DirectAddress::parse(&address.to_ascii_lowercase()) else {
        return Err(bad());
    };
    let now = portal.clock.now();
    let throttle = portal.throttle;
    let tried = address.clone();
    let outcome = blocking(&portal, move |store, _| {
        if let Verdict::Throttled { retry_after } = throttle.check(store, &tried, now)? {
            return Ok(Err(retry_after));
        }
        Ok(Ok(store.verify_portal_login(&tried, &password)))
    })
    .await?;
    let user = match outcome {
        Err(retry_after) => {
            info!(address = %address, retry_after, "portal login throttled");
            return Err(ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    format!(
                        "too many failed logins for {address}: try again in {retry_after} seconds"
                    ),
                )
            });
        }
        Ok(Err(StoreError::BadCredentials)) => {
            info!(address = %address, "portal login failed");
            return Err(bad());
        }
        Ok(Err(StoreError::Disabled { .. })) => {
            info!(address = %address, "portal login of a disabled account");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "disabled",
                "this account is disabled",
            ));
        }
        Ok(Err(other)) => return Err(other.into()),
        Ok(Ok(user)) => user,
    };
    let (token, session) = portal.sessions.start(user.address.clone(), now);
    info!(address = %user.address, "portal login");
    let body = json!({
        "address": user.address.to_string(),
        "csrf_token": session.csrf_token,
        "expires_at": rfc3339(session.expires_at),
    });
    with_cookie(
        Json(body).into_response(),
        &session::set_cookie(&token, portal.secure_cookies),
    )
}

fn with_cookie(mut response: Response, cookie: &str) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(cookie).map_err(|e| ApiError::internal(&e))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// `DELETE /api/v1/session`.
async fn logout(State(portal): State<Arc<Portal>>, user: User) -> Result<Response, ApiError> {
    portal.sessions.end(&user.token);
    info!(address = %user.address, "portal logout");
    let body = json!({ "address": user.address.to_string(), "logged_out": true });
    with_cookie(
        Json(body).into_response(),
        &session::clear_cookie(portal.secure_cookies),
    )
}

/// `GET /api/v1/folders`.
async fn folders(State(portal): State<Arc<Portal>>, user: User) -> Result<Json<Value>, ApiError> {
    let counts = blocking(&portal, move |store, view| {
        Ok(store.folder_counts(&user.address, &view)?)
    })
    .await?;
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
    let folder: Folder = folder.parse().map_err(|_| {
        ApiError::not_found(format!(
            "no folder {folder}: use inbox, sent or disregarded"
        ))
    })?;
    let items = blocking(&portal, move |store, view| {
        let entries = store.folder_view(&user.address, folder, &view)?;
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            // The listing needs To and whether there are attachments, which
            // only the message itself has.
            let bytes = store.read_message(entry.id)?.bytes;
            let parsed = message::parse(&bytes);
            items.push(json!({
                "id": entry.id.0,
                "folder": entry.folder.as_str(),
                "from": parsed.from,
                "from_name": parsed.from_name,
                "to": parsed.to,
                "subject": parsed.subject,
                "date": date_of(&entry, &parsed),
                "received_at": rfc3339(entry.received_at),
                "unread": entry.unread,
                "has_attachments": !parsed.attachments.is_empty(),
            }));
        }
        Ok(items)
    })
    .await?;
    Ok(Json(Value::Array(items)))
}

/// `GET /api/v1/messages/{id}`: the message, marked read.
async fn read_message(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let (entry, parsed) = blocking(&portal, move |store, view| {
        let m = store.open_message(&user.address, id, &view)?;
        Ok((m.entry, message::parse(&m.bytes)))
    })
    .await?;
    let attachments: Vec<Value> = parsed
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
    Ok(Json(json!({
        "id": entry.id.0,
        "folder": entry.folder.as_str(),
        "message_id": entry.message_id.as_ref().map(|m| m.to_string()),
        "from": parsed.from,
        "from_name": parsed.from_name,
        "to": parsed.to,
        "subject": parsed.subject,
        "date": date_of(&entry, &parsed),
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
    let wanted: usize = index
        .parse()
        .map_err(|_| ApiError::not_found(format!("no attachment {index}")))?;
    let found = blocking(&portal, move |store, view| {
        store.view_entry(&user.address, id, &view)?;
        let bytes = store.read_message(id)?.bytes;
        Ok(message::parse(&bytes).attachments.into_iter().nth(wanted))
    })
    .await?;
    let a = found
        .ok_or_else(|| ApiError::not_found(format!("message {id} has no attachment {wanted}")))?;
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
    let entry = blocking(&portal, move |store, view| {
        Ok(store.disregard(&user.address, id, &view)?)
    })
    .await?;
    Ok(moved(&entry))
}

/// `POST /api/v1/messages/{id}/restore`.
async fn restore(
    State(portal): State<Arc<Portal>>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let entry = blocking(&portal, move |store, view| {
        store
            .restore(&user.address, id, &view)
            .map_err(|e| match e {
                StoreError::Invalid { reason, .. } => {
                    ApiError::new(StatusCode::CONFLICT, "not-disregarded", reason)
                }
                other => other.into(),
            })
    })
    .await?;
    Ok(moved(&entry))
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
    let (message_id, recipients) = blocking(&portal, move |store, view| {
        let entry = store.view_entry(&user.address, id, &view)?;
        let not_sent = || ApiError::not_found(format!("message {id} is not one this user sent"));
        let message_id = entry.message_id.ok_or_else(not_sent)?;
        let tracked: Vec<_> = store
            .tracked_message(&message_id)?
            .into_iter()
            .filter(|m| m.envelope_from.as_ref() == Some(&user.address))
            .collect();
        if tracked.is_empty() {
            return Err(not_sent());
        }
        let recipients: Vec<Value> = tracked
            .iter()
            .flat_map(|m| &m.recipients)
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
        Ok((message_id, recipients))
    })
    .await?;
    Ok(Json(json!({
        "id": id.0,
        "message_id": message_id.to_string(),
        "recipients": recipients,
    })))
}

/// `GET /api/v1/recipients`: who wrote to the user, newest first.
async fn recipients(
    State(portal): State<Arc<Portal>>,
    user: User,
) -> Result<Json<Value>, ApiError> {
    let list = blocking(&portal, move |store, _| {
        Ok(store.correspondents(&user.address)?)
    })
    .await?;
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
    let user = blocking(&portal, move |store, _| {
        Ok(store.portal_user(&user.address)?)
    })
    .await?;
    Ok(settings_json(&user.settings))
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
    let email = match change.email {
        Some(Some(text)) => Some(Some(EmailAddress::parse(&text).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
        })?)),
        Some(None) => Some(None),
        None => None,
    };
    let saved = blocking(&portal, move |store, _| {
        let current = store.portal_user(&user.address)?.settings;
        let next = NotifySettings {
            notify: change.notify.unwrap_or(current.notify),
            email: email.unwrap_or(current.email),
        };
        Ok(store.set_portal_settings(&user.address, &next)?)
    })
    .await?;
    Ok(settings_json(&saved.settings))
}

async fn no_such_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not take that method",
    )
}
