//! Portal accounts in SQLite. Hashing happens outside the transaction (it is
//! slow on purpose); these functions read and write rows and write the
//! audit event of each change.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Row, Transaction};

use super::directory::{address_id, duplicate_or};
use super::rows::{now, parsed, time_at, time_opt};
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::ops::audit;
use crate::portal_user::{EmailAddress, NotifySettings, PortalUser, PortalUserId};
use hisp_address::DirectAddress;

const SELECT: &str = "SELECT p.id, a.local_part || '@' || d.name, p.email, p.notify,
                             p.disabled_at, p.added_at
                      FROM portal_users p
                      JOIN addresses a ON a.id = p.address_id
                      JOIN domains d ON d.id = a.domain_id";

fn not_found(address: &DirectAddress) -> StoreError {
    StoreError::NotFound {
        entity: Entity::PortalUser,
        name: address.to_string(),
    }
}

fn settings_text(s: &NotifySettings) -> String {
    format!(
        "notify {}, e-mail {}",
        if s.notify { "on" } else { "off" },
        s.email
            .as_ref()
            .map_or_else(|| "none".to_string(), ToString::to_string)
    )
}

pub(crate) fn add(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    password_hash: &str,
    settings: &NotifySettings,
) -> Result<PortalUser, StoreError> {
    let address_id = address_id(tx, address)?;
    tx.exec(
        "INSERT INTO portal_users (address_id, password_hash, email, notify, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            address_id,
            password_hash,
            settings.email.as_ref().map(EmailAddress::as_string),
            settings.notify,
            now(),
        ),
    )
    .map_err(|e| {
        duplicate_or(
            e,
            Entity::PortalUser,
            address.to_string(),
            "adding a portal user",
        )
    })?;
    let user = user(tx, address)?;
    audit::write_about(
        &mut { tx },
        AuditKind::PortalUserAdded,
        &user.address,
        None,
        &format!(
            "portal user {} added: {}",
            user.address,
            settings_text(settings)
        ),
    )?;
    Ok(user)
}

pub(crate) fn user(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<PortalUser, StoreError> {
    find(tx, address)?.ok_or_else(|| not_found(address))
}

/// The portal account of an address, if it has one.
pub(crate) fn find(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<Option<PortalUser>, StoreError> {
    tx.row(
        &format!("{SELECT} WHERE d.name = ?1 AND a.local_part = ?2"),
        (address.domain().as_str(), address.local_part()),
        user_row,
    )
    .optional()
    .map_err(StoreError::sqlite("reading a portal user"))
}

pub(crate) fn users(tx: &Transaction<'_>) -> Result<Vec<PortalUser>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!("{SELECT} ORDER BY d.name, a.local_part"))
        .map_err(StoreError::sqlite("listing portal users"))?;
    let rows = stmt
        .query_map([], user_row)
        .map_err(StoreError::sqlite("listing portal users"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing portal users"))
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<PortalUser> {
    let email = match r.get::<_, Option<String>>(2)? {
        None => None,
        Some(_) => Some(parsed(r, 2, "e-mail address", |s| {
            EmailAddress::parse(s).ok()
        })?),
    };
    Ok(PortalUser {
        id: PortalUserId(r.get(0)?),
        address: parsed(r, 1, "address", |s| DirectAddress::parse(s).ok())?,
        settings: NotifySettings {
            notify: r.get(3)?,
            email,
        },
        disabled_at: time_opt(r, 4)?,
        added_at: time_at(r, 5)?,
    })
}

/// The stored hash and whether the account is enabled, or `None` if there
/// is no such account.
pub(crate) fn password_hash(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<Option<(String, bool)>, StoreError> {
    tx.row(
        "SELECT p.password_hash, p.disabled_at IS NULL FROM portal_users p
         JOIN addresses a ON a.id = p.address_id
         JOIN domains d ON d.id = a.domain_id
         WHERE d.name = ?1 AND a.local_part = ?2",
        (address.domain().as_str(), address.local_part()),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(StoreError::sqlite("reading a portal password hash"))
}

pub(crate) fn set_password(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    password_hash: &str,
) -> Result<PortalUser, StoreError> {
    let user = user(tx, address)?;
    tx.exec(
        "UPDATE portal_users SET password_hash = ?2 WHERE id = ?1",
        (user.id.0, password_hash),
    )
    .map_err(StoreError::sqlite("changing a portal password"))?;
    audit::write_about(
        &mut { tx },
        AuditKind::PortalPasswordChanged,
        &user.address,
        None,
        &format!("portal user {}: password changed", user.address),
    )?;
    Ok(user)
}

pub(crate) fn disable(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<PortalUser, StoreError> {
    let user = user(tx, address)?;
    if !user.is_enabled() {
        return Ok(user);
    }
    tx.exec(
        "UPDATE portal_users SET disabled_at = ?2 WHERE id = ?1",
        (user.id.0, now()),
    )
    .map_err(StoreError::sqlite("disabling a portal user"))?;
    audit::write_about(
        &mut { tx },
        AuditKind::PortalUserDisabled,
        &user.address,
        None,
        &format!("portal user {} disabled", user.address),
    )?;
    self::user(tx, address)
}

pub(crate) fn set_settings(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    settings: &NotifySettings,
) -> Result<PortalUser, StoreError> {
    let user = user(tx, address)?;
    if &user.settings == settings {
        return Ok(user);
    }
    tx.exec(
        "UPDATE portal_users SET notify = ?2, email = ?3 WHERE id = ?1",
        (
            user.id.0,
            settings.notify,
            settings.email.as_ref().map(EmailAddress::as_string),
        ),
    )
    .map_err(StoreError::sqlite("changing portal settings"))?;
    audit::write_about(
        &mut { tx },
        AuditKind::PortalSettingsChanged,
        &user.address,
        None,
        &format!("portal user {}: {}", user.address, settings_text(settings)),
    )?;
    self::user(tx, address)
}

/// Why a portal login was refused, as the audit trail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    NoSuchUser,
    WrongPassword,
    Disabled,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            LoginFailure::NoSuchUser => "no such portal user",
            LoginFailure::WrongPassword => "wrong password",
            LoginFailure::Disabled => "account disabled",
        }
    }
}

/// Writes the audit event of a login attempt.
pub(crate) fn audit_login(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    failure: Option<LoginFailure>,
) -> Result<(), StoreError> {
    match failure {
        None => audit::write_about(
            &mut { tx },
            AuditKind::Login,
            address,
            None,
            &format!("portal login as {address}"),
        ),
        Some(why) => audit::write_about(
            &mut { tx },
            AuditKind::LoginFailed,
            address,
            None,
            &format!("portal login as {address} refused: {}", why.as_str()),
        ),
    }
}
