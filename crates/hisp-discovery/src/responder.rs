//! The built-in DNS responder: answers CERT queries (and A/MX, for demo
//! domains) for hisp's own addresses and domains over UDP and TCP, so a demo
//! or a test needs no BIND. [`LocalRecords::zone_lines`] renders the same
//! records for a real BIND 9 zone (`hisp dns export`).
//!
//! Inside a served zone an unknown name gets NXDOMAIN (and a known name
//! without the asked type NODATA), each with the zone's SOA; a name outside
//! every served zone gets REFUSED. UDP answers larger than the client allows
//! (512 octets without EDNS) are truncated so the client asks again over TCP
//! (Applicability Statement §5.4).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hickory_server::proto::rr::rdata::cert::{Algorithm, CertType, CERT};
use hickory_server::proto::rr::rdata::{A, MX, NS, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

/// Why the responder could not be set up or run.
#[derive(Debug, Error)]
pub enum ResponderError {
    /// A name in the records is not a DNS name.
    #[error("'{name}' is not a DNS name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's owner is in none of the zones served.
    #[error("'{name}' is not inside any served zone ({zones})")]
    OutsideZones {
        /// The owner name.
        name: String,
        /// The zones served, comma-separated.
        zones: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} ({protocol}): {cause}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// "udp" or "tcp".
        protocol: &'static str,
        /// The operating system's reason.
        cause: std::io::Error,
    },
    /// hickory refused a zone.
    #[error("cannot build zone {zone}: {reason}")]
    Zone {
        /// The zone origin.
        zone: String,
        /// hickory's reason.
        reason: String,
    },
    /// The server stopped with an error.
    #[error("DNS responder failed: {0}")]
    Server(String),
}

/// The records the responder serves and `hisp dns export` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalRecords {
    /// Zones answered for (the local domains), e.g. `direct.example.org`.
    pub zones: Vec<String>,
    /// CERT PKIX records: owner name (`user.domain` or `domain`) and DER.
    pub certs: Vec<(String, Vec<u8>)>,
    /// A records for demo hosts.
    pub a: Vec<(String, Ipv4Addr)>,
    /// MX records for demo domains: domain, preference, mail exchanger.
    pub mx: Vec<(String, u16, String)>,
    /// TTL of every record (seconds); 0 means [`LocalRecords::DEFAULT_TTL`].
    pub ttl: u32,
}

impl LocalRecords {
    /// TTL used when none is set: one hour.
    pub const DEFAULT_TTL: u32 = 3600;

    fn ttl(&self) -> u32 {
        if self.ttl == 0 {
            Self::DEFAULT_TTL
        } else {
            self.ttl
        }
    }

    /// The records as zone-file lines that BIND 9 loads unchanged: absolute
    /// owner names (no `$ORIGIN` needed), explicit TTL and class, CERT as
    /// `PKIX 0 0` (RFC 4398 §2: type PKIX, key tag and algorithm 0 since an
    /// X.509 certificate carries its own) with the base64 split over lines in
    /// parentheses. No SOA or NS: the lines go into an existing zone.
    pub fn zone_lines(&self) -> String {
        let ttl = self.ttl();
        let mut out = String::new();
        for (owner, der) in &self.certs {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let _ = writeln!(out, "{} {ttl} IN CERT PKIX 0 0 (", absolute(owner));
            for chunk in b64.as_bytes().chunks(64) {
                // base64 output is ASCII, so every chunk is valid UTF-8.
                let _ = writeln!(out, "\t{}", String::from_utf8_lossy(chunk));
            }
            let _ = writeln!(out, "\t)");
        }
        for (owner, ip) in &self.a {
            let _ = writeln!(out, "{} {ttl} IN A {ip}", absolute(owner));
        }
        for (domain, preference, exchange) in &self.mx {
            let _ = writeln!(
                out,
                "{} {ttl} IN MX {preference} {}",
                absolute(domain),
                absolute(exchange)
            );
        }
        out
    }

