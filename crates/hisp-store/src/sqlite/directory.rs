//! Domains, addresses and their certificates in SQLite.

use super::cached::Cached;
use crate::directory::check_binding;
use rusqlite::{OptionalExtension, Row, Transaction};

use super::rows::{
    cert_info_at, cert_info_values, domain_at, domain_id, is_unique_violation, now, parsed,
    time_at, CERT_INFO_COLUMNS,
};
use crate::cert::{CertUsage, NewCertificate, PrivateKeyPem};
use crate::directory::{AddressRecord, CertificateId, CertificateRecord, DomainRecord, Owner};
use crate::error::{Entity, StoreError};
use hisp_address::DirectAddress;
use hisp_address::Domain;

pub(crate) fn add_domain(
    tx: &Transaction<'_>,
    domain: &Domain,
    certificates: &[NewCertificate],
) -> Result<DomainRecord, StoreError> {
    let owner = Owner::Domain(domain.clone());
    for c in certificates {
        check_binding(&owner, c)?;
    }
    let added_at = now();
    tx.exec(
        "INSERT INTO domains (name, added_at) VALUES (?1, ?2)",
        (domain.as_str(), added_at),
    )
    .map_err(|e| duplicate_or(e, Entity::Domain, domain.to_string(), "adding a domain"))?;
    for c in certificates {
        insert_certificate(tx, &owner, c)?;
    }
    domain_record(tx, domain)
}

pub(crate) fn domain(tx: &Transaction<'_>, domain: &Domain) -> Result<DomainRecord, StoreError> {
    domain_record(tx, domain)
}

fn domain_record(tx: &Transaction<'_>, domain: &Domain) -> Result<DomainRecord, StoreError> {
    tx.row(
        "SELECT name, added_at FROM domains WHERE name = ?1",
        [domain.as_str()],
        domain_row,
    )
    .optional()
    .map_err(StoreError::sqlite("reading a domain"))?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Domain,
        name: domain.to_string(),
    })
}

fn domain_row(r: &Row<'_>) -> rusqlite::Result<DomainRecord> {
    Ok(DomainRecord {
        domain: domain_at(r, 0)?,
        added_at: time_at(r, 1)?,
    })
}

pub(crate) fn domains(tx: &Transaction<'_>) -> Result<Vec<DomainRecord>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT name, added_at FROM domains ORDER BY name")
        .map_err(StoreError::sqlite("listing domains"))?;
    let rows = stmt
        .query_map([], domain_row)
        .map_err(StoreError::sqlite("listing domains"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing domains"))
}

pub(crate) fn remove_domain(tx: &Transaction<'_>, domain: &Domain) -> Result<(), StoreError> {
    let id = domain_id(tx, domain)?;
    let addresses: i64 = tx
        .row(
            "SELECT count(*) FROM addresses WHERE domain_id = ?1",
            [id],
            |r| r.get(0),
        )
        .map_err(StoreError::sqlite("counting a domain's addresses"))?;
    if addresses > 0 {
        return Err(StoreError::InUse {
            entity: Entity::Domain,
            name: domain.to_string(),
            reason: format!(
                "it has {addresses} address{}; remove {} first",
                if addresses == 1 { "" } else { "es" },
                if addresses == 1 { "it" } else { "them" }
            ),
        });
    }
    // Anchors, bundles and domain certificates go by ON DELETE CASCADE.
    tx.exec("DELETE FROM domains WHERE id = ?1", [id])
        .map_err(StoreError::sqlite("removing a domain"))?;
    Ok(())
}

pub(crate) fn add_address(
    tx: &Transaction<'_>,
    address: &DirectAddress,
    certificates: &[NewCertificate],
) -> Result<AddressRecord, StoreError> {
    let owner = Owner::Address(address.clone());
    for c in certificates {
        check_binding(&owner, c)?;
    }
    let domain = domain_id(tx, address.domain())?;
    tx.exec(
        "INSERT INTO addresses (domain_id, local_part, added_at) VALUES (?1, ?2, ?3)",
        (domain, address.local_part(), now()),
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            // Name the address as it is stored, which may differ in case.
            let existing = self::address(tx, address)
                .map(|r| r.address.to_string())
                .unwrap_or_else(|_| address.to_string());
            StoreError::Duplicate {
                entity: Entity::Address,
                name: existing,
            }
        } else {
            StoreError::sqlite("adding an address")(e)
        }
    })?;
    for c in certificates {
        insert_certificate(tx, &owner, c)?;
    }
    self::address(tx, address)
}

pub(crate) fn address(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<AddressRecord, StoreError> {
    // local_part is COLLATE NOCASE: the comparison ignores letter case.
    tx.row(
        "SELECT a.local_part, d.name, a.added_at FROM addresses a
         JOIN domains d ON d.id = a.domain_id
         WHERE d.name = ?1 AND a.local_part = ?2",
        (address.domain().as_str(), address.local_part()),
        address_row,
    )
    .optional()
    .map_err(StoreError::sqlite("reading an address"))?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Address,
        name: address.to_string(),
    })
}

fn address_row(r: &Row<'_>) -> rusqlite::Result<AddressRecord> {
    let local: String = r.get(0)?;
    let domain: String = r.get(1)?;
    let address = DirectAddress::parse(&format!("{local}@{domain}")).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            "bad address".into(),
        )
    })?;
    Ok(AddressRecord {
        address,
        added_at: time_at(r, 2)?,
    })
}

