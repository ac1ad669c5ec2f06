//! The one error type of hisp-ca.

use std::path::PathBuf;

/// Why a certificate could not be made, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// An address that cannot be put in an rfc822Name.
    #[error("invalid Direct address '{address}': {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A domain that cannot be put in a dNSName.
    #[error("invalid domain '{domain}': {reason}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CA common name that is empty or too long.
    #[error("invalid common name '{0}': it must be 1 to 64 characters")]
    InvalidCommonName(String),
    /// An RSA key size hisp-ca does not make.
    #[error("unsupported RSA key size {0}: use 2048, 3072 or 4096")]
    UnsupportedKeySize(u32),
    /// A validity period that ends before it starts, or cannot be represented.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// A file that would be overwritten.
    #[error("{} already exists; refusing to overwrite it", .0.display())]
    AlreadyExists(PathBuf),
    /// A file or directory that could not be read or written.
    // The cause is part of the message rather than a `source()`, so that the
    // one-line text says everything and chained printers do not repeat it.
    #[error("{}: {cause}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        cause: std::io::Error,
    },
    /// A file that does not hold what it should.
    #[error("{}: {detail}", .path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was expected and what OpenSSL said.
        detail: String,
    },
    /// A CA certificate and key that cannot issue: the key does not match, or
    /// the certificate is not a CA.
    #[error("unusable CA: {0}")]
    UnusableCa(String),
    /// OpenSSL failed while building or signing a certificate.
    #[error("OpenSSL failed while {what}: {cause}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// OpenSSL's error stack.
        cause: openssl::error::ErrorStack,
    },
}

impl CaError {
    pub(crate) fn crypto(what: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> Self {
        move |cause| CaError::Crypto { what, cause }
    }
}
