//! The one error type of hisp-trust.

use std::path::PathBuf;

/// Why something hisp-trust was asked to do could not be done.
///
/// A certificate that fails a check is not an error: that is a
/// [`Verdict`](crate::Verdict) with `usable: false`. These are the failures
/// around the checks: a source that cannot be read, bytes that do not parse,
/// OpenSSL failing.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A URL could not be fetched: connection refused, timeout, HTTP error
    /// status, body too large.
    #[error("fetching {url} failed: {cause}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong, one line.
        cause: String,
    },
    /// A URL with a scheme hisp does not fetch (only http and https).
    #[error("cannot fetch {0}: only http and https URLs are fetched")]
    UnsupportedUrl(String),
    /// A local file could not be read.
    #[error("{}: {cause}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        cause: std::io::Error,
    },
    /// A trust bundle that is not a PKCS#7 certs-only structure, or holds
    /// no certificate.
    #[error("trust bundle from {source_name} is unusable: {detail}")]
    BadBundle {
        /// The file or URL it came from.
        source_name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Bytes fetched from an AIA caIssuers URL or a CRL distribution point
    /// that are not a certificate (collection) or a CRL.
    #[error("{url} did not return {expected}: {detail}")]
    BadDownload {
        /// The URL.
        url: String,
        /// What was expected there ("a certificate", "a CRL").
        expected: &'static str,
        /// What OpenSSL said.
        detail: String,
    },
    /// A time that cannot be represented or read.
    #[error("invalid time: {0}")]
    Time(String),
    /// OpenSSL failed while doing something that should not fail.
    #[error("OpenSSL failed while {what}: {cause}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// OpenSSL's error stack.
        cause: openssl::error::ErrorStack,
    },
}

impl TrustError {
    pub(crate) fn crypto(what: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> Self {
        move |cause| TrustError::Crypto { what, cause }
    }
}
