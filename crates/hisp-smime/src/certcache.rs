//! Decoded certificates, kept for the next message from the same sender.
//!
//! Decoding one X.509 certificate costs libcrypto 3.0 about as much as half an
//! RSA signature (its provider decoder for the public key), and a HISP sees
//! the same few hundred sender certificates again and again. The cache is
//! keyed by the SHA-256 of the certificate's DER, so a hit is the same bytes.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use openssl::x509::X509;

/// Entries kept before the cache starts over.
const CAPACITY: usize = 1024;
/// Certificates larger than this are decoded but not kept: the cache is
/// filled before any signature is checked, so its size must stay bounded
/// whatever a sender puts in a message (at most CAPACITY x MAX_DER bytes).
const MAX_DER: usize = 16 * 1024;

fn cache() -> &'static Mutex<HashMap<[u8; 32], X509>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], X509>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The certificate encoded by `der`, from the cache or freshly decoded.
pub(crate) fn decode(der: &[u8]) -> Result<X509, openssl::error::ErrorStack> {
    let key = openssl::sha::sha256(der);
    if let Some(cert) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(cert);
    }
    let cert = X509::from_der(der)?;
    if der.len() > MAX_DER {
        return Ok(cert);
    }
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CAPACITY {
            // Simple and bounded: the working set refills within a few messages.
            c.clear();
        }
        c.insert(key, cert.clone());
    }
    Ok(cert)
}
