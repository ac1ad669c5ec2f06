//! Settings: the e-mail address notices go to and whether they are sent
//! (the opt-out), saved through the API's [`mailbox::change_settings`].

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::render::{chrome, page, Chrome, PageError};
use super::{see_other, PageUser};
use crate::mailbox::{self, SettingsChange};
use crate::Portal;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    email: String,
    notify: bool,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /settings`.
pub(crate) async fn page_get(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Query(q): Query<SavedQuery>,
) -> Result<Response, PageError> {
    let s = mailbox::settings(&portal, &user.address).await?;
    Ok(page(
        StatusCode::OK,
        &SettingsPage {
            title: "Settings",
            chrome: Some(chrome(&portal, &user, "settings").await?),
            csrf: user.csrf.clone(),
            email: s.email.map(|e| e.to_string()).unwrap_or_default(),
            notify: s.notify,
            error: None,
            notice: q.saved.map(|_| "Your settings were saved."),
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(default)]
    email: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    notify: Option<String>,
}

/// `POST /settings`: 303 to the settings page, or the form again with the
/// reason next to the address.
pub(crate) async fn save(
    State(portal): State<Arc<Portal>>,
    user: PageUser,
    Form(f): Form<SettingsForm>,
) -> Result<Response, PageError> {
    user.check_csrf(f.csrf_token.as_deref())?;
    let email = f.email.trim().to_string();
    let notify = f.notify.is_some();
    let change = SettingsChange {
        notify: Some(notify),
        email: Some((!email.is_empty()).then(|| email.clone())),
    };
    match mailbox::change_settings(&portal, &user.address, change).await {
        Ok(_) => Ok(see_other("/settings?saved=1")),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => Ok(page(
            e.status,
            &SettingsPage {
                title: "Settings",
                chrome: Some(chrome(&portal, &user, "settings").await?),
                csrf: user.csrf.clone(),
                email,
                notify,
                error: Some(format!(
                    "This is not an e-mail address we can use: {}",
                    e.message
                )),
                notice: None,
            },
        )),
        Err(e) => Err(e.into()),
    }
}
