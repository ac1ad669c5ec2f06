//! Submission accounts with their grants, and portal accounts, in
//! PostgreSQL: the reads and the submission accounts' CRUD. Hashing
//! happens outside the transaction (it is slow on purpose); the portal
//! accounts' changes with their audit events are `crate::ops::portal_user`'s
//! over `postgres/tx.rs`.

use ::postgres::{Row, Transaction};

use super::directory::{address_id, domain_id, duplicate_or};
use super::rows::{col, corrupt, domain_at, local_key, now, parsed, time_at, time_opt};
use crate::error::{Entity, StoreError};
use crate::portal_user::{EmailAddress, NotifySettings, PortalUser, PortalUserId};
use crate::user::{Account, Grant, UserId, UserName};
use hisp_address::DirectAddress;

pub(super) fn add_user(
    tx: &mut Transaction<'_>,
    name: &UserName,
    password_hash: &str,
) -> Result<Account, StoreError> {
    tx.execute(
        "INSERT INTO users (name, password_hash, added_at) VALUES ($1, $2, $3)",
        &[&name.as_str(), &password_hash, &now()],
    )
    .map_err(|e| duplicate_or(e, Entity::User, name.to_string(), "adding a user"))?;
    account(tx, name)
}

/// The stored hash of a user, or `None` if there is no such user.
pub(super) fn password_hash(
    tx: &mut Transaction<'_>,
    name: &UserName,
) -> Result<Option<String>, StoreError> {
    tx.query_opt(
        "SELECT password_hash FROM users WHERE name = $1",
        &[&name.as_str()],
    )
    .map_err(StoreError::postgres("reading a password hash"))?
    .map(|r| col(&r, 0))
    .transpose()
}

fn account_row(r: &Row) -> Result<Account, StoreError> {
    Ok(Account {
        id: UserId(col(r, 0)?),
        name: parsed(r, 1, "user name", |s| UserName::parse(s).ok())?,
        request_final_delivery: col(r, 2)?,
        grants: Vec::new(),
        added_at: time_at(r, 3)?,
    })
}

pub(super) fn account(tx: &mut Transaction<'_>, name: &UserName) -> Result<Account, StoreError> {
    let mut account = tx
        .query_opt(
            "SELECT id, name, request_final_delivery, added_at FROM users WHERE name = $1",
            &[&name.as_str()],
        )
        .map_err(StoreError::postgres("reading a user"))?
        .map(|r| account_row(&r))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound {
            entity: Entity::User,
            name: name.to_string(),
        })?;
    account.grants = grants(tx, Some(account.id))?
        .into_iter()
        .map(|(_, g)| g)
        .collect();
    Ok(account)
}

pub(super) fn accounts(tx: &mut Transaction<'_>) -> Result<Vec<Account>, StoreError> {
    let mut accounts = tx
        .query(
            "SELECT id, name, request_final_delivery, added_at FROM users
             ORDER BY name COLLATE \"C\"",
            &[],
        )
        .map_err(StoreError::postgres("listing users"))?
        .iter()
        .map(account_row)
        .collect::<Result<Vec<Account>, StoreError>>()?;
    for (user, grant) in grants(tx, None)? {
        if let Some(a) = accounts.iter_mut().find(|a| a.id == user) {
            a.grants.push(grant);
        }
    }
    Ok(accounts)
}

/// The grants of one user or of all, in the order granted.
fn grants(
    tx: &mut Transaction<'_>,
    user: Option<UserId>,
) -> Result<Vec<(UserId, Grant)>, StoreError> {
    let rows = tx
        .query(
            "SELECT g.user_id, a.local_part, ad.name, d.name
             FROM user_grants g
             LEFT JOIN addresses a ON a.id = g.address_id
             LEFT JOIN domains ad ON ad.id = a.domain_id
             LEFT JOIN domains d ON d.id = g.domain_id
             WHERE $1::bigint IS NULL OR g.user_id = $1
             ORDER BY g.id",
            &[&user.map(|u| u.0)],
        )
        .map_err(StoreError::postgres("reading grants"))?;
    rows.iter()
        .map(|r| {
            let user = UserId(col(r, 0)?);
            let grant = match col::<Option<&str>>(r, 1)? {
                Some(local) => {
                    let domain = domain_at(r, 2)?;
                    Grant::Address(
                        DirectAddress::parse(&format!("{local}@{domain}"))
                            .map_err(|_| corrupt("address"))?,
                    )
                }
                None => Grant::Domain(domain_at(r, 3)?),
            };
            Ok((user, grant))
        })
        .collect()
}

