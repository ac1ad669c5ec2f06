//! What the listeners and the workers share: the store, certificate
//! discovery, and what trust judgements need. Keys and anchors are kept
//! parsed ([`Material`]) until the store says they changed, so a change
//! made with the CLI is in force for the next message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hisp_discovery::{Discoverer, Discovery, TrustContext};
use hisp_smime::KeyPair;
use hisp_store::{CertUsage, DirectAddress, Domain, Flow, Owner, Store, StoreError};
use hisp_trust::{parse_bundle, Anchors, Remote, RevocationMode};
use openssl::x509::X509;
use tracing::warn;

use crate::discovered::DiscoveryCache;
use crate::error::GatewayError;
use crate::material::{KeyUse, Material};
use crate::store_calls::StoreHandle;

/// How long a usable discovery answer is kept by default.
pub const DEFAULT_DISCOVERY_TTL: Duration = Duration::from_secs(30);

/// How certificates are judged beyond the anchors.
#[derive(Clone, Debug)]
pub struct TrustSettings {
    /// What to do when a CRL cannot be had.
    pub revocation: RevocationMode,
    /// Network access (caIssuers, CRLs) with its caches, one per process.
    pub remote: Arc<Remote>,
    /// Intermediate certificates kept locally.
    pub intermediates: Vec<X509>,
    /// How long a usable discovery answer is kept (`[discovery]
    /// cache_secs`; zero: never, each message discovers again).
    pub discovery_ttl: Duration,
}

impl TrustSettings {
    /// Hard-fail revocation, HTTP fetching, no local intermediates.
    pub fn new() -> Self {
        TrustSettings {
            revocation: RevocationMode::HardFail,
            remote: Arc::new(Remote::http()),
            intermediates: Vec::new(),
            discovery_ttl: DEFAULT_DISCOVERY_TTL,
        }
    }
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings::new()
    }
}

/// The parts of a running HISP that the SMTP policy and the workers share.
#[derive(Clone)]
pub struct GatewayContext {
    /// The store (domains, keys, anchors, queue, mailboxes, audit).
    pub store: StoreHandle,
    /// Certificate discovery for remote recipients.
    pub discoverer: Arc<Discoverer>,
    /// Trust settings for every judgement.
    pub trust: TrustSettings,
    /// Private keys and anchor stores kept parsed between messages.
    pub material: Arc<Material>,
    /// Usable discovery answers kept for `trust.discovery_ttl`.
    pub discovered: Arc<DiscoveryCache>,
}

impl GatewayContext {
    /// Wires the parts together.
    pub fn new(store: Arc<dyn Store>, discoverer: Arc<Discoverer>, trust: TrustSettings) -> Self {
        GatewayContext {
            store: StoreHandle::new(store),
            discoverer,
            trust,
            material: Arc::new(Material::new()),
            discovered: Arc::new(DiscoveryCache::new()),
        }
    }
}

impl std::fmt::Debug for GatewayContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayContext").finish_non_exhaustive()
    }
}

/// The anchors `domain` trusts for mail flowing `flow`: its anchors and the
/// certificates of the last good copy of each of its bundles marked for that
/// flow. An anchor or bundle that does not parse is logged and left out.
pub fn anchors(store: &dyn Store, domain: &Domain, flow: Flow) -> Result<Vec<X509>, StoreError> {
    let mut out = Vec::new();
    for record in store.anchors_for(domain, flow)? {
        match X509::from_der(&record.der) {
            Ok(cert) => out.push(cert),
            Err(e) => {
                warn!(%domain, subject = %record.info.subject, error = %e, "anchor does not parse; left out")
            }
        }
    }
    for bundle in store.bundles(Some(domain))? {
        if !bundle.direction.covers(flow) {
            continue;
        }
        let Some(bytes) = &bundle.last_good else {
            continue;
        };
        match parse_bundle(bytes, &bundle.source.location()) {
            Ok(certs) => out.extend(certs),
            Err(e) => {
                warn!(%domain, bundle = %bundle.source.location(), error = %e, "bundle does not parse; left out")
            }
        }
    }
    Ok(out)
}

