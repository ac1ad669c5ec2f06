//! Direct certificate discovery (Certificate Discovery for Direct; RFC 4398 DNS
//! CERT; RFC 4523 LDAP): finds the certificates published for a Direct
//! address or its domain. Judging them (trust, binding, revocation) belongs
//! to hisp-trust; the order in which sources decide is in `order`.

pub mod ldap;
pub mod order;
mod types;

pub use ldap::{LdapDiscovery, LdapError, LdapSettings, LDAP_CERT_TTL};
pub use types::{FoundCert, Query, Source, SourceResult};
pub mod dns;
pub use dns::{DnsConfig, DnsDiscovery, DnsError, Exchanger, MxError, MxResolver};
pub mod responder;
pub use order::{Discoverer, Discovery, Judged, TrustContext};
pub use responder::{LocalRecords, Responder, ResponderError};
