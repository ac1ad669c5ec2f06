//! What judging a certificate may fetch from the network (AIA issuers, CRLs),
//! with the fetcher and the caches that keep the downloads between calls.

use std::sync::Arc;

use crate::aia::AiaCache;
use crate::crl::CrlCache;
use crate::fetch::{Fetcher, HttpFetcher};

/// The fetcher and the download caches shared by every judgement. Keep one
/// per process (or per test); it caches downloads, never verdicts.
#[derive(Clone)]
pub struct Remote {
    fetcher: Arc<dyn Fetcher>,
    aia: Arc<AiaCache>,
    crls: Arc<CrlCache>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("aia", &self.aia)
            .field("crls", &self.crls)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Empty caches over `fetcher`.
    pub fn new(fetcher: Arc<dyn Fetcher>) -> Self {
        Remote {
            fetcher,
            aia: Arc::new(AiaCache::default()),
            crls: Arc::new(CrlCache::default()),
        }
    }

    /// Empty caches over an [`HttpFetcher`] with its default limits.
    pub fn http() -> Self {
        Remote::new(Arc::new(HttpFetcher::default()))
    }

    /// The fetcher.
    pub fn fetcher(&self) -> &dyn Fetcher {
        self.fetcher.as_ref()
    }

    /// The caIssuers cache.
    pub fn aia(&self) -> &AiaCache {
        &self.aia
    }

    /// The CRL cache.
    pub fn crls(&self) -> &CrlCache {
        &self.crls
    }
}
