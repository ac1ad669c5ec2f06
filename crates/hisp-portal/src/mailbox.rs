//! What a logged-in user can do with their mailbox, once for both faces of
//! the portal: the JSON API (`api.rs`, `send.rs`) and the web pages
//! (`pages/`) call these same functions, so a page shows exactly what the
//! API answers and refuses what it refuses. Every call names the session's
//! address as the owner and runs in the retention view at the clock's now
//! ([`Portal::view`]); another user's message id is `NotFound` like one
//! that does not exist.

use std::sync::Arc;

use axum::http::StatusCode;
use hisp_store::{
    Correspondent, DirectAddress, EmailAddress, Folder, FolderCount, MailboxEntry, MailboxEntryId,
    MessageId, NotifySettings, RecipientRecord, StoreError,
};
use time::OffsetDateTime;
use tracing::info;

use crate::api::blocking;
use crate::error::ApiError;
use crate::message::{self, Attachment, Parsed};
use crate::session::Session;
use crate::throttle::Verdict;
use crate::Portal;

/// A message of a folder with what its bytes say.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// The mailbox entry.
    pub entry: MailboxEntry,
    /// The parsed message.
    pub parsed: Parsed,
}

impl Listed {
    /// The date of the message: its Date field, else when it was stored.
    pub fn date(&self) -> OffsetDateTime {
        self.parsed
            .date
            .or(self.entry.date)
            .unwrap_or(self.entry.received_at)
    }
}

/// Total and unread of Inbox, Sent and Disregarded, in that order.
pub(crate) async fn folder_counts(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
) -> Result<Vec<FolderCount>, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        Ok(store.folder_counts(&owner, &view)?)
    })
    .await
}

/// The messages of `folder`, newest first, each parsed (the listing shows
/// To and whether there are attachments, which only the message has).
pub(crate) async fn folder(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    folder: Folder,
) -> Result<Vec<Listed>, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        let entries = store.folder_view(&owner, folder, &view)?;
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            let bytes = store.read_message(entry.id)?.bytes;
            items.push(Listed {
                parsed: message::parse(&bytes),
                entry,
            });
        }
        Ok(items)
    })
    .await
}

/// A folder named in a path: `inbox`, `sent` or `disregarded`.
pub(crate) fn folder_named(name: &str) -> Result<Folder, ApiError> {
    name.parse().map_err(|_| {
        ApiError::not_found(format!("no folder {name}: use inbox, sent or disregarded"))
    })
}

/// Opens message `id`: read and marked read in one step.
pub(crate) async fn open(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<Listed, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        let m = store.open_message(&owner, id, &view)?;
        Ok(Listed {
            parsed: message::parse(&m.bytes),
            entry: m.entry,
        })
    })
    .await
}

/// Message `id`, not marking it read.
pub(crate) async fn read(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<Listed, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        let entry = store.view_entry(&owner, id, &view)?;
        let bytes = store.read_message(id)?.bytes;
        Ok(Listed {
            parsed: message::parse(&bytes),
            entry,
        })
    })
    .await
}

/// The entry of message `id`, not marking it read.
pub(crate) async fn entry(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<MailboxEntry, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        Ok(store.view_entry(&owner, id, &view)?)
    })
    .await
}

/// Attachment `index` of message `id`.
pub(crate) async fn attachment(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
    index: usize,
) -> Result<Attachment, ApiError> {
    let owner = owner.clone();
    let found = blocking(portal, move |store, view| {
        store.view_entry(&owner, id, &view)?;
        let bytes = store.read_message(id)?.bytes;
        Ok(message::parse(&bytes).attachments.into_iter().nth(index))
    })
    .await?;
    found.ok_or_else(|| ApiError::not_found(format!("message {id} has no attachment {index}")))
}

/// Moves message `id` to Disregarded (nothing is ever deleted).
pub(crate) async fn disregard(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<MailboxEntry, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        Ok(store.disregard(&owner, id, &view)?)
    })
    .await
}

