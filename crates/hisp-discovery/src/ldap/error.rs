//! Why an LDAP lookup could not be completed.

use std::time::Duration;

use hickory_resolver::net::NetError;
use hickory_resolver::proto::ProtoError;

/// A failure of the LDAP source: setting it up, finding servers, or asking
/// one server. A failure to ask one server makes the lookup try the next; the
/// lookup reports `SourceResult::Temporary` when none answered.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// The system resolver configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    ResolverConfig(#[source] NetError),
    /// The domain is not a valid DNS name, so it can publish no LDAP service.
    #[error("{domain:?} is not a valid domain name: {source}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// Why it does not parse.
        #[source]
        source: ProtoError,
    },
    /// The `_ldap._tcp` SRV lookup failed for a reason other than "no such
    /// records" (SERVFAIL, REFUSED, timeout, network error).
    #[error("SRV lookup for {name} failed: {source}")]
    SrvLookup {
        /// The SRV owner name asked for.
        name: String,
        /// The resolver's error.
        #[source]
        source: NetError,
    },
    /// The SRV target host name has no usable address.
    #[error("LDAP server {server} has no address: {source}")]
    NoAddress {
        /// `host:port` from the SRV record.
        server: String,
        /// The resolver's error.
        #[source]
        source: NetError,
    },
    /// The SRV target host name resolved to no address at all.
    #[error("LDAP server {server} has no address")]
    NoAddresses {
        /// `host:port` from the SRV record.
        server: String,
    },
    /// No TCP connection could be opened to any address of the server.
    #[error("cannot connect to LDAP server {server}: {source}")]
    Connect {
        /// `host:port` from the SRV record.
        server: String,
        /// The last connection error.
        #[source]
        source: Box<ldap3::LdapError>,
    },
    /// The server did not complete an operation (bind, root DSE read,
    /// search) because the connection failed or the reply was malformed.
    #[error("LDAP server {server}: {operation} failed: {source}")]
    Protocol {
        /// `host:port` from the SRV record.
        server: String,
        /// What was being done.
        operation: &'static str,
        /// ldap3's error.
        #[source]
        source: Box<ldap3::LdapError>,
    },
    /// The server answered an operation with a result code that does not
    /// let the lookup go on (for example a refused anonymous bind, or busy).
    #[error("LDAP server {server}: {operation} returned result code {code}: {text}")]
    Refused {
        /// `host:port` from the SRV record.
        server: String,
        /// What was being done.
        operation: &'static str,
        /// The LDAP result code (RFC 4511 Appendix A).
        code: u32,
        /// The server's diagnostic message.
        text: String,
    },
    /// The server did not finish within the allowed time.
    #[error("LDAP server {server} did not answer within {limit:?}")]
    Timeout {
        /// `host:port` from the SRV record.
        server: String,
        /// The time allowed.
        limit: Duration,
    },
}