/// The key pairs (certificates with their private keys) of `owners`, in
/// order, keeping those whose usage `fits`. A certificate whose key does not
/// load is logged and left out; an owner that no longer exists has none.
/// Parses every key again: [`Material::key_pairs`] keeps them parsed.
pub fn key_pairs(
    store: &dyn Store,
    owners: &[Owner],
    fits: fn(CertUsage) -> bool,
) -> Result<Vec<KeyPair>, StoreError> {
    let mut out = Vec::new();
    for owner in owners {
        out.extend(owner_key_pairs(store, owner, fits)?);
    }
    Ok(out)
}

/// The key pairs of one owner whose usage `fits`, as [`key_pairs`] reads them.
pub(crate) fn owner_key_pairs(
    store: &dyn Store,
    owner: &Owner,
    fits: impl Fn(CertUsage) -> bool,
) -> Result<Vec<KeyPair>, StoreError> {
    // An owner removed since (an address deleted after its mail was
    // accepted) has no keys any more; the others may still do.
    let records = match store.certificates(Some(owner)) {
        Ok(records) => records,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for record in records {
        let Some(key) = &record.private_key else {
            continue;
        };
        if !fits(record.usage) {
            continue;
        }
        match KeyPair::from_bytes(&record.der, key.as_bytes()) {
            Ok(pair) => out.push(pair),
            Err(e) => {
                warn!(%owner, subject = %record.info.subject, error = %e, "certificate and key do not load; left out")
            }
        }
    }
    Ok(out)
}

/// Whether a key may sign (RFC 5280 §4.2.1.3: digitalSignature).
pub fn can_sign(usage: CertUsage) -> bool {
    matches!(usage, CertUsage::Both | CertUsage::Signing)
}

/// Whether a key may decrypt (keyEncipherment).
pub fn can_decrypt(usage: CertUsage) -> bool {
    matches!(usage, CertUsage::Both | CertUsage::Encryption)
}

impl GatewayContext {
    /// Whether `domain` is one of the local domains.
    pub async fn is_local(&self, domain: &Domain) -> Result<bool, GatewayError> {
        let domain = domain.clone();
        self.store
            .call(move |s| match s.domain(&domain) {
                Ok(_) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e),
            })
            .await
    }

    /// Whether `address` is an existing address of a local domain.
    pub async fn is_local_address(&self, address: &DirectAddress) -> Result<bool, GatewayError> {
        let address = address.clone();
        self.store
            .call(move |s| match s.address(&address) {
                Ok(_) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e),
            })
            .await
    }

    /// The key pairs of `owners` for `usage`, kept parsed (read on the
    /// blocking pool when the store's keys changed).
    pub async fn key_pairs(
        &self,
        owners: Vec<Owner>,
        usage: KeyUse,
    ) -> Result<Vec<KeyPair>, GatewayError> {
        let material = self.material.clone();
        self.store
            .call(move |s| material.key_pairs(s, &owners, usage))
            .await
    }

    /// The anchors `domain` trusts for `flow` with their certificate store,
    /// kept built (rebuilt on the blocking pool when anchors or bundles
    /// changed).
    pub async fn anchors_for(
        &self,
        domain: &Domain,
        flow: Flow,
    ) -> Result<Arc<Anchors>, GatewayError> {
        let (material, domain) = (self.material.clone(), domain.clone());
        self.store
            .run(move |s| material.anchors(s, &domain, flow))
            .await
    }

    /// Discovers the certificates of a remote `address` and judges them
    /// against the outgoing anchors of the sender's domain as they are now;
    /// a usable answer is kept for `trust.discovery_ttl` (`discovered.rs`).
    pub async fn discover(
        &self,
        sender_domain: &Domain,
        address: &DirectAddress,
        at: i64,
    ) -> Result<Discovery, GatewayError> {
        let anchors = self.anchors_for(sender_domain, Flow::Outgoing).await?;
        let kept = self
            .discovered
            .get(sender_domain, address, &anchors, at, Instant::now());
        if let Some(discovery) = kept {
            return Ok(discovery);
        }
        let trust = TrustContext {
            anchors: &anchors,
            intermediates: &self.trust.intermediates,
            at,
            revocation: self.trust.revocation,
            remote: &self.trust.remote,
        };
        let discovery = self.discoverer.discover(&address.to_string(), &trust).await;
        self.discovered.put(
            sender_domain,
            address,
            &anchors,
            &discovery,
            at,
            self.trust.discovery_ttl,
            Instant::now(),
        );
        Ok(discovery)
    }
}
