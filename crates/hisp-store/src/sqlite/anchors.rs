//! Trust anchors in SQLite.

use super::cached::Cached;
use rusqlite::{Row, Transaction};

use super::directory::duplicate_or;
use super::rows::{cert_info_at, cert_info_values, domain_at, domain_id, now, parsed, time_at};
use crate::anchor::{AnchorId, AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::error::{Entity, StoreError};
use hisp_address::Domain;

const SELECT: &str = "SELECT a.id, d.name, a.direction, a.der, \
    a.subject, a.issuer, a.serial, a.fingerprint, a.not_before, a.not_after, a.added_at \
    FROM anchors a JOIN domains d ON d.id = a.domain_id";

pub(crate) fn add(
    tx: &Transaction<'_>,
    domain: &Domain,
    direction: Direction,
    anchors: &[NewAnchor],
) -> Result<Vec<AnchorRecord>, StoreError> {
    let id = domain_id(tx, domain)?;
    let mut ids = Vec::with_capacity(anchors.len());
    for anchor in anchors {
        let (subject, issuer, serial, fingerprint, not_before, not_after) =
            cert_info_values(&anchor.info);
        tx.exec(
            "INSERT INTO anchors (domain_id, direction, der, subject, issuer, serial, \
             fingerprint, not_before, not_after, added_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                id,
                direction.as_str(),
                anchor.der,
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
                Entity::Anchor,
                format!(
                    "{} (fingerprint {}) of domain {domain}",
                    anchor.info.subject, anchor.info.fingerprint
                ),
                "adding an anchor",
            )
        })?;
        ids.push(tx.last_insert_rowid());
    }
    let mut stmt = tx
        .prepare_cached(&format!("{SELECT} WHERE a.id = ?1"))
        .map_err(StoreError::sqlite("reading an anchor"))?;
    ids.into_iter()
        .map(|id| {
            stmt.query_row([id], anchor_row)
                .map_err(StoreError::sqlite("reading an anchor"))
        })
        .collect()
}

pub(crate) fn list(
    tx: &Transaction<'_>,
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
    let mut stmt = tx
        .prepare_cached(&format!(
            "{SELECT} WHERE (?1 IS NULL OR d.name = ?1) \
             AND a.direction IN (?2, ?3, 'both') \
             ORDER BY d.name, a.id"
        ))
        .map_err(StoreError::sqlite("listing anchors"))?;
    let rows = stmt
        .query_map(
            (domain.map(Domain::as_str), directions[0], directions[1]),
            anchor_row,
        )
        .map_err(StoreError::sqlite("listing anchors"))?;
    let anchors: Vec<AnchorRecord> = rows
        .collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("listing anchors"))?;
    debug_assert!(flow.is_none_or(|f| anchors.iter().all(|a| a.direction.covers(f))));
    Ok(anchors)
}

pub(crate) fn remove(
    tx: &Transaction<'_>,
    domain: &Domain,
    selector: &AnchorSelector,
) -> Result<AnchorRecord, StoreError> {
    domain_id(tx, domain)?;
    let matches: Vec<AnchorRecord> = list(tx, Some(domain), None)?
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
    tx.exec("DELETE FROM anchors WHERE id = ?1", [anchor.id.0])
        .map_err(StoreError::sqlite("removing an anchor"))?;
    Ok(anchor)
}

fn anchor_row(r: &Row<'_>) -> rusqlite::Result<AnchorRecord> {
    Ok(AnchorRecord {
        id: AnchorId(r.get(0)?),
        domain: domain_at(r, 1)?,
        direction: parsed(r, 2, "direction", |s| s.parse().ok())?,
        der: r.get(3)?,
        info: cert_info_at(r, 4)?,
        added_at: time_at(r, 10)?,
    })
}
