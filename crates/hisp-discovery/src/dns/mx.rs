//! Where a domain takes its mail: the MX records (RFC 5321 §5.1), in
//! preference order, with each exchanger's addresses.
//!
//! - MX records present: their targets, lowest preference first (equal
//!   preferences keep the order the name server gave).
//! - A single MX with the root as target (RFC 7505 null MX): the domain takes
//!   no mail, a permanent failure.
//! - No MX record (NODATA) but the name exists: the domain itself is the
//!   implicit exchanger, preference 0 (RFC 5321 §5.1).
//! - NXDOMAIN: permanent. SERVFAIL, REFUSED, timeouts: temporary.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use thiserror::Error;
use tracing::debug;

use super::answer::{classify_error, display_name, Answer};
use super::{resolver, timing, DnsConfig, DnsError};

/// One mail exchanger of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanger {
    /// MX preference (lower is tried first).
    pub preference: u16,
    /// The exchanger's host name, without the trailing dot.
    pub host: String,
    /// Its IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
}

/// Why a domain's exchangers could not be found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MxError {
    /// The domain does not take mail (no such domain, null MX, no address).
    #[error("{0}")]
    Permanent(String),
    /// DNS did not answer usefully; asking again later may work.
    #[error("{0}")]
    Temporary(String),
}

impl MxError {
    /// Whether asking again later may give another answer.
    pub fn is_temporary(&self) -> bool {
        matches!(self, MxError::Temporary(_))
    }
}

/// Finds mail exchangers through the configured name servers.
#[derive(Debug)]
pub struct MxResolver {
    resolver: TokioResolver,
}

impl MxResolver {
    /// A resolver asking `config.name_servers` (or the system's), with the
    /// same timeout and attempts as CERT discovery. hickory's cache is off;
    /// MX answers are asked afresh for every delivery attempt.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        Ok(MxResolver {
            resolver: resolver::configured(&config.name_servers, timing(config))?,
        })
    }

    /// The exchangers of `domain`, best first, each with its addresses.
    /// Exchangers without any address are left out; none left is permanent
    /// unless a lookup failed temporarily.
    pub async fn exchangers(&self, domain: &str) -> Result<Vec<Exchanger>, MxError> {
        let name = absolute(domain)?;
        let mut found: Vec<(u16, Name)> =
            match self.resolver.lookup(name.clone(), RecordType::MX).await {
                Ok(lookup) => lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                        _ => None,
                    })
                    .collect(),
                Err(e) => match classify_error(&e) {
                    Answer::Negative => Vec::new(),
                    Answer::Failed(why) | Answer::Unreachable(why) => {
                        return Err(MxError::Temporary(format!("MX lookup of {domain}: {why}")))
                    }
                    Answer::Records(_) => Vec::new(),
                },
            };
        if found.len() == 1 && found[0].1.is_root() {
            return Err(MxError::Permanent(format!(
                "{domain} accepts no mail (null MX, RFC 7505)"
            )));
        }
        found.retain(|(_, host)| !host.is_root());
        if found.is_empty() {
            debug!(domain, "no MX record; the domain is its own exchanger");
            found.push((0, name));
        }
        found.sort_by_key(|(preference, _)| *preference);

        let mut out = Vec::new();
        let mut temporary = Vec::new();
        for (preference, host) in found {
            match self.addresses(&host).await {
                Ok(addresses) if !addresses.is_empty() => out.push(Exchanger {
                    preference,
                    host: display_name(&host),
                    addresses,
                }),
                Ok(_) => debug!(host = %host, "exchanger without an address"),
                Err(why) => temporary.push(why),
            }
        }
        if !out.is_empty() {
            Ok(out)
        } else if !temporary.is_empty() {
            Err(MxError::Temporary(temporary.join("; ")))
        } else {
            Err(MxError::Permanent(format!(
                "{domain} has no mail exchanger with an address"
            )))
        }
    }

    /// The addresses of `domain`'s exchangers, each with `port`, in the order
    /// to try them.
    pub async fn servers(&self, domain: &str, port: u16) -> Result<Vec<SocketAddr>, MxError> {
        Ok(self
            .exchangers(domain)
            .await?
            .into_iter()
            .flat_map(|x| {
                x.addresses
                    .into_iter()
                    .map(move |ip| SocketAddr::new(ip, port))
            })
            .collect())
    }

    /// A and AAAA addresses of `host`; `Err` only for a temporary failure.
    async fn addresses(&self, host: &Name) -> Result<Vec<IpAddr>, String> {
        let mut out = Vec::new();
        for kind in [RecordType::A, RecordType::AAAA] {
            match self.resolver.lookup(host.clone(), kind).await {
                Ok(lookup) => out.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) => match classify_error(&e) {
                    Answer::Failed(why) | Answer::Unreachable(why) => {
                        return Err(format!("{kind} lookup of {}: {why}", display_name(host)))
                    }
                    Answer::Negative | Answer::Records(_) => {}
                },
            }
        }
        Ok(out)
    }
}

/// `domain` as an absolute name (no search domains appended).
fn absolute(domain: &str) -> Result<Name, MxError> {
    let text = format!("{}.", domain.trim_end_matches('.'));
    Name::from_ascii(&text)
        .map_err(|e| MxError::Permanent(format!("{domain:?} is not a domain name: {e}")))
}
