//! Building hickory resolvers: the configured (or system) one, and ad-hoc
//! ones that ask a zone's authoritative servers directly.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::TokioResolver;

use super::answer::{cert_records, classify_error, Answer};
use super::DnsError;

/// Time and retry settings shared by every resolver hisp builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) timeout: Duration,
    pub(crate) attempts: usize,
}

fn options(timing: Timing, recursion_desired: bool) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.timeout = timing.timeout;
    opts.attempts = timing.attempts;
    // hisp keeps its own cache (with an injectable clock); a second, hidden
    // one would serve answers after their TTL as hisp's clock sees it.
    opts.cache_size = 0;
    opts.recursion_desired = recursion_desired;
    // Ask the servers in the order the administrator listed them.
    opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
    opts
}

/// A name server reached over UDP first and TCP when an answer is truncated
/// (Applicability Statement §5.4: CERT answers over 512 octets need TCP).
fn udp_and_tcp(ip: IpAddr, port: u16) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = port;
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = port;
    NameServerConfig::new(ip, true, vec![udp, tcp])
}

/// The resolver for `servers`, or the system's (/etc/resolv.conf) when empty.
pub(crate) fn configured(
    servers: &[SocketAddr],
    timing: Timing,
) -> Result<TokioResolver, DnsError> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| DnsError::SystemConfig(e.to_string()))?
    } else {
        let config = ResolverConfig::from_name_servers(
            servers
                .iter()
                .map(|s| udp_and_tcp(s.ip(), s.port()))
                .collect(),
        );
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
    };
    *builder.options_mut() = options(timing, true);
    builder
        .build()
        .map_err(|e| DnsError::Resolver(e.to_string()))
}

/// A resolver that asks `ips` on `port` without asking them to recurse:
/// for querying a zone's authoritative servers.
pub(crate) fn authoritative(
    ips: &[IpAddr],
    port: u16,
    timing: Timing,
) -> Result<TokioResolver, DnsError> {
    let config =
        ResolverConfig::from_name_servers(ips.iter().map(|ip| udp_and_tcp(*ip, port)).collect());
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = options(timing, false);
    builder
        .build()
        .map_err(|e| DnsError::Resolver(e.to_string()))
}

/// Asks `resolver` for the CERT records at `owner`.
pub(crate) async fn query_cert(resolver: &TokioResolver, owner: &Name) -> Answer {
    match resolver.lookup(owner.clone(), RecordType::CERT).await {
        Ok(lookup) => {
            let records = cert_records(lookup.answers());
            if records.is_empty() {
                // Only a CNAME chain ending nowhere: NODATA in effect.
                Answer::Negative
            } else {
                Answer::Records(records)
            }
        }
        Err(e) => classify_error(&e),
    }
}
