//! Finding the LDAP servers of a domain: `_ldap._tcp` SRV records (RFC 2782)
//! and the addresses of their targets, through hickory-resolver.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::{Resolver, TokioResolver};

use super::error::LdapError;
use super::srv::SrvTarget;
use super::LdapSettings;

/// Builds the resolver for SRV and address lookups: the given name servers
/// (UDP, falling back to TCP), or the system's configuration when none is given.
pub(crate) fn build_resolver(settings: &LdapSettings) -> Result<TokioResolver, LdapError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match &settings.name_servers {
        Some(servers) => {
            let servers = servers.iter().map(name_server).collect();
            Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        }
        None => Resolver::builder(provider).map_err(LdapError::ResolverConfig)?,
    };
    let options = builder.options_mut();
    options.timeout = settings.dns_timeout;
    options.attempts = settings.dns_attempts;
    builder.build().map_err(LdapError::ResolverConfig)
}

fn name_server(addr: &SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// The `_ldap._tcp.DOMAIN.` SRV targets, unordered.
///
/// An empty list means the domain publishes no LDAP service: no SRV records
/// (NXDOMAIN or NODATA), or the single target "." by which RFC 2782 says the
/// service "is decidedly not available at this domain". Any other failure
/// (SERVFAIL, REFUSED, timeout) is an error, so that it is reported as
/// temporary and never read as "no certificate".
pub(crate) async fn srv_targets(
    resolver: &TokioResolver,
    domain: &str,
) -> Result<Vec<SrvTarget>, LdapError> {
    let name = format!("_ldap._tcp.{domain}.");
    let owner = Name::from_ascii(&name).map_err(|source| LdapError::InvalidDomain {
        domain: domain.to_string(),
        source,
    })?;
    let lookup = match resolver.srv_lookup(owner).await {
        Ok(lookup) => lookup,
        Err(e) if is_no_records(&e) => return Ok(Vec::new()),
        Err(source) => return Err(LdapError::SrvLookup { name, source }),
    };
    let targets: Vec<SrvTarget> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(SrvTarget {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: srv.target.to_ascii().trim_end_matches('.').to_string(),
            }),
            _ => None,
        })
        .collect();
    if targets.len() == 1 && targets[0].target.is_empty() {
        return Ok(Vec::new());
    }
    // A "." target among others is meaningless: it cannot be connected to.
    Ok(targets
        .into_iter()
        .filter(|t| !t.target.is_empty())
        .collect())
}

/// True for a definite negative answer: NXDOMAIN, or NOERROR with no records.
fn is_no_records(error: &NetError) -> bool {
    matches!(
        error,
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code: ResponseCode::NXDomain | ResponseCode::NoError,
            ..
        }))
    )
}

/// The addresses of an SRV target host, to connect to in turn. An IP
/// literal target is used as is.
pub(crate) async fn target_addresses(
    resolver: &TokioResolver,
    target: &SrvTarget,
) -> Result<Vec<SocketAddr>, LdapError> {
    if let Ok(ip) = target.target.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let fqdn = format!("{}.", target.target);
    let ips = resolver
        .lookup_ip(fqdn.as_str())
        .await
        .map_err(|source| LdapError::NoAddress {
            server: target.to_string(),
            source,
        })?;
    Ok(ips
        .iter()
        .map(|ip| SocketAddr::new(ip, target.port))
        .collect())
}
