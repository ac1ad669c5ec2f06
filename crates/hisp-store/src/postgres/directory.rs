//! Domains, addresses and their certificates, trust anchors and bundles in
//! PostgreSQL: the directory and trust CRUD, no audit events and no
//! decisions beyond what a constraint says. A local part is looked up by
//! its lower-cased key (`addresses.local_part_key`); text is ordered
//! `COLLATE "C"` (byte order), as SQLite orders it.

use crate::directory::check_binding;
use ::postgres::{Row, Transaction};

use super::rows::{
    cert_info_at, col, corrupt, domain_at, is_unique_violation, local_key, now, parsed, time_at,
    time_opt, CERT_INFO_COLUMNS,
};
use crate::anchor::{AnchorId, AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::bundle::{
    BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle, MIN_REFRESH_SECS,
};
use crate::cert::{CertInfo, CertUsage, NewCertificate, PrivateKeyPem};
use crate::directory::{AddressRecord, CertificateId, CertificateRecord, DomainRecord, Owner};
use crate::error::{Entity, StoreError};
use hisp_address::{DirectAddress, Domain};

/// Maps a unique violation to Duplicate, anything else to a database failure.
pub(super) fn duplicate_or(
    e: ::postgres::Error,
    entity: Entity,
    name: String,
    context: &'static str,
) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Duplicate { entity, name }
    } else {
        StoreError::postgres(context)(e)
    }
}

/// The id of a local domain, or NotFound.
pub(super) fn domain_id(tx: &mut Transaction<'_>, domain: &Domain) -> Result<i64, StoreError> {
    tx.query_opt(
        "SELECT id FROM domains WHERE name = $1",
        &[&domain.as_str()],
    )
    .map_err(StoreError::postgres("looking up a domain"))?
    .map(|r| col(&r, 0))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Domain,
        name: domain.to_string(),
    })
}

/// The id of a local address, found without regard to the letter case of
/// its local part, if it is local.
pub(super) fn address_id_opt(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
) -> Result<Option<i64>, StoreError> {
    tx.query_opt(
        "SELECT a.id FROM addresses a JOIN domains d ON d.id = a.domain_id
         WHERE d.name = $1 AND a.local_part_key = $2",
        &[&address.domain().as_str(), &local_key(address)],
    )
    .map_err(StoreError::postgres("looking up an address"))?
    .map(|r| col(&r, 0))
    .transpose()
}

/// The id of a local address, or NotFound.
pub(super) fn address_id(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
) -> Result<i64, StoreError> {
    address_id_opt(tx, address)?.ok_or_else(|| StoreError::NotFound {
        entity: Entity::Address,
        name: address.to_string(),
    })
}

fn domain_row(r: &Row) -> Result<DomainRecord, StoreError> {
    Ok(DomainRecord {
        domain: domain_at(r, 0)?,
        added_at: time_at(r, 1)?,
    })
}

pub(super) fn add_domain(
    tx: &mut Transaction<'_>,
    domain: &Domain,
    certificates: &[NewCertificate],
) -> Result<DomainRecord, StoreError> {
    let owner = Owner::Domain(domain.clone());
    for c in certificates {
        check_binding(&owner, c)?;
    }
    tx.execute(
        "INSERT INTO domains (name, added_at) VALUES ($1, $2)",
        &[&domain.as_str(), &now()],
    )
    .map_err(|e| duplicate_or(e, Entity::Domain, domain.to_string(), "adding a domain"))?;
    for c in certificates {
        insert_certificate(tx, &owner, c)?;
    }
    self::domain(tx, domain)
}

pub(super) fn domain(
    tx: &mut Transaction<'_>,
    domain: &Domain,
) -> Result<DomainRecord, StoreError> {
    tx.query_opt(
        "SELECT name, added_at FROM domains WHERE name = $1",
        &[&domain.as_str()],
    )
    .map_err(StoreError::postgres("reading a domain"))?
    .map(|r| domain_row(&r))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Domain,
        name: domain.to_string(),
    })
}

