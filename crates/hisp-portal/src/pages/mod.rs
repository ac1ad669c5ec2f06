//! The portal's web pages (issue 12, "Pages"): plain HTML5 rendered on the
//! server from askama templates (checked when the crate compiles, every
//! value escaped), on the same router, sessions and login throttle as the
//! API. The handlers call the functions the API's handlers call
//! ([`crate::mailbox`], [`crate::send::submit`]); no page asks the API over
//! HTTP.
//!
//! Rules every page keeps: not logged in, a page answers 303 to
//! [`LOGIN`]; every form carries the session's CSRF token as the hidden
//! field `csrf_token` (the login form a token of its own, in the
//! `hisp_login` cookie), and a POST without it or with a wrong one is 403
//! with a page saying why; a POST that changes something answers 303 to
//! the page showing the result (post/redirect/get); no script and nothing
//! from outside the portal (the stylesheet and the one icon are served
//! here), said by a `Content-Security-Policy` too.

mod compose;
mod login;
mod render;
mod settings;
mod view;
mod words;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hisp_store::DirectAddress;

use crate::error::ApiError;
use crate::session;
use crate::Portal;

pub(crate) use render::{not_found, PageError};

/// The login page.
pub const LOGIN: &str = "/login";

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// The pages' routes on `portal`.
pub(crate) fn routes(portal: Arc<Portal>) -> Router {
    let limits = portal
        .sender
        .as_ref()
        .map(|s| s.settings().limits)
        .unwrap_or_default();
    // A form upload carries the files as they are (no base64): the
    // allowance and room for the text and the form around it.
    let upload =
        usize::try_from(limits.max_total_bytes.saturating_add(1024 * 1024)).unwrap_or(usize::MAX);
    Router::new()
        .route("/", get(home))
        .route(LOGIN, get(login::page_get).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/folders/{folder}", get(view::folder))
        .route("/messages/{id}", get(view::message))
        .route("/messages/{id}/attachments/{index}", get(view::attachment))
        .route("/messages/{id}/disregard", post(view::disregard))
        .route("/messages/{id}/restore", post(view::restore))
        .route("/messages/{id}/status", get(view::status))
        .route(
            "/messages/{id}/reply",
            get(compose::reply_page)
                .post(compose::reply)
                .layer(DefaultBodyLimit::max(upload)),
        )
        .route(
            "/compose",
            get(compose::page_get)
                .post(compose::send)
                .layer(DefaultBodyLimit::max(upload)),
        )
        .route("/settings", get(settings::page_get).post(settings::save))
        .route("/static/portal.css", get(render::stylesheet))
        .route("/static/attachment.svg", get(render::attachment_icon))
        .method_not_allowed_fallback(render::method_not_allowed)
        .layer(axum::middleware::map_response(render::finish))
        .with_state(portal)
}

/// `/`: the Inbox, or the login page.
async fn home(user: Option<PageUser>) -> Redirect {
    match user {
        Some(_) => Redirect::to("/folders/inbox"),
        None => Redirect::to(LOGIN),
    }
}

/// The logged-in user of a page: a live session named by the cookie.
/// Without one, the page answers 303 to the login page.
pub(crate) struct PageUser {
    /// The session's address: the one mailbox the page shows.
    pub address: DirectAddress,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
    /// The session's cookie token.
    token: String,
}

impl PageUser {
    /// 403 unless `sent` is the session's CSRF token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), PageError> {
        if sent.is_some_and(|s| session::tokens_equal(s, &self.csrf)) {
            Ok(())
        } else {
            Err(PageError::csrf())
        }
    }
}

impl FromRequestParts<Arc<Portal>> for PageUser {
    type Rejection = Redirect;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Arc<Portal>,
    ) -> Result<Self, Self::Rejection> {
        let (token, s) = crate::api::session_of(parts, portal).ok_or(Redirect::to(LOGIN))?;
        Ok(PageUser {
            address: s.address,
            csrf: s.csrf_token,
            token,
        })
    }
}

impl axum::extract::OptionalFromRequestParts<Arc<Portal>> for PageUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Arc<Portal>,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <PageUser as FromRequestParts<_>>::from_request_parts(parts, portal)
                .await
                .ok(),
        )
    }
}

/// A form that carries nothing but the CSRF token (a button).
#[derive(serde::Deserialize)]
pub(crate) struct CsrfOnly {
    /// The hidden field; missing is refused like wrong.
    #[serde(default)]
    pub csrf_token: Option<String>,
}

/// 303 See Other to `to`, the answer to every POST that changed
/// something (post/redirect/get).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Adds a `Set-Cookie` to a response.
pub(crate) fn with_cookie(response: Response, cookie: &str) -> Result<Response, PageError> {
    crate::api::with_cookie(response, cookie).map_err(PageError::from)
}

/// A response's status with an HTML page.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError::Api(e)
    }
}
