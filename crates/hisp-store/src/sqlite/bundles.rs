//! Trust bundles in SQLite.

use super::cached::Cached;
use rusqlite::{Row, Transaction};

use super::directory::duplicate_or;
use super::rows::{domain_at, domain_id, now, parsed, time_at, time_opt};
use crate::bundle::{
    BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle, MIN_REFRESH_SECS,
};
use crate::error::{Entity, StoreError};
use hisp_address::Domain;

const SELECT: &str = "SELECT b.id, d.name, b.source, b.direction, b.refresh_secs, \
    b.last_good, b.last_good_at, b.last_fetched_at, b.last_error, b.added_at \
    FROM bundles b JOIN domains d ON d.id = b.domain_id";

pub(crate) fn add(tx: &Transaction<'_>, bundle: &NewBundle) -> Result<BundleRecord, StoreError> {
    if bundle.refresh_secs < MIN_REFRESH_SECS {
        return Err(StoreError::Invalid {
            what: "refresh interval",
            value: bundle.refresh_secs.to_string(),
            reason: format!("it must be at least {MIN_REFRESH_SECS} seconds"),
        });
    }
    let domain = domain_id(tx, &bundle.domain)?;
    tx.exec(
        "INSERT INTO bundles (domain_id, kind, source, direction, refresh_secs, added_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (
            domain,
            bundle.source.kind(),
            bundle.source.location(),
            bundle.direction.as_str(),
            bundle.refresh_secs,
            now(),
        ),
    )
    .map_err(|e| {
        duplicate_or(
            e,
            Entity::Bundle,
            format!("{} of domain {}", bundle.source, bundle.domain),
            "adding a bundle",
        )
    })?;
    let id = tx.last_insert_rowid();
    tx.row(&format!("{SELECT} WHERE b.id = ?1"), [id], bundle_row)
        .map_err(StoreError::sqlite("reading a bundle"))
}

pub(crate) fn list(
    tx: &Transaction<'_>,
    domain: Option<&Domain>,
) -> Result<Vec<BundleRecord>, StoreError> {
    if let Some(d) = domain {
        domain_id(tx, d)?;
    }
    let mut stmt = tx
        .prepare_cached(&format!(
            "{SELECT} WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, b.id"
        ))
        .map_err(StoreError::sqlite("listing bundles"))?;
    let rows = stmt
        .query_map([domain.map(Domain::as_str)], bundle_row)
        .map_err(StoreError::sqlite("listing bundles"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing bundles"))
}

pub(crate) fn remove(
    tx: &Transaction<'_>,
    domain: &Domain,
    source: &BundleSource,
) -> Result<(), StoreError> {
    let id = domain_id(tx, domain)?;
    let removed = tx
        .exec(
            "DELETE FROM bundles WHERE domain_id = ?1 AND source = ?2",
            (id, source.location()),
        )
        .map_err(StoreError::sqlite("removing a bundle"))?;
    if removed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::Bundle,
            name: format!("{source} of domain {domain}"),
        });
    }
    Ok(())
}

pub(crate) fn record_fetch(
    tx: &Transaction<'_>,
    id: BundleId,
    fetch: &BundleFetch,
) -> Result<(), StoreError> {
    let changed = match fetch {
        BundleFetch::Good { bytes, at } => tx.exec(
            "UPDATE bundles SET last_good = ?2, last_good_at = ?3, last_fetched_at = ?3, \
             last_error = NULL WHERE id = ?1",
            (id.0, bytes, at.unix_timestamp()),
        ),
        // The last good copy stays: a failed refresh never removes trust
        // that was in force, nor adds any.
        BundleFetch::Failed { error, at } => tx.exec(
            "UPDATE bundles SET last_fetched_at = ?2, last_error = ?3 WHERE id = ?1",
            (id.0, at.unix_timestamp(), error),
        ),
    }
    .map_err(StoreError::sqlite("recording a bundle fetch"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            entity: Entity::Bundle,
            name: format!("#{}", id.0),
        });
    }
    Ok(())
}

fn bundle_row(r: &Row<'_>) -> rusqlite::Result<BundleRecord> {
    Ok(BundleRecord {
        id: BundleId(r.get(0)?),
        domain: domain_at(r, 1)?,
        source: parsed(r, 2, "bundle source", |s| BundleSource::parse(s).ok())?,
        direction: parsed(r, 3, "direction", |s| s.parse().ok())?,
        refresh_secs: r.get(4)?,
        last_good: r.get(5)?,
        last_good_at: time_opt(r, 6)?,
        last_fetched_at: time_opt(r, 7)?,
        last_error: r.get(8)?,
        added_at: time_at(r, 9)?,
    })
}
