//! Direct certificate discovery (Certificate Discovery for Direct; RFC 4398 DNS
//! CERT; RFC 4523 LDAP): finds the certificates published for a Direct
//! address or its domain. Judging them (trust, binding, revocation) belongs
//! to hisp-trust; the order in which sources decide is in `order`.

mod types;

pub use types::{FoundCert, Query, Source, SourceResult};