pub(super) fn domains(tx: &mut Transaction<'_>) -> Result<Vec<DomainRecord>, StoreError> {
    tx.query(
        "SELECT name, added_at FROM domains ORDER BY name COLLATE \"C\"",
        &[],
    )
    .map_err(StoreError::postgres("listing domains"))?
    .iter()
    .map(domain_row)
    .collect()
}

pub(super) fn remove_domain(tx: &mut Transaction<'_>, domain: &Domain) -> Result<(), StoreError> {
    let id = domain_id(tx, domain)?;
    let row = tx
        .query_one(
            "SELECT count(*) FROM addresses WHERE domain_id = $1",
            &[&id],
        )
        .map_err(StoreError::postgres("counting a domain's addresses"))?;
    let addresses: i64 = col(&row, 0)?;
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
    // Anchors, bundles, domain certificates and grants go by ON DELETE CASCADE.
    tx.execute("DELETE FROM domains WHERE id = $1", &[&id])
        .map_err(StoreError::postgres("removing a domain"))?;
    Ok(())
}

const ADDRESS_SELECT: &str = "SELECT a.local_part, d.name, a.added_at FROM addresses a
     JOIN domains d ON d.id = a.domain_id";

fn address_row(r: &Row) -> Result<AddressRecord, StoreError> {
    let local: &str = col(r, 0)?;
    let domain: &str = col(r, 1)?;
    Ok(AddressRecord {
        address: DirectAddress::parse(&format!("{local}@{domain}"))
            .map_err(|_| corrupt("address"))?,
        added_at: time_at(r, 2)?,
    })
}

pub(super) fn add_address(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
    certificates: &[NewCertificate],
) -> Result<AddressRecord, StoreError> {
    let owner = Owner::Address(address.clone());
    for c in certificates {
        check_binding(&owner, c)?;
    }
    let domain = domain_id(tx, address.domain())?;
    // Looked up first (a failed INSERT ends the transaction) to name the
    // address as it is stored, which may differ in case.
    if let Ok(existing) = self::address(tx, address) {
        return Err(StoreError::Duplicate {
            entity: Entity::Address,
            name: existing.address.to_string(),
        });
    }
    tx.execute(
        "INSERT INTO addresses (domain_id, local_part, added_at) VALUES ($1, $2, $3)",
        &[&domain, &address.local_part(), &now()],
    )
    .map_err(|e| duplicate_or(e, Entity::Address, address.to_string(), "adding an address"))?;
    for c in certificates {
        insert_certificate(tx, &owner, c)?;
    }
    self::address(tx, address)
}

pub(super) fn address(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
) -> Result<AddressRecord, StoreError> {
    tx.query_opt(
        &format!("{ADDRESS_SELECT} WHERE d.name = $1 AND a.local_part_key = $2"),
        &[&address.domain().as_str(), &local_key(address)],
    )
    .map_err(StoreError::postgres("reading an address"))?
    .map(|r| address_row(&r))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound {
        entity: Entity::Address,
        name: address.to_string(),
    })
}

pub(super) fn addresses(
    tx: &mut Transaction<'_>,
    domain: Option<&Domain>,
) -> Result<Vec<AddressRecord>, StoreError> {
    if let Some(d) = domain {
        domain_id(tx, d)?;
    }
    tx.query(
        &format!(
            "{ADDRESS_SELECT} WHERE $1::text IS NULL OR d.name = $1
             ORDER BY d.name COLLATE \"C\", a.local_part_key COLLATE \"C\", a.id"
        ),
        &[&domain.map(Domain::as_str)],
    )
    .map_err(StoreError::postgres("listing addresses"))?
    .iter()
    .map(address_row)
    .collect()
}

pub(super) fn remove_address(
    tx: &mut Transaction<'_>,
    address: &DirectAddress,
) -> Result<(), StoreError> {
    let id = address_id(tx, address)?;
    // Certificates, keys, grants and the portal account go by ON DELETE CASCADE.
    tx.execute("DELETE FROM addresses WHERE id = $1", &[&id])
        .map_err(StoreError::postgres("removing an address"))?;
    Ok(())
}

