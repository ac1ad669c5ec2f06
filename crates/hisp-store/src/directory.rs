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
