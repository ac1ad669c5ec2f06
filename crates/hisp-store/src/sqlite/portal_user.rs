//! Portal accounts in SQLite: the reads, and the statements behind the
//! seam's portal primitives (`sqlite/tx.rs`). The changes with their audit
//! events are `crate::ops::portal_user`'s.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Row, Transaction};

use time::OffsetDateTime;

use super::directory::address_id_opt;
use super::rows::{is_unique_violation, parsed, time_at, time_opt};
use crate::error::{Entity, StoreError};
use crate::portal_user::{EmailAddress, NotifySettings, PortalUser, PortalUserId};
use crate::tx::PortalUserInsert;
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

/// Adds an enabled portal account to a local address.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    password_hash: &str,
    settings: &NotifySettings,
    at: OffsetDateTime,
) -> Result<PortalUserInsert, StoreError> {
    let Some(address_id) = address_id_opt(tx, address)? else {
        return Ok(PortalUserInsert::NoSuchAddress);
    };
    match tx.exec(
        "INSERT INTO portal_users (address_id, password_hash, email, notify, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            address_id,
            password_hash,
            settings.email.as_ref().map(EmailAddress::as_string),
            settings.notify,
            at.unix_timestamp(),
        ),
    ) {
        Ok(_) => Ok(PortalUserInsert::Added),
        Err(e) if is_unique_violation(&e) => Ok(PortalUserInsert::Duplicate),
        Err(e) => Err(StoreError::sqlite("adding a portal user")(e)),
    }
}

/// Replaces a portal account's password hash.
pub(crate) fn set_password(
    tx: &Transaction<'_>,
    id: PortalUserId,
    password_hash: &str,
) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE portal_users SET password_hash = ?2 WHERE id = ?1",
        (id.0, password_hash),
    )
    .map_err(StoreError::sqlite("changing a portal password"))?;
    Ok(())
}

/// Disables a portal account as of `at`.
pub(crate) fn disable(
    tx: &Transaction<'_>,
    id: PortalUserId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE portal_users SET disabled_at = ?2 WHERE id = ?1",
        (id.0, at.unix_timestamp()),
    )
    .map_err(StoreError::sqlite("disabling a portal user"))?;
    Ok(())
}

/// Replaces a portal account's notification settings.
pub(crate) fn set_settings(
    tx: &Transaction<'_>,
    id: PortalUserId,
    settings: &NotifySettings,
) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE portal_users SET notify = ?2, email = ?3 WHERE id = ?1",
        (
            id.0,
            settings.notify,
            settings.email.as_ref().map(EmailAddress::as_string),
        ),
    )
    .map_err(StoreError::sqlite("changing portal settings"))?;
    Ok(())
}