pub(super) fn add_certificate(
    tx: &mut Transaction<'_>,
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
    tx: &mut Transaction<'_>,
    owner: &Owner,
    c: &NewCertificate,
) -> Result<CertificateId, StoreError> {
    let (address_id, domain_id): (Option<i64>, Option<i64>) = match owner {
        Owner::Address(a) => (Some(address_id(tx, a)?), None),
        Owner::Domain(d) => (None, Some(self::domain_id(tx, d)?)),
    };
    let info: &CertInfo = &c.info;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO certificates (address_id, domain_id, der, private_key, usage, \
                 {CERT_INFO_COLUMNS}, added_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id"
            ),
            &[
                &address_id,
                &domain_id,
                &c.der,
                &c.key.as_ref().map(PrivateKeyPem::as_bytes),
                &c.usage.as_str(),
                &info.subject,
                &info.issuer,
                &info.serial.as_str(),
                &&info.fingerprint.as_bytes()[..],
                &info.not_before.unix_timestamp(),
                &info.not_after.unix_timestamp(),
                &now(),
            ],
        )
        .map_err(|e| {
            duplicate_or(
                e,
                Entity::Certificate,
                format!("{} (fingerprint {})", info.subject, info.fingerprint),
                "adding a certificate",
            )
        })?;
    Ok(CertificateId(col(&row, 0)?))
}

pub(super) fn certificates(
    tx: &mut Transaction<'_>,
    owner: Option<&Owner>,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let (filter, id) = match owner {
        None => ("", None),
        Some(Owner::Address(a)) => ("WHERE c.address_id = $1", Some(address_id(tx, a)?)),
        Some(Owner::Domain(d)) => ("WHERE c.domain_id = $1", Some(domain_id(tx, d)?)),
    };
    let sql = format!(
        "SELECT a.local_part, coalesce(ad.name, d.name), c.id, c.der, c.private_key, c.usage, \
         c.{}, c.added_at \
         FROM certificates c \
         LEFT JOIN addresses a ON a.id = c.address_id \
         LEFT JOIN domains ad ON ad.id = a.domain_id \
         LEFT JOIN domains d ON d.id = c.domain_id \
         {filter} \
         ORDER BY coalesce(ad.name, d.name) COLLATE \"C\", a.local_part IS NOT NULL, \
                  a.local_part_key COLLATE \"C\", c.id",
        CERT_INFO_COLUMNS.replace(", ", ", c.")
    );
    let rows = match id {
        Some(id) => tx.query(&sql, &[&id]),
        None => tx.query(&sql, &[]),
    }
    .map_err(StoreError::postgres("listing certificates"))?;
    rows.iter().map(certificate_row).collect()
}

fn certificate_row(r: &Row) -> Result<CertificateRecord, StoreError> {
    let local: Option<&str> = col(r, 0)?;
    let domain = domain_at(r, 1)?;
    let owner = match local {
        None => Owner::Domain(domain),
        Some(local) => Owner::Address(
            DirectAddress::parse(&format!("{local}@{domain}")).map_err(|_| corrupt("address"))?,
        ),
    };
    Ok(CertificateRecord {
        id: CertificateId(col(r, 2)?),
        owner,
        der: col(r, 3)?,
        private_key: col::<Option<Vec<u8>>>(r, 4)?.map(PrivateKeyPem::from_db),
        usage: parsed(r, 5, "usage", CertUsage::from_db)?,
        info: cert_info_at(r, 6)?,
        added_at: time_at(r, 12)?,
    })
}

const ANCHOR_SELECT: &str = "SELECT a.id, d.name, a.direction, a.der, \
    a.subject, a.issuer, a.serial, a.fingerprint, a.not_before, a.not_after, a.added_at \
    FROM anchors a JOIN domains d ON d.id = a.domain_id";

fn anchor_row(r: &Row) -> Result<AnchorRecord, StoreError> {
    Ok(AnchorRecord {
        id: AnchorId(col(r, 0)?),
        domain: domain_at(r, 1)?,
        direction: parsed(r, 2, "direction", |s| s.parse().ok())?,
        der: col(r, 3)?,
        info: cert_info_at(r, 4)?,
        added_at: time_at(r, 10)?,
    })
}

