//! The `Store` trait: everything hisp keeps, behind one interface, so the
//! embedded SQLite store and a shared database can be swapped.

use crate::address::DirectAddress;
use crate::anchor::{AnchorRecord, AnchorSelector, Direction, Flow, NewAnchor};
use crate::bundle::{BundleFetch, BundleId, BundleRecord, BundleSource, NewBundle};
use crate::cert::NewCertificate;
use crate::directory::{AddressRecord, CertificateRecord, DomainRecord, Owner};
use crate::domain::Domain;
use crate::error::StoreError;

/// What every store promises:
///
/// - Every call reads or writes the database itself; nothing is cached, so a
///   change made by one process (`hisp anchor remove`) is seen by every other
///   process (a running `hisp serve`) on its next call.
/// - A call that changes several rows changes all of them or none.
/// - Lists come back in a stable order (by name, then by when added).
///
/// Removal rules: removing a domain is refused while it has addresses
/// ([`StoreError::InUse`]); its anchors, bundles and domain certificates go
/// with it. Removing an address removes its certificates and keys.
pub trait Store: Send + Sync {
    /// Adds a local domain with its domain-bound certificates (each must carry
    /// a subjectAltName dNSName equal to the domain).
    fn add_domain(
        &self,
        domain: &Domain,
        certificates: &[NewCertificate],
    ) -> Result<DomainRecord, StoreError>;

    /// One local domain; [`StoreError::NotFound`] if it is not local.
    fn domain(&self, domain: &Domain) -> Result<DomainRecord, StoreError>;

    /// Every local domain, by name.
    fn domains(&self) -> Result<Vec<DomainRecord>, StoreError>;

    /// Removes a local domain with its anchors, bundles and domain
    /// certificates; refused while it has addresses.
    fn remove_domain(&self, domain: &Domain) -> Result<(), StoreError>;

    /// Adds a local address, whose domain must be local, with its
    /// address-bound certificates (each must carry a subjectAltName
    /// rfc822Name equal to the address). An address differing from an
    /// existing one only in the letter case of its local part is a duplicate.
    fn add_address(
        &self,
        address: &DirectAddress,
        certificates: &[NewCertificate],
    ) -> Result<AddressRecord, StoreError>;

    /// One local address, found without regard to letter case; the record
    /// holds the local part as first added.
    fn address(&self, address: &DirectAddress) -> Result<AddressRecord, StoreError>;

    /// Local addresses (of one domain, or all), by domain then local part.
    fn addresses(&self, domain: Option<&Domain>) -> Result<Vec<AddressRecord>, StoreError>;

    /// Removes a local address and its certificates.
    fn remove_address(&self, address: &DirectAddress) -> Result<(), StoreError>;

    /// Adds a certificate to an existing local address or domain.
    fn add_certificate(
        &self,
        owner: &Owner,
        certificate: &NewCertificate,
    ) -> Result<CertificateRecord, StoreError>;

    /// The certificates of one owner (with private keys), or of every owner
    /// when `None`, oldest first within an owner.
    fn certificates(&self, owner: Option<&Owner>) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Adds anchors to a local domain, all or none: a certificate already
    /// anchored for the domain (same fingerprint) is a duplicate.
    fn add_anchors(
        &self,
        domain: &Domain,
        direction: Direction,
        anchors: &[NewAnchor],
    ) -> Result<Vec<AnchorRecord>, StoreError>;

    /// Anchors of one domain or all, by domain then when added.
    fn anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>, StoreError>;

    /// The anchors a domain trusts for mail flowing `flow` (those marked for
    /// that direction or both), read afresh on every call.
    fn anchors_for(&self, domain: &Domain, flow: Flow) -> Result<Vec<AnchorRecord>, StoreError>;

    /// Removes one anchor of a domain and returns it. A serial matching
    /// several anchors is [`StoreError::Ambiguous`].
    fn remove_anchor(
        &self,
        domain: &Domain,
        selector: &AnchorSelector,
    ) -> Result<AnchorRecord, StoreError>;

    /// Attaches a bundle to a local domain; the same source twice on one
    /// domain is a duplicate.
    fn add_bundle(&self, bundle: &NewBundle) -> Result<BundleRecord, StoreError>;

    /// Bundles of one domain or all, by domain then when added.
    fn bundles(&self, domain: Option<&Domain>) -> Result<Vec<BundleRecord>, StoreError>;

    /// Detaches a bundle from a domain.
    fn remove_bundle(&self, domain: &Domain, source: &BundleSource) -> Result<(), StoreError>;

    /// Records the outcome of a fetch: a good fetch replaces the last good
    /// copy and clears the error; a failed one keeps the last good copy.
    fn record_bundle_fetch(&self, id: BundleId, fetch: &BundleFetch) -> Result<(), StoreError>;
}
