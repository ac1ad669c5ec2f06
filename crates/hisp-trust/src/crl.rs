//! Certificate revocation lists: the distribution points a certificate names
//! (RFC 5280 §4.2.1.13), the download, and the cache that keeps each CRL
//! until its nextUpdate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use openssl::x509::{X509Crl, X509Ref};

use crate::bundle::first_reason;
use crate::describe::{asn1_rfc3339, rfc3339, unix_of};
use crate::error::TrustError;
use crate::fetch::{is_fetchable, Fetcher};

/// How long a CRL without a nextUpdate is reused, in seconds of validation
/// time. RFC 5280 §5.1.2.5 makes nextUpdate mandatory for conforming CAs;
/// one hour bounds the damage of a CA that leaves it out.
pub const NO_NEXT_UPDATE_REUSE_SECS: i64 = 3600;

/// The CRL distribution point URLs of a certificate (fullName URIs), in the
/// order the certificate lists them, all schemes included.
pub fn crl_urls(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|dp| dp.distpoint())
        .filter_map(|name| name.fullname())
        .flat_map(|names| names.iter().filter_map(|n| n.uri().map(str::to_string)))
        .collect()
}

/// The distribution point URLs hisp can fetch (http and https).
pub fn fetchable_crl_urls(cert: &X509Ref) -> Vec<String> {
    crl_urls(cert)
        .into_iter()
        .filter(|u| is_fetchable(u))
        .collect()
}

/// Reads a CRL, DER (application/pkix-crl) or PEM.
pub fn parse_crl(bytes: &[u8], url: &str) -> Result<X509Crl, TrustError> {
    let is_pem = bytes.windows(10).any(|w| w == b"-----BEGIN");
    if is_pem {
        X509Crl::from_pem(bytes)
    } else {
        X509Crl::from_der(bytes)
    }
    .map_err(|e| TrustError::BadDownload {
        url: url.to_string(),
        expected: "a CRL",
        detail: first_reason(&e),
    })
}

struct Entry {
    crl: Arc<X509Crl>,
    /// Reused while the validation time is before this (Unix seconds).
    good_until: i64,
}

/// CRLs by URL, each reused until its nextUpdate (compared with the
/// validation time, so tests move time instead of sleeping). A failed
/// download is not kept: the next judgement asks again.
#[derive(Default)]
pub struct CrlCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for CrlCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("CrlCache").field("urls", &n).finish()
    }
}

impl CrlCache {
    /// The CRL at `url` current at `at`: from the cache while `at` is
    /// before its nextUpdate, else fetched now. A CRL whose nextUpdate has
    /// already passed at `at` is refused (RFC 5280 §6.3.3 (a)(2): only a
    /// current CRL answers).
    pub fn get(
        &self,
        fetcher: &dyn Fetcher,
        url: &str,
        at: i64,
    ) -> Result<Arc<X509Crl>, TrustError> {
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = entries.get(url) {
                if at < e.good_until {
                    return Ok(Arc::clone(&e.crl));
                }
            }
        }
        let crl = Arc::new(parse_crl(&fetcher.fetch(url)?, url)?);
        let good_until = match crl.next_update() {
            Some(next) => {
                let next_unix = unix_of(next)?;
                if next_unix <= at {
                    return Err(TrustError::Fetch {
                        url: url.to_string(),
                        cause: format!(
                            "the CRL served is stale: its nextUpdate {} is not after {}",
                            asn1_rfc3339(next),
                            rfc3339(at)
                        ),
                    });
                }
                next_unix
            }
            None => at.saturating_add(NO_NEXT_UPDATE_REUSE_SECS),
        };
        tracing::debug!(url, good_until = %rfc3339(good_until), "CRL fetched");
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                url.to_string(),
                Entry {
                    crl: Arc::clone(&crl),
                    good_until,
                },
            );
        Ok(crl)
    }
}