pub(super) fn add_anchors(
    tx: &mut Transaction<'_>,
    domain: &Domain,
    direction: Direction,
    anchors: &[NewAnchor],
) -> Result<Vec<AnchorRecord>, StoreError> {
    let id = domain_id(tx, domain)?;
    let mut out = Vec::with_capacity(anchors.len());
    for anchor in anchors {
        let info = &anchor.info;
        let row = tx
            .query_one(
                "INSERT INTO anchors (domain_id, direction, der, subject, issuer, serial, \
                 fingerprint, not_before, not_after, added_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &id,
                    &direction.as_str(),
                    &anchor.der,
                    &info.subject,
                    &info.issuer,
                    &info.serial.as_str(),
                    &&info.fingerprint.as_bytes()[..],
                    &info.not_before.unix_timestamp(),
                    &info.not_after.unix_timestamp(),
                    &now(),
                ],
            )
            .map_err(|e| {
                duplicate_or(
                    e,
                    Entity::Anchor,
                    format!(
                        "{} (fingerprint {}) of domain {domain}",
                        info.subject, info.fingerprint
                    ),
                    "adding an anchor",
                )
            })?;
        let anchor_id: i64 = col(&row, 0)?;
        let row = tx
            .query_one(&format!("{ANCHOR_SELECT} WHERE a.id = $1"), &[&anchor_id])
            .map_err(StoreError::postgres("reading an anchor"))?;
        out.push(anchor_row(&row)?);
    }
    Ok(out)
}

pub(super) fn anchors(
    tx: &mut Transaction<'_>,
    domain: Option<&Domain>,
    flow: Option<Flow>,
) -> Result<Vec<AnchorRecord>, StoreError> {
    if let Some(d) = domain {
        domain_id(tx, d)?;
    }
    // The direction names an anchor covering `flow` may carry.
    let directions: [&str; 2] = match flow {
        None => ["in", "out"],
        Some(Flow::Incoming) => ["in", "in"],
        Some(Flow::Outgoing) => ["out", "out"],
    };
    tx.query(
        &format!(
            "{ANCHOR_SELECT} WHERE ($1::text IS NULL OR d.name = $1) \
             AND a.direction IN ($2, $3, 'both') \
             ORDER BY d.name COLLATE \"C\", a.id"
        ),
        &[&domain.map(Domain::as_str), &directions[0], &directions[1]],
    )
    .map_err(StoreError::postgres("listing anchors"))?
    .iter()
    .map(anchor_row)
    .collect()
}

pub(super) fn remove_anchor(
    tx: &mut Transaction<'_>,
    domain: &Domain,
    selector: &AnchorSelector,
) -> Result<AnchorRecord, StoreError> {
    let matches: Vec<AnchorRecord> = anchors(tx, Some(domain), None)?
        .into_iter()
        .filter(|a| match selector {
            AnchorSelector::Fingerprint(fp) => a.info.fingerprint == *fp,
            AnchorSelector::Serial(s) => a.info.serial == *s,
        })
        .collect();
    let name = || format!("{selector} of domain {domain}");
    let anchor = match <[AnchorRecord; 1]>::try_from(matches) {
        Ok([one]) => one,
        Err(matches) if matches.is_empty() => {
            return Err(StoreError::NotFound {
                entity: Entity::Anchor,
                name: name(),
            })
        }
        Err(matches) => {
            return Err(StoreError::Ambiguous {
                entity: Entity::Anchor,
                name: name(),
                candidates: matches
                    .iter()
                    .map(|a| format!("{} (fingerprint {})", a.info.subject, a.info.fingerprint))
                    .collect(),
            })
        }
    };
    tx.execute("DELETE FROM anchors WHERE id = $1", &[&anchor.id.0])
        .map_err(StoreError::postgres("removing an anchor"))?;
    Ok(anchor)
}

const BUNDLE_SELECT: &str = "SELECT b.id, d.name, b.source, b.direction, b.refresh_secs, \
    b.last_good, b.last_good_at, b.last_fetched_at, b.last_error, b.added_at \
    FROM bundles b JOIN domains d ON d.id = b.domain_id";

