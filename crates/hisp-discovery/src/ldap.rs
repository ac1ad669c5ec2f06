//! LDAP certificate discovery (Certificate Discovery for Direct; RFC 4523
//! certificate attributes; RFC 2782 SRV records).
//!
//! A lookup finds the domain's directories through `_ldap._tcp.DOMAIN` SRV
//! records, puts them in RFC 2782 order, and asks them one by one: anonymous
//! bind, the naming contexts of the root DSE, then a subtree search of each
//! for entries whose `mail` is the address (address-bound lookup) or the
//! domain (domain-bound lookup). The first server that answers decides; an
//! unreachable server is skipped for the next.

mod entry;
mod error;
mod locate;
mod server;
mod srv;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use rand::Rng;
use tracing::Instrument;

use crate::types::SourceResult;

pub use error::LdapError;
pub use srv::{order_srv_targets, SrvTarget};

/// Seconds an LDAP answer may be cached: LDAP has no TTL of its own.
pub const LDAP_CERT_TTL: u32 = 3600;

/// How the LDAP source finds and asks servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    /// DNS servers for the SRV and address lookups; `None` uses the system's
    /// configuration (`/etc/resolv.conf`).
    pub name_servers: Option<Vec<SocketAddr>>,
    /// Time allowed for one DNS query.
    pub dns_timeout: Duration,
    /// How many times a DNS query is tried.
    pub dns_attempts: usize,
    /// Time allowed to open the TCP connection to one LDAP server address.
    pub connect_timeout: Duration,
    /// Time allowed for each LDAP operation (bind, root DSE read, one search).
    pub operation_timeout: Duration,
    /// Time allowed for everything asked of one server; past it the server
    /// counts as unreachable and the next one is tried.
    pub server_timeout: Duration,
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            name_servers: None,
            dns_timeout: Duration::from_secs(5),
            dns_attempts: 2,
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            server_timeout: Duration::from_secs(15),
        }
    }
}

/// The LDAP discovery source. Cheap to share: lookups take `&self`.
#[derive(Clone)]
pub struct LdapDiscovery {
    resolver: TokioResolver,
    settings: LdapSettings,
    /// Answers for LDAP_CERT_TTL (negative ones for a minute), like DNS.
    cache: std::sync::Arc<crate::dns::AnswerCache>,
    clock: std::sync::Arc<dyn crate::dns::Clock>,
}

