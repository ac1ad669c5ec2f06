//! DNS CERT discovery (RFC 4398; Certificate Discovery for Direct §3).
//!
//! [`DnsDiscovery::lookup`] asks for the CERT records at one owner name
//! (see [`owner_name`]) and returns every certificate there:
//!
//! - type PKIX (1): the record data is the DER certificate;
//! - type IPKIX (4): the record data is an http(s) URL; the certificate is
//!   fetched from it. A URL that cannot be fetched makes the whole lookup a
//!   temporary failure (the certificate behind it might be the one usable
//!   certificate, so hisp must not decide "no usable certificate" without it);
//! - other types (PGP, SPKI, ...) are skipped and logged.
//!
//! NXDOMAIN and NODATA are [`SourceResult::NotFound`]. SERVFAIL, REFUSED, a
//! referral, a timeout or no reachable server are first retried at the
//! zone's authoritative servers (see `authoritative`), and if that gives no
//! answer either, are [`SourceResult::Temporary`].
//!
//! Answers are cached for their TTL, negative ones for
//! [`DnsConfig::negative_ttl`]; temporary failures are not cached.

mod answer;
mod authoritative;
mod cache;
mod fetch;
mod mx;
mod owner;
mod resolver;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::rr::rdata::cert::CertType;
use hickory_resolver::proto::rr::Name;
use hickory_resolver::TokioResolver;
use thiserror::Error;
use tracing::{debug, info, warn};

pub use cache::{Clock, SystemClock};
pub use mx::{Exchanger, MxError, MxResolver};
pub use owner::{owner_name_for_address, owner_name_for_domain, OwnerNameError};

use crate::types::{FoundCert, Query, Source, SourceResult};
use answer::{Answer, CertRecord};
pub(crate) use cache::AnswerCache;
use resolver::Timing;

/// Why a [`DnsDiscovery`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsError {
    /// No name server was configured and the system's (/etc/resolv.conf)
    /// could not be read.
    #[error("cannot read the system's DNS configuration (/etc/resolv.conf): {0}; configure name servers explicitly")]
    SystemConfig(String),
    /// hickory refused the resolver configuration.
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
}

/// How DNS discovery asks and caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Recursive name servers to ask (config `name_servers`, CLI
    /// `--nameserver IP:PORT`); empty means the system's /etc/resolv.conf.
    pub name_servers: Vec<SocketAddr>,
    /// Time to wait for one answer.
    pub timeout: Duration,
    /// Tries per name server before giving up.
    pub attempts: usize,
    /// How long a definite "no CERT record" is remembered.
    pub negative_ttl: Duration,
    /// Time allowed to fetch an IPKIX URL.
    pub fetch_timeout: Duration,
    /// Whether to ask the zone's authoritative servers when the configured
    /// resolver fails.
    pub authoritative_fallback: bool,
    /// Port of authoritative name servers (53; tests use another).
    pub authoritative_port: u16,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            name_servers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
            negative_ttl: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(10),
            authoritative_fallback: true,
            authoritative_port: 53,
        }
    }
}

/// The DNS owner name for `query` about `address`: `user.domain` for an
/// address-bound lookup, `domain` for a domain-bound one.
pub fn owner_name(address: &str, query: Query) -> Result<String, OwnerNameError> {
    match query {
        Query::Address => owner_name_for_address(address),
        Query::Domain => {
            let domain = address.rsplit_once('@').map(|(_, d)| d).ok_or_else(|| {
                OwnerNameError::InvalidAddress {
                    address: address.to_string(),
                    reason: "it has no '@'".into(),
                }
            })?;
            owner_name_for_domain(domain)
        }
    }
}

/// Finds certificates in DNS CERT records, with a TTL-respecting cache.
#[derive(Debug)]
pub struct DnsDiscovery {
    resolver: TokioResolver,
    config: DnsConfig,
    cache: AnswerCache,
    clock: Arc<dyn Clock>,
}

