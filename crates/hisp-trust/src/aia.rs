//! Issuer certificates fetched through a certificate's Authority Information
//! Access caIssuers URL (RFC 5280 §4.2.2.1), and the cache that keeps them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use openssl::nid::Nid;
use openssl::x509::{X509Ref, X509};

use crate::bundle::{first_reason, parse_bundle};
use crate::error::TrustError;
use crate::fetch::{is_fetchable, Fetcher};

/// The caIssuers URLs of a certificate that hisp can fetch (http and https),
/// in the order the certificate lists them.
pub fn ca_issuer_urls(cert: &X509Ref) -> Vec<String> {
    let Some(access) = cert.authority_info() else {
        return Vec::new();
    };
    access
        .iter()
        .filter(|ad| ad.method().nid() == Nid::AD_CA_ISSUERS)
        .filter_map(|ad| ad.location().uri().map(str::to_string))
        .filter(|u| is_fetchable(u))
        .collect()
}

/// Reads what a caIssuers URL serves: one DER certificate
/// (application/pkix-cert), a PKCS#7 certs-only collection
/// (application/pkcs7-mime, .p7c) in DER, or either in PEM.
pub fn parse_issuer_certs(bytes: &[u8], url: &str) -> Result<Vec<X509>, TrustError> {
    let bad = |detail: String| TrustError::BadDownload {
        url: url.to_string(),
        expected: "a certificate or a PKCS#7 certificate collection",
        detail,
    };
    let is_pem = bytes.windows(10).any(|w| w == b"-----BEGIN");
    let is_pkcs7_pem = bytes.windows(16).any(|w| w == b"-----BEGIN PKCS7");
    let certs = if is_pkcs7_pem {
        parse_bundle(bytes, url).map_err(|e| bad(e.to_string()))?
    } else if is_pem {
        X509::stack_from_pem(bytes).map_err(|e| bad(first_reason(&e)))?
    } else {
        match X509::from_der(bytes) {
            Ok(c) => vec![c],
            Err(der_err) => parse_bundle(bytes, url).map_err(|_| bad(first_reason(&der_err)))?,
        }
    };
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

struct Entry {
    certs: Vec<X509>,
    fetched: Instant,
}

/// caIssuers downloads by URL. A successful download is kept for
/// [`AiaCache::TTL`] of wall time (issuer certificates change rarely; the
/// time is not the validation time, which may lie in the past); a failed one
/// is not kept, so the next judgement tries again.
#[derive(Default)]
pub struct AiaCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for AiaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("AiaCache").field("urls", &n).finish()
    }
}

impl AiaCache {
    /// How long a download is reused.
    pub const TTL: Duration = Duration::from_secs(24 * 3600);

    /// The certificates at `url`, from the cache or fetched now.
    pub fn issuers(&self, fetcher: &dyn Fetcher, url: &str) -> Result<Vec<X509>, TrustError> {
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = entries.get(url) {
                if e.fetched.elapsed() < Self::TTL {
                    return Ok(e.certs.clone());
                }
            }
        }
        // The lock is not held while fetching: a slow server must not stall
        // every other judgement. Two concurrent misses may both fetch.
        let certs = parse_issuer_certs(&fetcher.fetch(url)?, url)?;
        tracing::debug!(url, certs = certs.len(), "caIssuers fetched");
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                url.to_string(),
                Entry {
                    certs: certs.clone(),
                    fetched: Instant::now(),
                },
            );
        Ok(certs)
    }
}
