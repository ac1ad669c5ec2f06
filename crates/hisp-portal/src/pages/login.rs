//! Logging in and out through the pages. The login is the API's
//! ([`mailbox::log_in`]): the same sessions, the same throttle (its 429
//! shown with when to try again), the same audit events.
//!
//! The login form has no session to take a CSRF token from, so it gets a
//! token of its own: a random value in the `hisp_login` cookie (HttpOnly,
//! SameSite=Strict) that the form repeats in its hidden field; a login
//! posted from another site, which cannot read or set that cookie, is 403.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use time::Duration;

use super::render::{page, Chrome, PageError};
use super::{see_other, with_cookie, CsrfOnly, PageUser};
use crate::mailbox;
use crate::session;
use crate::Portal;

/// The cookie holding the login form's CSRF token.
const LOGIN_COOKIE: &str = "hisp_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    address: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    logged_out: Option<String>,
}

fn login_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict{secure}")
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session::cookie_value(v, name))
        .map(str::to_string)
}

/// `GET /login`: the form (or the Inbox, when already logged in).
pub(crate) async fn page_get(
    State(portal): State<Arc<Portal>>,
    user: Option<PageUser>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    if user.is_some() {
        return Ok(see_other("/folders/inbox"));
    }
    let notice = q
        .logged_out
        .map(|_| "You are logged out. Close the browser window if others use this computer.");
    form(
        &portal,
        &headers,
        StatusCode::OK,
        String::new(),
        None,
        notice,
    )
}

/// The login form with `status`, keeping the login token of the browser
/// (or giving it one).
fn form(
    portal: &Portal,
    headers: &HeaderMap,
    status: StatusCode,
    address: String,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let (csrf, fresh) = match cookie(headers, LOGIN_COOKIE).filter(|t| t.len() == 64) {
        Some(token) => (token, false),
        None => (session::random_token(), true),
    };
    let response = page(
        status,
        &LoginPage {
            title: "Log in",
            chrome: None,
            csrf: csrf.clone(),
            address,
            error,
            notice,
        },
    );
    if fresh {
        with_cookie(response, &login_cookie(&csrf, portal.secure_cookies))
    } else {
        Ok(response)
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: 303 to the Inbox with a session cookie, or the form
/// again with the reason (wrong address or password, a disabled account,
/// or too many failures with when to try again).
pub(crate) async fn submit(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_COOKIE);
    let sent = f.csrf_token.as_deref();
    if !matches!((sent, &expected), (Some(s), Some(e)) if session::tokens_equal(s, e)) {
        return Err(PageError::csrf());
    }
    match mailbox::log_in(&portal, &f.address, f.password).await {
        Ok((token, _)) => {
            let response = with_cookie(
                see_other("/folders/inbox"),
                &session::set_cookie(&token, portal.secure_cookies),
            )?;
            with_cookie(
                response,
                &format!("{LOGIN_COOKIE}=; Path=/login; Max-Age=0; HttpOnly; SameSite=Strict"),
            )
        }
        Err(e) => {
            let text = match e.retry_after {
                Some(secs) => {
                    let at = portal.clock.now() + Duration::seconds(secs as i64);
                    let minutes = secs.div_ceil(60);
                    let unit = if minutes == 1 { "minute" } else { "minutes" };
                    format!(
                        "Too many failed logins for this address. For your safety, logging \
                         in is paused: try again in {minutes} {unit} (after {}).",
                        super::words::date(at)
                    )
                }
                None => match e.code {
                    "bad-credentials" => "Wrong address or password.".to_string(),
                    "disabled" => {
                        "This account is disabled. Ask your care provider's office.".to_string()
                    }
                    _ => return Err(e.into()),
                },
            };
            let mut response = form(
                &portal,
                &headers,
                e.status,
                f.address.trim().to_string(),
                Some(text),
                None,
            )?;
            if let Some(secs) = e.retry_after {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(secs),
                );
            }
            Ok(response)
        }
    }
}

/// `POST /logout`: ends the session, 303 to the login page.
pub(crate) async fn logout(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    user.check_csrf(f.csrf_token.as_deref())?;
    mailbox::log_out(&portal, &user.token, &user.address);
    with_cookie(
        see_other("/login?logged_out=1"),
        &session::clear_cookie(portal.secure_cookies),
    )
}