impl DnsDiscovery {
    /// Discovery through `config.name_servers` (or the system's), with the
    /// real clock.
    pub fn new(config: DnsConfig) -> Result<Self, DnsError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// Discovery that reads the time for its cache from `clock`.
    pub fn with_clock(config: DnsConfig, clock: Arc<dyn Clock>) -> Result<Self, DnsError> {
        let resolver = resolver::configured(&config.name_servers, timing(&config))?;
        Ok(DnsDiscovery {
            resolver,
            cache: AnswerCache::new(config.negative_ttl),
            config,
            clock,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    /// Every certificate in the CERT records at the owner name `name`
    /// (`user.domain` or `domain`; see [`owner_name`]).
    ///
    /// A name that is not a valid DNS name cannot hold records: it gives
    /// `NotFound`, with a warning in the log.
    pub async fn lookup(&self, name: &str) -> SourceResult {
        let owner = match parse_owner(name) {
            Ok(owner) => owner,
            Err(reason) => {
                warn!(owner = name, %reason, "not a DNS name; no CERT lookup");
                return SourceResult::NotFound;
            }
        };
        let key = answer::display_name(&owner);
        if let Some(cached) = self.cache.get(&key, self.clock.now()) {
            debug!(owner = %key, "CERT answer from the cache");
            return cached;
        }
        let result = self.ask(&owner).await;
        self.cache.put(&key, &result, self.clock.now());
        result
    }

    /// Asks the resolver, then (if it failed) the authoritative servers.
    async fn ask(&self, owner: &Name) -> SourceResult {
        let first = resolver::query_cert(&self.resolver, owner).await;
        let answer = match first {
            Answer::Failed(reason) if self.config.authoritative_fallback => {
                info!(owner = %owner, %reason, "resolver failed for CERT; asking the authoritative servers");
                match authoritative::query_cert(
                    &self.resolver,
                    owner,
                    self.config.authoritative_port,
                    timing(&self.config),
                )
                .await
                {
                    Answer::Failed(second) | Answer::Unreachable(second) => {
                        Answer::Failed(format!("{reason}; {second}"))
                    }
                    other => other,
                }
            }
            other => other,
        };
        match answer {
            Answer::Records(records) => self.certificates(records).await,
            Answer::Negative => {
                debug!(owner = %owner, "no CERT record");
                SourceResult::NotFound
            }
            Answer::Failed(reason) | Answer::Unreachable(reason) => {
                warn!(owner = %owner, %reason, "CERT lookup failed (temporary)");
                SourceResult::Temporary(format!(
                    "DNS CERT lookup of {}: {reason}",
                    answer::display_name(owner)
                ))
            }
        }
    }

    /// The certificates in `records`, fetching IPKIX URLs.
    async fn certificates(&self, records: Vec<CertRecord>) -> SourceResult {
        let mut found = Vec::new();
        for record in records {
            let der = match record.cert.cert_type {
                CertType::PKIX => record.cert.cert_data.clone(),
                CertType::IPKIX => match self.fetch(&record).await {
                    Ok(der) => der,
                    Err(reason) => {
                        warn!(owner = %record.owner, %reason, "IPKIX certificate could not be fetched");
                        return SourceResult::Temporary(format!(
                            "DNS CERT IPKIX record at {}: {reason}",
                            record.owner
                        ));
                    }
                },
                other => {
                    debug!(owner = %record.owner, cert_type = ?other, "CERT record of a type Direct does not use; skipped");
                    continue;
                }
            };
            found.push(FoundCert {
                source: Source::Dns,
                owner: record.owner,
                der,
                ttl: record.ttl,
            });
        }
        if found.is_empty() {
            SourceResult::NotFound
        } else {
            SourceResult::Found(found)
        }
    }

    async fn fetch(&self, record: &CertRecord) -> Result<Vec<u8>, String> {
        let url = fetch::ipkix_url(&record.cert.cert_data)?;
        let timeout = self.config.fetch_timeout;
        debug!(owner = %record.owner, %url, "fetching IPKIX certificate");
        let fetched = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || fetch::fetch_certificate(&url, timeout)).await
        };
        match fetched {
            Ok(result) => result.map_err(|e| format!("fetching {url}: {e}")),
            Err(e) => Err(format!("fetching {url}: the fetch task failed: {e}")),
        }
    }
}

fn timing(config: &DnsConfig) -> Timing {
    Timing {
        timeout: config.timeout,
        attempts: config.attempts,
    }
}

/// `name` as an absolute DNS name (no search domains are ever appended).
fn parse_owner(name: &str) -> Result<Name, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("the name is empty".into());
    }
    let mut owner = Name::from_ascii(trimmed).map_err(|e| e.to_string())?;
    owner.set_fqdn(true);
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_name_picks_address_or_domain() {
        assert_eq!(
            owner_name("alice@Direct.Example.org", Query::Address).unwrap(),
            "alice.direct.example.org"
        );
        assert_eq!(
            owner_name("alice@Direct.Example.org", Query::Domain).unwrap(),
            "direct.example.org"
        );
    }

    #[test]
    fn owner_names_are_absolute() {
        let name = parse_owner("a.example.org").unwrap();
        assert!(name.is_fqdn());
        assert_eq!(name.to_ascii(), "a.example.org.");
        assert!(parse_owner("").is_err());
    }
}
