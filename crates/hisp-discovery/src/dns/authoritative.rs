//! Asking a zone's authoritative name servers directly, for when the
//! configured resolver fails or refuses CERT queries (issue 4; Certificate
//! Discovery for Direct: some resolvers and middleboxes drop unusual types).
//!
//! The zone is found by asking the configured resolver for NS records at the
//! owner name and then at each parent; the name servers' addresses come from
//! the same resolver. hisp does not iterate from the root itself: when the
//! resolver answers nothing at all, the lookup stays a temporary failure.

use std::net::IpAddr;

use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use tracing::{debug, info};

use super::answer::{display_name, Answer};
use super::resolver::{self, Timing};

/// At most this many name server addresses are asked.
const MAX_SERVERS: usize = 4;

/// The NS targets of the closest enclosing zone of `owner` (the owner name
/// itself, then its parents, never the root) that the resolver will name.
async fn zone_name_servers(resolver: &TokioResolver, owner: &Name) -> Option<(Name, Vec<Name>)> {
    let mut candidate = owner.clone();
    while !candidate.is_root() {
        match resolver.lookup(candidate.clone(), RecordType::NS).await {
            Ok(lookup) => {
                let targets: Vec<Name> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NS(ns) => Some(ns.0.clone()),
                        _ => None,
                    })
                    .collect();
                if !targets.is_empty() {
                    return Some((candidate, targets));
                }
            }
            Err(e) => {
                debug!(zone = %candidate, error = %e, "no NS records here; trying the parent")
            }
        }
        candidate = candidate.base_name();
    }
    None
}

/// The addresses of `targets`, as the resolver gives them.
async fn addresses(resolver: &TokioResolver, targets: &[Name]) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for target in targets {
        match resolver.lookup_ip(target.clone()).await {
            Ok(found) => ips.extend(found.iter()),
            Err(e) => debug!(ns = %target, error = %e, "no address for name server"),
        }
        if ips.len() >= MAX_SERVERS {
            break;
        }
    }
    ips.truncate(MAX_SERVERS);
    ips
}

/// Asks the authoritative servers of `owner`'s zone (on `port`, 53 in
/// production) for its CERT records.
pub(crate) async fn query_cert(
    resolver: &TokioResolver,
    owner: &Name,
    port: u16,
    timing: Timing,
) -> Answer {
    let Some((zone, targets)) = zone_name_servers(resolver, owner).await else {
        return Answer::Failed("the zone's name servers could not be found either".into());
    };
    let ips = addresses(resolver, &targets).await;
    if ips.is_empty() {
        return Answer::Failed(format!(
            "no address for the name servers of {}",
            display_name(&zone)
        ));
    }
    info!(owner = %owner, zone = %zone, servers = ?ips, port, "asking the authoritative name servers directly");
    match resolver::authoritative(&ips, port, timing) {
        Ok(direct) => resolver::query_cert(&direct, owner).await,
        Err(e) => Answer::Failed(e.to_string()),
    }
}
