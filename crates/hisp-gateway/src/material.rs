//! Key and trust material kept parsed between messages.
//!
//! Parsing a private key from its PEM, decoding anchors and bundles and
//! building their certificate store cost more than many a message's own
//! work, and they change only when an administrator changes them. So a
//! running server keeps them: the key pairs of each owner (address or
//! domain) per use, and the [`Anchors`] of each domain per direction. Before
//! every use [`Store::directory_version`] is read; when it moved (the CLI in
//! another process replaced a certificate, removed an anchor; this process
//! refreshed a bundle) everything kept is dropped and read again, so a
//! change is in force for the next message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hisp_smime::KeyPair;
use hisp_store::{CertUsage, DirectoryVersion, Domain, Flow, Owner, Store, StoreError};
use hisp_trust::Anchors;
use tracing::debug;

use crate::context::{anchors, owner_key_pairs};
use crate::error::GatewayError;

/// What a private key is wanted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Signing outbound mail and MDNs (RFC 5280 §4.2.1.3: digitalSignature).
    Sign,
    /// Decrypting inbound mail (keyEncipherment).
    Decrypt,
}

impl KeyUse {
    /// Whether a certificate of `usage` may serve this use.
    pub fn fits(self, usage: CertUsage) -> bool {
        match self {
            KeyUse::Sign => crate::context::can_sign(usage),
            KeyUse::Decrypt => crate::context::can_decrypt(usage),
        }
    }
}

/// The parsed key pairs and anchor stores of a running server, each valid for
/// the [`DirectoryVersion`] it was read at. One per server, shared by the
/// listeners and the workers ([`GatewayContext`](crate::GatewayContext)).
#[derive(Default)]
pub struct Material {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// The version everything below was read at (or after).
    version: Option<DirectoryVersion>,
    keys: HashMap<(Owner, KeyUse), Arc<[KeyPair]>>,
    anchors: HashMap<(Domain, Flow), Arc<Anchors>>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.lock();
        f.debug_struct("Material")
            .field("version", &kept.version)
            .field("owners", &kept.keys.len())
            .field("anchor_sets", &kept.anchors.len())
            .finish()
    }
}

impl Material {
    /// Nothing kept yet.
    pub fn new() -> Self {
        Material::default()
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        // Nothing kept is half-written: a panic elsewhere leaves it usable.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the store's version and drops what was read at another one.
    /// Returns the version: what is read from the store from now on is at
    /// least as new as it, so it may be kept under it.
    fn current(&self, store: &dyn Store) -> Result<DirectoryVersion, StoreError> {
        let version = store.directory_version()?;
        let mut kept = self.lock();
        if kept.version != Some(version) {
            if kept.version.is_some() {
                debug!(
                    ?version,
                    "keys, anchors or bundles changed: parsed material dropped"
                );
            }
            kept.keys.clear();
            kept.anchors.clear();
            kept.version = Some(version);
        }
        Ok(version)
    }

    /// The key pairs of `owners` for `usage`, in owner order, as
    /// [`context::key_pairs`](crate::context::key_pairs) reads them, parsed
    /// once per owner and use until the store's keys change.
    pub fn key_pairs(
        &self,
        store: &dyn Store,
        owners: &[Owner],
        usage: KeyUse,
    ) -> Result<Vec<KeyPair>, StoreError> {
        let version = self.current(store)?;
        let mut out = Vec::new();
        for owner in owners {
            let key = (owner.clone(), usage);
            let found = self.lock().keys.get(&key).cloned();
            let pairs = match found {
                Some(pairs) => pairs,
                None => {
                    let pairs: Arc<[KeyPair]> =
                        owner_key_pairs(store, owner, |u| usage.fits(u))?.into();
                    let mut kept = self.lock();
                    // Kept only if nothing changed since the version was read.
                    if kept.version == Some(version) {
                        kept.keys.insert(key, pairs.clone());
                    }
                    pairs
                }
            };
            out.extend(pairs.iter().cloned());
        }
        Ok(out)
    }

    /// The anchors `domain` trusts for mail flowing `flow` (its anchors and
    /// its bundles' certificates, as [`context::anchors`](crate::context::anchors)
    /// reads them) with their certificate store, built once until the
    /// store's anchors or bundles change.
    pub fn anchors(
        &self,
        store: &dyn Store,
        domain: &Domain,
        flow: Flow,
    ) -> Result<Arc<Anchors>, GatewayError> {
        let version = self.current(store)?;
        let key = (domain.clone(), flow);
        if let Some(found) = self.lock().anchors.get(&key) {
            return Ok(found.clone());
        }
        let built = Anchors::new(anchors(store, domain, flow)?).map_err(|source| {
            GatewayError::Anchors {
                domain: domain.to_string(),
                source,
            }
        })?;
        let built = Arc::new(built);
        let mut kept = self.lock();
        if kept.version == Some(version) {
            kept.anchors.insert(key, built.clone());
        }
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foreign_types::ForeignTypeRef;
    use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
    use hisp_store::{AnchorSelector, Direction, NewAnchor, NewCertificate, SqliteStore};

    fn key_ptr(pairs: &[KeyPair]) -> usize {
        pairs[0].key.as_ref().as_ptr() as usize
    }

    /// Parsed once, kept while the store is unchanged, read again when
    /// another connection (the CLI) changed it.
    #[test]
    fn keys_and_anchors_are_parsed_once_until_another_process_changes_them() {
        let tmp = tempfile::tempdir().unwrap();
        let server = SqliteStore::open_in(tmp.path()).unwrap();
        let ca = CertificateAuthority::create("material root", &CaOptions::default()).unwrap();
        let d = Domain::parse("a.example").unwrap();
        let alice = hisp_store::DirectAddress::parse("alice@a.example").unwrap();
        let issued = issue(
            &ca,
            &Binding::Address(alice.to_string()),
            &IssueOptions::default(),
        )
        .unwrap();
        let cert = NewCertificate::new(
            &issued.cert.to_der().unwrap(),
            Some(&issued.key_pem().unwrap()),
        )
        .unwrap();
        server.add_domain(&d, &[]).unwrap();
        server.add_address(&alice, &[cert]).unwrap();
        let anchor = NewAnchor::from_der(&ca.cert().to_der().unwrap()).unwrap();
        server.add_anchors(&d, Direction::Both, &[anchor]).unwrap();

        let material = Material::new();
        let owners = [Owner::Address(alice.clone())];
        let first = material
            .key_pairs(&server, &owners, KeyUse::Decrypt)
            .unwrap();
        let again = material
            .key_pairs(&server, &owners, KeyUse::Decrypt)
            .unwrap();
        assert_eq!(key_ptr(&first), key_ptr(&again), "the same parsed key");
        let anchors = material.anchors(&server, &d, Flow::Incoming).unwrap();
        assert!(Arc::ptr_eq(
            &anchors,
            &material.anchors(&server, &d, Flow::Incoming).unwrap()
        ));
        assert_eq!(anchors.len(), 1);

        let cli = SqliteStore::open_in(tmp.path()).unwrap();
        let fingerprint = cli.anchors(None).unwrap()[0].info.fingerprint;
        cli.remove_anchor(&d, &AnchorSelector::Fingerprint(fingerprint))
            .unwrap();
        assert!(material
            .anchors(&server, &d, Flow::Incoming)
            .unwrap()
            .is_empty());
        let reread = material
            .key_pairs(&server, &owners, KeyUse::Decrypt)
            .unwrap();
        assert_ne!(key_ptr(&first), key_ptr(&reread), "parsed again");
    }
}