impl std::fmt::Debug for LdapDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDiscovery")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LdapDiscovery {
    /// Makes the source with its own resolver, built from `settings`. Fails
    /// only when the system resolver configuration is asked for and unreadable.
    pub fn new(settings: LdapSettings) -> Result<Self, LdapError> {
        let resolver = locate::build_resolver(&settings)?;
        Ok(LdapDiscovery::with_resolver(resolver, settings))
    }

    /// Makes the source around an existing resolver (for example one shared
    /// with DNS CERT discovery); `settings.name_servers` and the DNS timeouts
    /// are then not used.
    pub fn with_resolver(resolver: TokioResolver, settings: LdapSettings) -> Self {
        LdapDiscovery {
            resolver,
            settings,
            cache: std::sync::Arc::new(crate::dns::AnswerCache::new(
                std::time::Duration::from_secs(60),
            )),
            clock: std::sync::Arc::new(crate::dns::SystemClock),
        }
    }

    /// The same source with another clock for its answer cache (tests).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::dns::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Looks up the certificates published in LDAP for `mail` in the
    /// directories of `domain`: `mail` is the address for the address-bound
    /// lookup, the domain itself for the domain-bound one.
    ///
    /// `Found` carries every certificate of every matching entry of the first
    /// server that answered, each with its entry's DN as owner. `NotFound`:
    /// the domain has no `_ldap._tcp` SRV records, or the first server that
    /// answered holds no matching entry (the next servers are not asked).
    /// `Temporary`: the SRV lookup failed, or no server could be asked.
    pub async fn lookup(&self, domain: &str, mail: &str) -> SourceResult {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        // Certificate Discovery for Direct: answers are cached; temporary
        // failures never are (AnswerCache::put).
        let key = format!("ldap {domain} {}", mail.to_ascii_lowercase());
        if let Some(cached) = self.cache.get(&key, self.clock.now()) {
            return cached;
        }
        let span = tracing::info_span!("ldap_lookup", %domain, %mail);
        let result = self.lookup_in(&domain, mail).instrument(span).await;
        self.cache.put(&key, &result, self.clock.now());
        result
    }

    async fn lookup_in(&self, domain: &str, mail: &str) -> SourceResult {
        let targets = match locate::srv_targets(&self.resolver, domain).await {
            Ok(targets) => targets,
            Err(e @ LdapError::InvalidDomain { .. }) => {
                tracing::warn!(error = %e, "no LDAP lookup");
                return SourceResult::NotFound;
            }
            Err(e) => {
                tracing::warn!(error = %e, "LDAP server discovery failed");
                return SourceResult::Temporary(e.to_string());
            }
        };
        if targets.is_empty() {
            tracing::debug!("no _ldap._tcp SRV records");
            return SourceResult::NotFound;
        }
        // ThreadRng is not Send: it must not live across an await.
        let ordered = {
            let mut rng = rand::thread_rng();
            order_srv_targets(targets, |bound| rng.gen_range(0..bound))
        };
        let filter = certificate_filter(mail);
        let mut failures = Vec::new();
        for target in &ordered {
            match server::ask(&self.resolver, target, &filter, &self.settings).await {
                // Certificate Discovery for Direct: the first server that
                // answers decides; results are not merged across servers.
                Ok(found) if found.is_empty() => {
                    tracing::info!(server = %target, "LDAP server holds no certificate");
                    return SourceResult::NotFound;
                }
                Ok(found) => {
                    tracing::info!(
                        server = %target,
                        certificates = found.len(),
                        "LDAP certificates found"
                    );
                    return SourceResult::Found(found);
                }
                Err(e) => {
                    tracing::warn!(server = %target, error = %e, "LDAP server skipped");
                    failures.push(e.to_string());
                }
            }
        }
        SourceResult::Temporary(format!(
            "no LDAP server of {domain} answered: {}",
            failures.join("; ")
        ))
    }
}

/// The search filter for the entries of `mail` holding a certificate
/// (RFC 4515 string form, the value escaped).
///
/// Certificate Discovery for Direct names
/// `(&(mail=M)(|(userCertificate;binary=*)(userCertificate=*)))`; hisp adds
/// `(userSMIMECertificate=*)` to the alternatives so an entry that publishes
/// its certificates only in that attribute is found too.
pub fn certificate_filter(mail: &str) -> String {
    format!(
        "(&(mail={})(|(userCertificate;binary=*)(userCertificate=*)(userSMIMECertificate=*)))",
        ldap3::ldap_escape(mail)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_can_run_on_a_spawned_task() {
        fn assert_send<T: Send>(_: &T) {}
        let discovery = LdapDiscovery::new(LdapSettings {
            name_servers: Some(Vec::new()),
            ..LdapSettings::default()
        })
        .expect("discovery");
        assert_send(&discovery.lookup("example.test", "a@example.test"));
    }

    #[test]
    fn filter_names_mail_and_the_certificate_attributes() {
        assert_eq!(
            certificate_filter("alice@example.test"),
            "(&(mail=alice@example.test)(|(userCertificate;binary=*)(userCertificate=*)\
             (userSMIMECertificate=*)))"
        );
    }

    #[test]
    fn filter_escapes_the_value_rfc4515_3() {
        let filter = certificate_filter("a*)(uid=*@example.test");
        assert!(
            filter.starts_with(r"(&(mail=a\2a\29\28uid=\2a@example.test)"),
            "{filter}"
        );
    }
}
