//! What every page shares: the frame around it ([`Chrome`]: who is logged
//! in, the folder list with the Inbox's unread count, the logout form),
//! rendering a template into a response, the error pages, the headers put
//! on every answer, and the stylesheet and icon the portal serves itself.

use std::sync::Arc;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hisp_store::Folder;

use super::{html, PageUser};
use crate::error::ApiError;
use crate::mailbox;
use crate::Portal;

/// The frame of a logged-in page.
pub(crate) struct Chrome {
    /// The account's address.
    pub address: String,
    /// The session's CSRF token (for the logout form).
    pub csrf: String,
    /// Unread messages in the Inbox.
    pub inbox_unread: u64,
    /// Which entry of the navigation is the page shown: `inbox`, `sent`,
    /// `disregarded`, `compose`, `settings`, or empty.
    pub current: &'static str,
}

/// The frame for `user` with `current` marked in the navigation.
pub(crate) async fn chrome(
    portal: &Arc<Portal>,
    user: &PageUser,
    current: &'static str,
) -> Result<Chrome, PageError> {
    let counts = mailbox::folder_counts(portal, &user.address).await?;
    let inbox_unread = counts
        .iter()
        .find(|c| c.folder == Folder::Inbox)
        .map_or(0, |c| c.unread);
    Ok(Chrome {
        address: user.address.to_string(),
        csrf: user.csrf.clone(),
        inbox_unread,
        current,
    })
}

/// Renders `page` with `status`.
pub(crate) fn page(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => PageError::Api(ApiError::internal(&e)).into_response(),
    }
}

/// Why a page could not be shown, rendered as an HTML page with its status.
#[derive(Debug)]
pub(crate) enum PageError {
    /// What the API would answer (404 for another user's message, ...).
    Api(ApiError),
    /// A form without the session's CSRF token, or with a wrong one.
    Csrf,
}

impl PageError {
    /// The 403 of a form without the right CSRF token.
    pub fn csrf() -> PageError {
        PageError::Csrf
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    chrome: Option<Chrome>,
    heading: &'a str,
    text: &'a str,
}

fn error_page(status: StatusCode, heading: &str, text: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        status,
        &ErrorPage {
            title,
            chrome: None,
            heading,
            text,
        },
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "This form cannot be accepted",
                "It did not carry this portal's security token for your session (the \
                 token is missing or wrong, for example because you logged in again in \
                 another window or the form came from another site). Nothing was changed. \
                 Go back, reload the page and try again.",
            ),
            PageError::Api(e) => {
                let heading = match e.status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Not possible now",
                    StatusCode::FORBIDDEN => "Not allowed",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "This request cannot be answered",
                };
                let mut text = e.message.clone();
                if let Some(first) = text.get(..1) {
                    let upper = first.to_uppercase();
                    text.replace_range(..1, &upper);
                }
                if !text.ends_with('.') {
                    text.push('.');
                }
                let mut response = error_page(e.status, heading, &text);
                if let Some(secs) = e.retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
        }
    }
}

/// The HTML 404 of a path that is no page.
pub(crate) async fn not_found() -> Response {
    finish(error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    ))
    .await
}

/// The HTML 405 of a page asked with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "This page does not take that request",
        "Use the links and buttons of the portal.",
    )
}

/// Content-Security-Policy of every page: nothing but this portal's own
/// stylesheet and images, no script at all, forms sent only here, never
/// shown inside another site's frame.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Applied to every page's answer: private mail is not cached (unless the
/// answer says otherwise, as the stylesheet does), the [`CSP`] and its
/// companions; an error axum itself produced (a form it could not read, a
/// body over the limit) becomes an HTML page.
pub(crate) async fn finish(response: Response) -> Response {
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !is_html {
        let (_, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        let text = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        };
        error_page(status, "This request cannot be answered", &text)
    } else {
        response
    };
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `GET /static/portal.css`: the one stylesheet.
pub(crate) async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/portal.css"),
    )
}

/// `GET /static/attachment.svg`: the attachment mark of the folder lists.
pub(crate) async fn attachment_icon() -> Response {
    asset("image/svg+xml", include_str!("../../static/attachment.svg"))
}