pub(crate) fn addresses(
    tx: &Transaction<'_>,
    domain: Option<&Domain>,
) -> Result<Vec<AddressRecord>, StoreError> {
    if let Some(d) = domain {
        domain_id(tx, d)?;
    }
    let mut stmt = tx
        .prepare_cached(
            "SELECT a.local_part, d.name, a.added_at FROM addresses a
             JOIN domains d ON d.id = a.domain_id
             WHERE ?1 IS NULL OR d.name = ?1
             ORDER BY d.name, a.local_part, a.id",
        )
        .map_err(StoreError::sqlite("listing addresses"))?;
    let rows = stmt
        .query_map([domain.map(Domain::as_str)], address_row)
        .map_err(StoreError::sqlite("listing addresses"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing addresses"))
}

pub(crate) fn remove_address(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<(), StoreError> {
    let id = address_id(tx, address)?;
    // Certificates and keys go by ON DELETE CASCADE.
    tx.exec("DELETE FROM addresses WHERE id = ?1", [id])
        .map_err(StoreError::sqlite("removing an address"))?;
    Ok(())
}

pub(crate) fn address_id(tx: &Transaction<'_>, address: &DirectAddress) -> Result<i64, StoreError> {
    address_id_opt(tx, address)?.ok_or_else(|| StoreError::NotFound {
        entity: Entity::Address,
        name: address.to_string(),
    })
}

/// The id of a local address, found without regard to the letter case of
/// its local part (the column's `COLLATE NOCASE`), if it is local.
pub(crate) fn address_id_opt(
    tx: &Transaction<'_>,
    address: &DirectAddress,
) -> Result<Option<i64>, StoreError> {
    tx.row(
        "SELECT a.id FROM addresses a JOIN domains d ON d.id = a.domain_id
         WHERE d.name = ?1 AND a.local_part = ?2",
        (address.domain().as_str(), address.local_part()),
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("looking up an address"))
}

pub(crate) fn add_certificate(
    tx: &Transaction<'_>,
    owner: &Owner,
    certificate: &NewCertificate,
) -> Result<CertificateRecord, StoreError> {
    check_binding(owner, certificate)?;
    let id = insert_certificate(tx, owner, certificate)?;
    certificates(tx, Some(owner))?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| StoreError::NotFound {
            entity: Entity::Certificate,
            name: certificate.info.fingerprint.to_string(),
        })
}

fn insert_certificate(
    tx: &Transaction<'_>,
    owner: &Owner,
    c: &NewCertificate,
) -> Result<CertificateId, StoreError> {
    let (address_id, domain_id) = match owner {
        Owner::Address(a) => (Some(address_id(tx, a)?), None),
        Owner::Domain(d) => (None, Some(domain_id(tx, d)?)),
    };
    let (subject, issuer, serial, fingerprint, not_before, not_after) = cert_info_values(&c.info);
    tx.exec(
        &format!(
            "INSERT INTO certificates (address_id, domain_id, der, private_key, usage, \
             {CERT_INFO_COLUMNS}, added_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        rusqlite::params![
            address_id,
            domain_id,
            c.der,
            c.key.as_ref().map(PrivateKeyPem::as_bytes),
            c.usage.as_str(),
            subject,
            issuer,
            serial,
            fingerprint,
            not_before,
            not_after,
            now(),
        ],
    )
    .map_err(|e| {
        duplicate_or(
            e,
            Entity::Certificate,
            format!("{} (fingerprint {})", c.info.subject, c.info.fingerprint),
            "adding a certificate",
        )
    })?;
    Ok(CertificateId(tx.last_insert_rowid()))
}

pub(crate) fn certificates(
    tx: &Transaction<'_>,
    owner: Option<&Owner>,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let (filter, id) = match owner {
        None => ("", None),
        Some(Owner::Address(a)) => ("WHERE c.address_id = ?1", Some(address_id(tx, a)?)),
        Some(Owner::Domain(d)) => ("WHERE c.domain_id = ?1", Some(domain_id(tx, d)?)),
    };
    let sql = format!(
        "SELECT a.local_part, coalesce(ad.name, d.name), c.id, c.der, c.private_key, c.usage, \
         c.{}, c.added_at \
         FROM certificates c \
         LEFT JOIN addresses a ON a.id = c.address_id \
         LEFT JOIN domains ad ON ad.id = a.domain_id \
         LEFT JOIN domains d ON d.id = c.domain_id \
         {filter} \
         ORDER BY coalesce(ad.name, d.name), a.local_part IS NOT NULL, a.local_part, c.id",
        CERT_INFO_COLUMNS.replace(", ", ", c.")
    );
    let mut stmt = tx
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("listing certificates"))?;
    let rows = match id {
        Some(id) => stmt.query_map([id], certificate_row),
        None => stmt.query_map([], certificate_row),
    }
    .map_err(StoreError::sqlite("listing certificates"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing certificates"))
}

fn certificate_row(r: &Row<'_>) -> rusqlite::Result<CertificateRecord> {
    let local: Option<String> = r.get(0)?;
    let domain = domain_at(r, 1)?;
    let owner = match local {
        None => Owner::Domain(domain),
        Some(local) => Owner::Address(DirectAddress::parse(&format!("{local}@{domain}")).map_err(
            |_| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    "bad address".into(),
                )
            },
        )?),
    };
    Ok(CertificateRecord {
        id: CertificateId(r.get(2)?),
        owner,
        der: r.get(3)?,
        private_key: r.get::<_, Option<Vec<u8>>>(4)?.map(PrivateKeyPem::from_db),
        usage: parsed(r, 5, "usage", CertUsage::from_db)?,
        info: cert_info_at(r, 6)?,
        added_at: time_at(r, 12)?,
    })
}

/// Maps a UNIQUE failure to Duplicate, anything else to a database failure.
pub(crate) fn duplicate_or(
    e: rusqlite::Error,
    entity: Entity,
    name: String,
    context: &'static str,
) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Duplicate { entity, name }
    } else {
        StoreError::sqlite(context)(e)
    }
}