    /// One in-memory zone per served zone, holding the records inside it.
    fn catalog(&self) -> Result<Catalog, ResponderError> {
        let ttl = self.ttl();
        let zones: BTreeSet<Name> = self
            .zones
            .iter()
            .map(|z| parse(z))
            .collect::<Result<_, _>>()?;
        let mut records: Vec<Record> = Vec::new();
        for (owner, der) in &self.certs {
            let cert = CERT::new(CertType::PKIX, 0, Algorithm::from(0u8), der.clone());
            records.push(Record::from_rdata(parse(owner)?, ttl, RData::CERT(cert)));
        }
        for (owner, ip) in &self.a {
            records.push(Record::from_rdata(parse(owner)?, ttl, RData::A(A(*ip))));
        }
        for (domain, preference, exchange) in &self.mx {
            let mx = MX::new(*preference, parse(exchange)?);
            records.push(Record::from_rdata(parse(domain)?, ttl, RData::MX(mx)));
        }

        let mut handlers: Vec<(Name, InMemoryZoneHandler)> = Vec::new();
        for origin in &zones {
            let mut handler =
                InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
            let serial = 1;
            let hostmaster = parse(&format!("hostmaster.{origin}"))?;
            let soa = SOA::new(origin.clone(), hostmaster, serial, 3600, 600, 86_400, 60);
            let mut ok = handler.upsert_mut(
                Record::from_rdata(origin.clone(), ttl, RData::SOA(soa)),
                serial,
            );
            ok &= handler.upsert_mut(
                Record::from_rdata(origin.clone(), ttl, RData::NS(NS(origin.clone()))),
                serial,
            );
            if !ok {
                return Err(ResponderError::Zone {
                    zone: origin.to_string(),
                    reason: "the SOA or NS record was refused".into(),
                });
            }
            handlers.push((origin.clone(), handler));
        }
        for record in records {
            // The closest enclosing zone holds the record.
            let home = handlers
                .iter_mut()
                .filter(|(origin, _)| origin.zone_of(&record.name))
                .max_by_key(|(origin, _)| origin.num_labels());
            let Some((origin, handler)) = home else {
                return Err(ResponderError::OutsideZones {
                    name: record.name.to_string(),
                    zones: self.zones.join(", "),
                });
            };
            if !handler.upsert_mut(record.clone(), 1) {
                return Err(ResponderError::Zone {
                    zone: origin.to_string(),
                    reason: format!("the record for {} was refused", record.name),
                });
            }
        }

        let mut catalog = Catalog::new();
        for (origin, handler) in handlers {
            catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
        }
        Ok(catalog)
    }
}

fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

fn parse(name: &str) -> Result<Name, ResponderError> {
    let mut parsed =
        Name::from_ascii(name.trim_end_matches('.')).map_err(|e| ResponderError::InvalidName {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
    parsed.set_fqdn(true);
    Ok(parsed.to_lowercase())
}

/// A running responder; it stops when dropped or [`Responder::shutdown`].
pub struct Responder {
    server: Server<Catalog>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Idle time after which a TCP client is dropped.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

impl Responder {
    /// Starts answering for `records` on `listen`, UDP and TCP on the same
    /// port (with port 0, a free port picked for both). Runs on the current
    /// tokio runtime.
    pub async fn start(
        listen: SocketAddr,
        records: &LocalRecords,
    ) -> Result<Responder, ResponderError> {
        let catalog = records.catalog()?;
        let (udp, tcp) = bind_both(listen).await?;
        let addr = udp.local_addr().map_err(|cause| ResponderError::Bind {
            addr: listen,
            protocol: "udp",
            cause,
        })?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 64);
        info!(%addr, zones = ?records.zones, certs = records.certs.len(), "DNS responder listening (UDP and TCP)");
        Ok(Responder { server, addr })
    }

    /// The address it answers on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting queries and waits for the listeners to finish.
    pub async fn shutdown(mut self) -> Result<(), ResponderError> {
        self.server
            .shutdown_gracefully()
            .await
            .map_err(|e| ResponderError::Server(e.to_string()))
    }

    /// Runs until the listeners stop (for `hisp serve`).
    pub async fn run(mut self) -> Result<(), ResponderError> {
        self.server
            .block_until_done()
            .await
            .map_err(|e| ResponderError::Server(e.to_string()))
    }
}

/// Binds UDP and TCP on one port; with port 0 retries until a port free for
/// both is found.
async fn bind_both(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), ResponderError> {
    let udp_error = |cause| ResponderError::Bind {
        addr: listen,
        protocol: "udp",
        cause,
    };
    let tcp_error = |cause| ResponderError::Bind {
        addr: listen,
        protocol: "tcp",
        cause,
    };
    let mut attempts = 0;
    loop {
        let udp = UdpSocket::bind(listen).await.map_err(udp_error)?;
        let addr = udp.local_addr().map_err(udp_error)?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(cause) if listen.port() == 0 && attempts < 20 => {
                attempts += 1;
                tracing::debug!(%addr, %cause, "TCP port taken; trying another");
            }
            Err(cause) => return Err(tcp_error(cause)),
        }
    }
}
