//! Local domains, addresses and their certificates, as stored.

use std::fmt;

use time::OffsetDateTime;

use crate::cert::{CertInfo, CertUsage, PrivateKeyPem};
use hisp_address::DirectAddress;
use hisp_address::Domain;

/// A local domain as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// The domain.
    pub domain: Domain,
    /// When it was added.
    pub added_at: OffsetDateTime,
}

/// A local address as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    /// The address, its local part as first added.
    pub address: DirectAddress,
    /// When it was added.
    pub added_at: OffsetDateTime,
}

/// Whose certificate it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// An address-bound certificate of a local address.
    Address(DirectAddress),
    /// A domain-bound certificate of a local domain.
    Domain(Domain),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Address(a) => write!(f, "address {a}"),
            Owner::Domain(d) => write!(f, "domain {d}"),
        }
    }
}

/// Applicability Statement 1.3 §4.1: an address's certificate carries the
/// address as an rfc822Name, a domain's carries the domain as a dNSName.
pub(crate) fn check_binding(
    owner: &Owner,
    c: &crate::cert::NewCertificate,
) -> Result<(), crate::error::StoreError> {
    let (bound, names) = match owner {
        Owner::Address(a) => (c.info.binds_address(&a.to_string()), &c.info.emails),
        Owner::Domain(d) => (c.info.binds_domain(d.as_str()), &c.info.dns_names),
    };
    if bound {
        return Ok(());
    }
    let kind = match owner {
        Owner::Address(_) => "rfc822Name",
        Owner::Domain(_) => "dNSName",
    };
    Err(crate::error::StoreError::Invalid {
        what: "certificate",
        value: format!("{} (serial {})", c.info.subject, c.info.serial),
        reason: format!(
            "it is not bound to the {owner}: its subjectAltName {kind} entries are {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    })
}

/// The row id of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateId(pub i64);

/// A certificate of a local address or domain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Row id.
    pub id: CertificateId,
    /// The address or domain it belongs to.
    pub owner: Owner,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Subject, issuer, serial, fingerprint, validity. The SAN lists are not
    /// kept and come back empty.
    pub info: CertInfo,
    /// What its key is for.
    pub usage: CertUsage,
    /// Its private key, for certificates hisp signs or decrypts with.
    pub private_key: Option<PrivateKeyPem>,
    /// When it was added.
    pub added_at: OffsetDateTime,
}