fn bundle_row(r: &Row) -> Result<BundleRecord, StoreError> {
    Ok(BundleRecord {
        id: BundleId(col(r, 0)?),
        domain: domain_at(r, 1)?,
        source: parsed(r, 2, "bundle source", |s| BundleSource::parse(s).ok())?,
        direction: parsed(r, 3, "direction", |s| s.parse().ok())?,
        refresh_secs: super::rows::count_at(r, 4)?,
        last_good: col(r, 5)?,
        last_good_at: time_opt(r, 6)?,
        last_fetched_at: time_opt(r, 7)?,
        last_error: col(r, 8)?,
        added_at: time_at(r, 9)?,
    })
}

pub(super) fn add_bundle(
    tx: &mut Transaction<'_>,
    bundle: &NewBundle,
) -> Result<BundleRecord, StoreError> {
    if bundle.refresh_secs < MIN_REFRESH_SECS {
        return Err(StoreError::Invalid {
            what: "refresh interval",
            value: bundle.refresh_secs.to_string(),
            reason: format!("it must be at least {MIN_REFRESH_SECS} seconds"),
        });
    }
    let domain = domain_id(tx, &bundle.domain)?;
    let refresh_secs = i64::from(bundle.refresh_secs);
    let row = tx
        .query_one(
            "INSERT INTO bundles (domain_id, kind, source, direction, refresh_secs, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &domain,
                &bundle.source.kind(),
                &bundle.source.location(),
                &bundle.direction.as_str(),
                &refresh_secs,
                &now(),
            ],
        )
        .map_err(|e| {
            duplicate_or(
                e,
                Entity::Bundle,
                format!("{} of domain {}", bundle.source, bundle.domain),
                "adding a bundle",
            )
        })?;
    let id: i64 = col(&row, 0)?;
    let row = tx
        .query_one(&format!("{BUNDLE_SELECT} WHERE b.id = $1"), &[&id])
        .map_err(StoreError::postgres("reading a bundle"))?;
    bundle_row(&row)
}

pub(super) fn bundles(
    tx: &mut Transaction<'_>,
    domain: Option<&Domain>,
) -> Result<Vec<BundleRecord>, StoreError> {
    if let Some(d) = domain {
        domain_id(tx, d)?;
    }
    tx.query(
        &format!(
            "{BUNDLE_SELECT} WHERE $1::text IS NULL OR d.name = $1 \
             ORDER BY d.name COLLATE \"C\", b.id"
        ),
        &[&domain.map(Domain::as_str)],
    )
    .map_err(StoreError::postgres("listing bundles"))?
    .iter()
    .map(bundle_row)
    .collect()
}

pub(super) fn remove_bundle(
    tx: &mut Transaction<'_>,
    domain: &Domain,
    source: &BundleSource,
) -> Result<(), StoreError> {
    let id = domain_id(tx, domain)?;
    let removed = tx
        .execute(
            "DELETE FROM bundles WHERE domain_id = $1 AND source = $2",
            &[&id, &source.location()],
        )
        .map_err(StoreError::postgres("removing a bundle"))?;
    if removed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::Bundle,
            name: format!("{source} of domain {domain}"),
        });
    }
    Ok(())
}

pub(super) fn record_bundle_fetch(
    tx: &mut Transaction<'_>,
    id: BundleId,
    fetch: &BundleFetch,
) -> Result<(), StoreError> {
    let changed = match fetch {
        BundleFetch::Good { bytes, at } => tx.execute(
            "UPDATE bundles SET last_good = $2, last_good_at = $3, last_fetched_at = $3, \
             last_error = NULL WHERE id = $1",
            &[&id.0, bytes, &at.unix_timestamp()],
        ),
        // The last good copy stays: a failed refresh never removes trust
        // that was in force, nor adds any.
        BundleFetch::Failed { error, at } => tx.execute(
            "UPDATE bundles SET last_fetched_at = $2, last_error = $3 WHERE id = $1",
            &[&id.0, &at.unix_timestamp(), error],
        ),
    }
    .map_err(StoreError::postgres("recording a bundle fetch"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::Bundle,
            name: format!("#{}", id.0),
        });
    }
    Ok(())
}