pub(super) fn grant(
    tx: &mut Transaction<'_>,
    name: &UserName,
    grant: &Grant,
) -> Result<Account, StoreError> {
    let user = account(tx, name)?.id;
    let (address, domain): (Option<i64>, Option<i64>) = match grant {
        Grant::Address(a) => (Some(address_id(tx, a)?), None),
        Grant::Domain(d) => (None, Some(domain_id(tx, d)?)),
    };
    tx.execute(
        "INSERT INTO user_grants (user_id, address_id, domain_id, added_at)
         VALUES ($1, $2, $3, $4)",
        &[&user.0, &address, &domain, &now()],
    )
    .map_err(|e| {
        duplicate_or(
            e,
            Entity::User,
            format!("{name} grant {grant}"),
            "granting a sender",
        )
    })?;
    account(tx, name)
}

pub(super) fn set_request_final_delivery(
    tx: &mut Transaction<'_>,
    name: &UserName,
    on: bool,
) -> Result<Account, StoreError> {
    let changed = tx
        .execute(
            "UPDATE users SET request_final_delivery = $2 WHERE name = $1",
            &[&name.as_str(), &on],
        )
        .map_err(StoreError::postgres("updating a user"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::User,
            name: name.to_string(),
        });
    }
    account(tx, name)
}

const PORTAL_SELECT: &str = "SELECT p.id, a.local_part || '@' || d.name, p.email, p.notify,
                                    p.disabled_at, p.added_at
                             FROM portal_users p
                             JOIN addresses a ON a.id = p.address_id
                             JOIN domains d ON d.id = a.domain_id";

fn portal_row(r: &Row) -> Result<PortalUser, StoreError> {
    let email = col::<Option<&str>>(r, 2)?
        .map(|s| EmailAddress::parse(s).map_err(|_| corrupt("e-mail address")))
        .transpose()?;
    Ok(PortalUser {
        id: PortalUserId(col(r, 0)?),
        address: parsed(r, 1, "address", |s| DirectAddress::parse(s).ok())?,
        settings: NotifySettings {
            notify: col(r, 3)?,
            email,
        },
        disabled_at: time_opt(r, 4)?,
        added_at: time_at(r, 5)?,
    })
}

/// The portal account of an address, if it has one; `lock` is appended to
/// the query (`FOR UPDATE OF p` in a write transaction).
pub(super) fn find_portal_user(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
    lock: &str,
) -> Result<Option<PortalUser>, StoreError> {
    tx.query_opt(
        &format!("{PORTAL_SELECT} WHERE d.name = $1 AND a.local_part_key = $2{lock}"),
        &[&address.domain().as_str(), &local_key(address)],
    )
    .map_err(StoreError::postgres("reading a portal user"))?
    .map(|r| portal_row(&r))
    .transpose()
}

/// One portal account, or NotFound.
pub(super) fn portal_user(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
) -> Result<PortalUser, StoreError> {
    find_portal_user(tx, address, "")?.ok_or_else(|| StoreError::NotFound {
        entity: Entity::PortalUser,
        name: address.to_string(),
    })
}

/// Every portal account, by domain then local part.
pub(super) fn portal_users(tx: &mut Transaction<'_>) -> Result<Vec<PortalUser>, StoreError> {
    tx.query(
        &format!("{PORTAL_SELECT} ORDER BY d.name COLLATE \"C\", a.local_part_key COLLATE \"C\""),
        &[],
    )
    .map_err(StoreError::postgres("listing portal users"))?
    .iter()
    .map(portal_row)
    .collect()
}

/// The stored hash and whether the account is enabled, or `None` if there
/// is no such account.
pub(super) fn portal_password_hash(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
) -> Result<Option<(String, bool)>, StoreError> {
    tx.query_opt(
        "SELECT p.password_hash, p.disabled_at IS NULL FROM portal_users p
         JOIN addresses a ON a.id = p.address_id
         JOIN domains d ON d.id = a.domain_id
         WHERE d.name = $1 AND a.local_part_key = $2",
        &[&address.domain().as_str(), &local_key(address)],
    )
    .map_err(StoreError::postgres("reading a portal password hash"))?
    .map(|r| Ok((col(&r, 0)?, col(&r, 1)?)))
    .transpose()
}
