//! A small certificate authority for Direct test and demo certificates.
//!
//! [`CertificateAuthority::create`] makes a self-signed root, [`issue`] makes
//! end-entity certificates that follow the Direct certificate profile
//! (Applicability Statement for Secure Health Transport 1.3 §4; Direct
//! Certificate Profile): exactly one subjectAltName binding the certificate to
//! an address (rfc822Name) or a domain (dNSName), keyUsage for signing and/or
//! key encipherment, extendedKeyUsage emailProtection.
//!
//! This is for test beds, demos and the conformance tests of hisp itself; a
//! production HISP gets its certificates from an accredited CA.
//!
//! Files are written by [`CertificateAuthority::save`] and [`Issued::save`];
//! private keys are created with mode 0600 and never exist with wider
//! permissions.

mod authority;
mod build;
mod error;
mod files;
mod leaf;
mod name;
mod validity;

#[cfg(test)]
mod tests;

pub use authority::{CaOptions, CertificateAuthority, CA_CERT_DER, CA_CERT_PEM, CA_KEY_PEM};
pub use build::{KEY_SIZES, WEAK_KEY_SIZE};
pub use error::CaError;
pub use leaf::{issue, IssueOptions, Issued, Usage, CERT_DER, CERT_PEM, KEY_PEM};
pub use name::Binding;
pub use validity::Validity;
