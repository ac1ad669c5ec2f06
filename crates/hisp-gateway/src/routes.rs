//! Where mail for a destination domain goes: a static route from the
//! configuration (`[[route]]`) when there is one, else the domain's mail
//! exchangers from DNS (RFC 5321 §5.1) on the relay port, when MX routing is
//! on. Without either, a domain cannot be reached and its mail waits (and
//! finally fails) in the queue.
//!
//! Each server carries the name its TLS certificate must show: the mail
//! exchanger's host name from the MX record (RFC 3207 §4.1, RFC 7672 §3.2.2
//! reference identifier), or the IP address of a static route.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hisp_discovery::{MxError, MxResolver};
use hisp_smtp::Peer;
use thiserror::Error;

/// Why no server could be named for a domain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// Asking again later may work (DNS did not answer, no route yet).
    #[error("{0}")]
    Temporary(String),
    /// The domain takes no mail (null MX, no such domain, no address).
    #[error("{0}")]
    Permanent(String),
}

/// MX routing: the resolver and the port mail exchangers are reached on.
#[derive(Debug, Clone)]
struct MxRouting {
    resolver: Arc<MxResolver>,
    port: u16,
}

/// Destination domain (lower case) to the SMTP servers that take its mail.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    map: HashMap<String, SocketAddr>,
    mx: Option<MxRouting>,
}

impl Routes {
    /// No routes, no MX routing.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Sends mail for `domain` to `server`, replacing any earlier route.
    pub fn insert(&mut self, domain: &str, server: SocketAddr) {
        self.map.insert(normalize(domain), server);
    }

    /// Routes domains without a static route by their MX records, to `port`
    /// (25 between HISPs).
    pub fn with_mx(mut self, resolver: Arc<MxResolver>, port: u16) -> Self {
        self.mx = Some(MxRouting { resolver, port });
        self
    }

    /// The static route of `domain`, if there is one.
    pub fn get(&self, domain: &str) -> Option<SocketAddr> {
        self.map.get(&normalize(domain)).copied()
    }

    /// Whether domains without a static route are looked up by MX.
    pub fn routes_by_mx(&self) -> bool {
        self.mx.is_some()
    }

    /// The servers to try for `domain`, in order: its static route (named by
    /// its IP address), or its mail exchangers' addresses, best first, each
    /// named by the exchanger's host name.
    pub async fn servers(&self, domain: &str) -> Result<Vec<Peer>, RouteError> {
        if let Some(server) = self.get(domain) {
            return Ok(vec![Peer::by_address(server)]);
        }
        let Some(mx) = &self.mx else {
            return Err(RouteError::Temporary(format!(
                "{domain}: no [[route]] configured and MX routing is off"
            )));
        };
        let port = mx.port;
        match mx.resolver.exchangers(domain).await {
            Ok(exchangers) => {
                let servers: Vec<Peer> = exchangers
                    .into_iter()
                    .flat_map(|x| {
                        let host = x.host;
                        x.addresses.into_iter().map(move |ip| Peer {
                            addr: SocketAddr::new(ip, port),
                            name: host.clone(),
                        })
                    })
                    .collect();
                if servers.is_empty() {
                    Err(RouteError::Permanent(format!(
                        "{domain} has no mail exchanger with an address"
                    )))
                } else {
                    Ok(servers)
                }
            }
            Err(MxError::Temporary(why)) => Err(RouteError::Temporary(why)),
            Err(MxError::Permanent(why)) => Err(RouteError::Permanent(why)),
        }
    }
}

fn normalize(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_match_without_regard_to_case_or_trailing_dot() {
        let mut routes = Routes::new();
        let addr: SocketAddr = "127.0.0.1:2525".parse().unwrap();
        routes.insert("B.Example.", addr);
        assert_eq!(routes.get("b.example"), Some(addr));
        assert_eq!(routes.get("c.example"), None);
    }

    #[tokio::test]
    async fn without_route_or_mx_a_domain_waits() {
        let routes = Routes::new();
        assert!(!routes.routes_by_mx());
        match routes.servers("c.example").await {
            Err(RouteError::Temporary(why)) => assert!(why.contains("no [[route]]"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
