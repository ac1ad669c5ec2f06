//! A domain's anchors for one direction, ready for path validation: the
//! certificates and the OpenSSL certificate store built from them once.
//!
//! Building the store (and, before it, parsing the anchors and bundles it is
//! made of) is work that does not change between messages; a caller that
//! keeps an [`Anchors`] until the anchors change (the gateway does, per
//! domain and direction) pays for it once. What differs per validation (the
//! time, the intermediates) is given to each validation.

use std::fmt;

use openssl::x509::store::{X509Store, X509StoreBuilder, X509StoreRef};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::X509;

use crate::error::TrustError;

/// Trust anchors with their certificate store. Shared between threads
/// (OpenSSL locks the store's lookups), so one value serves concurrent
/// validations.
pub struct Anchors {
    certs: Vec<X509>,
    store: X509Store,
}

impl Anchors {
    /// Builds the store of `certs`. Any anchor ends a path, root or not
    /// (partial chains: Direct anchors are often intermediate CAs), and every
    /// certificate of a path must meet security level 2.
    pub fn new(certs: Vec<X509>) -> Result<Anchors, TrustError> {
        let mut store = X509StoreBuilder::new().map_err(TrustError::crypto("making a store"))?;
        for anchor in &certs {
            store
                .add_cert(anchor.clone())
                .map_err(TrustError::crypto("adding an anchor"))?;
        }
        let mut param = X509VerifyParam::new().map_err(TrustError::crypto("making parameters"))?;
        // Direct anchors are often intermediate CAs: a path may end at any anchor.
        param
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(TrustError::crypto("setting verify flags"))?;
        // Security level 2 for every certificate of the path: keys of at least
        // 112 bits of strength (RSA and DSA 2048, EC 224) and no MD5 or SHA-1
        // certificate signatures (Applicability Statement 1.3 §5).
        param.set_auth_level(2);
        store
            .set_param(&param)
            .map_err(TrustError::crypto("setting verify parameters"))?;
        Ok(Anchors {
            certs,
            store: store.build(),
        })
    }

    /// No anchors at all.
    pub fn empty() -> Result<Anchors, TrustError> {
        Anchors::new(Vec::new())
    }

    /// The anchor certificates, in the order given.
    pub fn certs(&self) -> &[X509] {
        &self.certs
    }

    /// Whether there is no anchor.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// How many anchors there are.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// The store built from them (the validation time is set per
    /// validation, on its context).
    pub(crate) fn store(&self) -> &X509StoreRef {
        &self.store
    }
}

impl fmt::Debug for Anchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anchors")
            .field("anchors", &crate::path::anchor_list(&self.certs))
            .finish()
    }
}
