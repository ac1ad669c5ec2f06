//! What every discovery source returns.

use std::fmt;

/// Where a certificate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A DNS CERT record.
    Dns,
    /// An LDAP directory entry.
    Ldap,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Dns => "dns",
            Source::Ldap => "ldap",
        })
    }
}

/// Which of the two lookups a source answered (Certificate Discovery for
/// Direct §3: the address-bound lookup comes before the domain-bound one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    /// Certificates for the full address (DNS name `user.domain`, LDAP `mail=user@domain`).
    Address,
    /// Certificates for the domain (DNS name `domain`, LDAP `mail=domain`).
    Domain,
}

/// One certificate as found, before any judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCert {
    /// DNS or LDAP.
    pub source: Source,
    /// The DNS owner name or the LDAP entry DN it came from.
    pub owner: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Seconds the answer may be cached (the DNS TTL; a fixed time for LDAP).
    pub ttl: u32,
}

/// The answer of one source to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceResult {
    /// At least one certificate.
    Found(Vec<FoundCert>),
    /// A definite answer that there is none (NXDOMAIN, NODATA, no LDAP entry, no SRV).
    NotFound,
    /// The source could not be asked or did not answer (SERVFAIL, timeout,
    /// every LDAP server down): never to be read as "no certificate".
    Temporary(String),
}
