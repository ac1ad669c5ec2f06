//! Submission accounts and their grants in SQLite. Hashing happens outside
//! the transaction (it is slow on purpose); these functions only read and
//! write rows.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Row, Transaction};

use super::directory::{address_id, duplicate_or};
use super::rows::{domain_at, domain_id, now, parsed, time_at};
use crate::error::{Entity, StoreError};
use crate::user::{Account, Grant, UserId, UserName};
use hisp_address::DirectAddress;

pub(crate) fn add(
    tx: &Transaction<'_>,
    name: &UserName,
    password_hash: &str,
) -> Result<Account, StoreError> {
    tx.exec(
        "INSERT INTO users (name, password_hash, added_at) VALUES (?1, ?2, ?3)",
        (name.as_str(), password_hash, now()),
    )
    .map_err(|e| duplicate_or(e, Entity::User, name.to_string(), "adding a user"))?;
    account(tx, name)
}

/// The stored hash of a user, or `None` if there is no such user.
pub(crate) fn password_hash(
    tx: &Transaction<'_>,
    name: &UserName,
) -> Result<Option<String>, StoreError> {
    tx.row(
        "SELECT password_hash FROM users WHERE name = ?1",
        [name.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading a password hash"))
}

pub(crate) fn account(tx: &Transaction<'_>, name: &UserName) -> Result<Account, StoreError> {
    let mut account = tx
        .row(
            "SELECT id, name, request_final_delivery, added_at FROM users WHERE name = ?1",
            [name.as_str()],
            account_row,
        )
        .optional()
        .map_err(StoreError::sqlite("reading a user"))?
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

pub(crate) fn accounts(tx: &Transaction<'_>) -> Result<Vec<Account>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, name, request_final_delivery, added_at FROM users ORDER BY name",
        )
        .map_err(StoreError::sqlite("listing users"))?;
    let mut accounts: Vec<Account> = stmt
        .query_map([], account_row)
        .map_err(StoreError::sqlite("listing users"))?
        .collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing users"))?;
    for (user, grant) in grants(tx, None)? {
        if let Some(a) = accounts.iter_mut().find(|a| a.id == user) {
            a.grants.push(grant);
        }
    }
    Ok(accounts)
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: UserId(r.get(0)?),
        name: parsed(r, 1, "user name", |s| UserName::parse(s).ok())?,
        request_final_delivery: r.get(2)?,
        grants: Vec::new(),
        added_at: time_at(r, 3)?,
    })
}

/// The grants of one user or of all, in the order granted.
fn grants(tx: &Transaction<'_>, user: Option<UserId>) -> Result<Vec<(UserId, Grant)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT g.user_id, a.local_part, ad.name, d.name
             FROM user_grants g
             LEFT JOIN addresses a ON a.id = g.address_id
             LEFT JOIN domains ad ON ad.id = a.domain_id
             LEFT JOIN domains d ON d.id = g.domain_id
             WHERE ?1 IS NULL OR g.user_id = ?1
             ORDER BY g.id",
        )
        .map_err(StoreError::sqlite("reading grants"))?;
    let rows = stmt
        .query_map([user.map(|u| u.0)], |r| {
            let user = UserId(r.get(0)?);
            let grant = match r.get::<_, Option<String>>(1)? {
                Some(local) => {
                    let domain = domain_at(r, 2)?;
                    let text = format!("{local}@{domain}");
                    Grant::Address(DirectAddress::parse(&text).map_err(|_| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            "bad address".into(),
                        )
                    })?)
                }
                None => Grant::Domain(domain_at(r, 3)?),
            };
            Ok((user, grant))
        })
        .map_err(StoreError::sqlite("reading grants"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("reading grants"))
}

pub(crate) fn grant(
    tx: &Transaction<'_>,
    name: &UserName,
    grant: &Grant,
) -> Result<Account, StoreError> {
    let user = account(tx, name)?.id;
    let (address, domain) = match grant {
        Grant::Address(a) => (Some(address_id(tx, a)?), None),
        Grant::Domain(d) => (None, Some(domain_id(tx, d)?)),
    };
    tx.exec(
        "INSERT INTO user_grants (user_id, address_id, domain_id, added_at)
         VALUES (?1, ?2, ?3, ?4)",
        (user.0, address, domain, now()),
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

pub(crate) fn set_request_final_delivery(
    tx: &Transaction<'_>,
    name: &UserName,
    on: bool,
) -> Result<Account, StoreError> {
    let changed = tx
        .exec(
            "UPDATE users SET request_final_delivery = ?2 WHERE name = ?1",
            (name.as_str(), on),
        )
        .map_err(StoreError::sqlite("updating a user"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::User,
            name: name.to_string(),
        });
    }
    account(tx, name)
}