/// Moves a disregarded message `id` back to its folder; 409
/// `not-disregarded` for one that is not in Disregarded.
pub(crate) async fn restore(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<MailboxEntry, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        store.restore(&owner, id, &view).map_err(|e| match e {
            StoreError::Invalid { reason, .. } => {
                ApiError::new(StatusCode::CONFLICT, "not-disregarded", reason)
            }
            other => other.into(),
        })
    })
    .await
}

/// The delivery status of a message the owner sent.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    /// The message's Message-ID.
    pub message_id: MessageId,
    /// Each recipient's tracking.
    pub recipients: Vec<RecipientRecord>,
}

/// Where each recipient of message `id` is, from the tracking the store
/// keeps; 404 for a message the owner did not send.
pub(crate) async fn status(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<Status, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, view| {
        let entry = store.view_entry(&owner, id, &view)?;
        let not_sent = || ApiError::not_found(format!("message {id} is not one this user sent"));
        let message_id = entry.message_id.ok_or_else(not_sent)?;
        let recipients: Vec<RecipientRecord> = store
            .tracked_message(&message_id)?
            .into_iter()
            .filter(|m| m.envelope_from.as_ref() == Some(&owner))
            .flat_map(|m| m.recipients)
            .collect();
        if recipients.is_empty() {
            return Err(not_sent());
        }
        Ok(Status {
            message_id,
            recipients,
        })
    })
    .await
}

/// Whether the owner sent message `id` (it has a Direct Status).
pub(crate) async fn has_status(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    id: MailboxEntryId,
) -> Result<bool, ApiError> {
    match status(portal, owner, id).await {
        Ok(_) => Ok(true),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(false),
        Err(e) => Err(e),
    }
}

/// The providers the owner may write to: who wrote to them, newest first.
pub(crate) async fn recipients(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
) -> Result<Vec<Correspondent>, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, _| Ok(store.correspondents(&owner)?)).await
}

/// The owner's notification settings.
pub(crate) async fn settings(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
) -> Result<NotifySettings, ApiError> {
    let owner = owner.clone();
    blocking(portal, move |store, _| {
        Ok(store.portal_user(&owner)?.settings)
    })
    .await
}

/// A change of settings: `None` keeps a value; `email: Some(None)`
/// removes the address.
#[derive(Debug, Clone, Default)]
pub(crate) struct SettingsChange {
    /// Notices on or off.
    pub notify: Option<bool>,
    /// The notification address, as typed.
    pub email: Option<Option<String>>,
}

/// Saves a settings change; 422 `invalid` for an address that is not one.
pub(crate) async fn change_settings(
    portal: &Arc<Portal>,
    owner: &DirectAddress,
    change: SettingsChange,
) -> Result<NotifySettings, ApiError> {
    let email = match change.email {
        Some(Some(text)) => Some(Some(EmailAddress::parse(&text).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
        })?)),
        Some(None) => Some(None),
        None => None,
    };
    let owner = owner.clone();
    blocking(portal, move |store, _| {
        let current = store.portal_user(&owner)?.settings;
        let next = NotifySettings {
            notify: change.notify.unwrap_or(current.notify),
            email: email.unwrap_or(current.email),
        };
        Ok(store.set_portal_settings(&owner, &next)?.settings)
    })
    .await
}

/// Logs in: the throttle first (429 with `retry_after` after five recent
/// failures of the address), then the password (401 `bad-credentials`,
/// 403 `disabled`). Returns the session's cookie token and the session.
pub(crate) async fn log_in(
    portal: &Arc<Portal>,
    address: &str,
    password: String,
) -> Result<(String, Session), ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad-credentials",
            "wrong address or password",
        )
    };
    // One spelling per account, so the failures of `Pat@` and `pat@` are
    // counted together by the throttle.
    let Ok(address) = DirectAddress::parse(&address.trim().to_ascii_lowercase()) else {
        return Err(bad());
    };
    let now = portal.clock.now();
    let throttle = portal.throttle;
    let tried = address.clone();
    let outcome = blocking(portal, move |store, _| {
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
    Ok((token, session))
}

/// Ends the session of `token`.
pub(crate) fn log_out(portal: &Portal, token: &str, address: &DirectAddress) {
    portal.sessions.end(token);
    info!(address = %address, "portal logout");
}
