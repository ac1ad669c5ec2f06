//! Changes to portal accounts, for every backend, each with its audit
//! event, and the audit event of a login attempt. Hashing a password
//! happens before the transaction (it is slow on purpose); these take the
//! hash.

use time::OffsetDateTime;

use super::audit;
use super::queue::whole_seconds;
use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::portal_user::{NotifySettings, PortalUser};
use crate::tx::{PortalUserInsert, Tx};
use hisp_address::DirectAddress;

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

/// The portal account of an address, or NotFound.
pub(crate) fn user<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
) -> Result<PortalUser, StoreError> {
    tx.portal_user(address)?.ok_or_else(|| not_found(address))
}

/// [`Store::add_portal_user`](crate::Store::add_portal_user) with the hash
/// made.
pub(crate) fn add<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    password_hash: &str,
    settings: &NotifySettings,
) -> Result<PortalUser, StoreError> {
    let at = whole_seconds(OffsetDateTime::now_utc());
    match tx.insert_portal_user(address, password_hash, settings, at)? {
        PortalUserInsert::Added => {}
        PortalUserInsert::NoSuchAddress => {
            return Err(StoreError::NotFound {
                entity: Entity::Address,
                name: address.to_string(),
            })
        }
        PortalUserInsert::Duplicate => {
            return Err(StoreError::Duplicate {
                entity: Entity::PortalUser,
                name: address.to_string(),
            })
        }
    }
    let user = user(tx, address)?;
    audit::write_about(
        tx,
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

/// [`Store::set_portal_password`](crate::Store::set_portal_password) with
/// the hash made.
pub(crate) fn set_password<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    password_hash: &str,
) -> Result<PortalUser, StoreError> {
    let user = user(tx, address)?;
    tx.set_portal_password(user.id, password_hash)?;
    audit::write_about(
        tx,
        AuditKind::PortalPasswordChanged,
        &user.address,
        None,
        &format!("portal user {}: password changed", user.address),
    )?;
    Ok(user)
}

/// [`Store::disable_portal_user`](crate::Store::disable_portal_user).
pub(crate) fn disable<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
) -> Result<PortalUser, StoreError> {
    let current = user(tx, address)?;
    if !current.is_enabled() {
        return Ok(current);
    }
    tx.disable_portal_user(current.id, whole_seconds(OffsetDateTime::now_utc()))?;
    audit::write_about(
        tx,
        AuditKind::PortalUserDisabled,
        &current.address,
        None,
        &format!("portal user {} disabled", current.address),
    )?;
    user(tx, address)
}

/// [`Store::set_portal_settings`](crate::Store::set_portal_settings).
pub(crate) fn set_settings<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    settings: &NotifySettings,
) -> Result<PortalUser, StoreError> {
    let current = user(tx, address)?;
    if &current.settings == settings {
        return Ok(current);
    }
    tx.set_portal_settings(current.id, settings)?;
    audit::write_about(
        tx,
        AuditKind::PortalSettingsChanged,
        &current.address,
        None,
        &format!(
            "portal user {}: {}",
            current.address,
            settings_text(settings)
        ),
    )?;
    user(tx, address)
}

/// Why a portal login was refused, as the audit trail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    /// No portal account for the address.
    NoSuchUser,
    /// The password does not match.
    WrongPassword,
    /// The right password of a disabled account.
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
pub(crate) fn audit_login<T: Tx + ?Sized>(
    tx: &mut T,
    address: &DirectAddress,
    failure: Option<LoginFailure>,
) -> Result<(), StoreError> {
    match failure {
        None => audit::write_about(
            tx,
            AuditKind::Login,
            address,
            None,
            &format!("portal login as {address}"),
        ),
        Some(why) => audit::write_about(
            tx,
            AuditKind::LoginFailed,
            address,
            None,
            &format!("portal login as {address} refused: {}", why.as_str()),
        ),
    }
}
