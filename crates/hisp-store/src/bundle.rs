//! Trust bundles of local domains: where they come from and what was last
//! fetched. Fetching and parsing belong to hisp-trust; the store keeps the
//! source, the schedule and the last good bytes.

use std::fmt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::anchor::Direction;
use crate::error::StoreError;
use hisp_address::Domain;

/// The row id of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BundleId(pub i64);

/// Where a bundle is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BundleSource {
    /// An http or https URL.
    Url(String),
    /// An absolute path to a file.
    File(PathBuf),
}

impl BundleSource {
    /// An `http://` or `https://` URL is a URL; anything else must be an
    /// absolute file path (the CLI makes relative paths absolute).
    pub fn parse(text: &str) -> Result<BundleSource, StoreError> {
        let invalid = |reason: &str| StoreError::Invalid {
            what: "bundle source",
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let lower = text.to_ascii_lowercase();
        if let Some(rest) = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))
        {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                return Err(invalid("the URL has no host"));
            }
            if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid("a URL holds no spaces or control characters"));
            }
            return Ok(BundleSource::Url(text.to_string()));
        }
        if text.contains("://") {
            return Err(invalid("only http and https URLs are fetched"));
        }
        let path = Path::new(text);
        if !path.is_absolute() {
            return Err(invalid("a bundle file path must be absolute"));
        }
        Ok(BundleSource::File(path.to_path_buf()))
    }

    /// `url` or `file`.
    pub fn kind(&self) -> &'static str {
        match self {
            BundleSource::Url(_) => "url",
            BundleSource::File(_) => "file",
        }
    }

    /// The URL or the path, as text.
    pub fn location(&self) -> String {
        match self {
            BundleSource::Url(u) => u.clone(),
            BundleSource::File(p) => p.display().to_string(),
        }
    }
}

impl fmt::Display for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

/// Refresh intervals shorter than this are refused: a bundle is a published
/// file, and hammering its server helps no one.
pub const MIN_REFRESH_SECS: u32 = 60;

/// A bundle to attach to a local domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBundle {
    /// The local domain.
    pub domain: Domain,
    /// Where it is read from.
    pub source: BundleSource,
    /// Which mail its anchors are trusted for.
    pub direction: Direction,
    /// Seconds between refreshes; at least [`MIN_REFRESH_SECS`].
    pub refresh_secs: u32,
}

/// The result of one fetch of a bundle, recorded by [`crate::Store::record_bundle_fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleFetch {
    /// The bundle was read and parsed; these bytes become the last good copy.
    Good {
        /// The bundle as fetched (PKCS#7 DER or PEM).
        bytes: Vec<u8>,
        /// When.
        at: OffsetDateTime,
    },
    /// The fetch or parse failed; the last good copy is kept.
    Failed {
        /// What went wrong, for `hisp bundle list`.
        error: String,
        /// When.
        at: OffsetDateTime,
    },
}

/// A bundle as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRecord {
    /// Row id.
    pub id: BundleId,
    /// The local domain.
    pub domain: Domain,
    /// Where it is read from.
    pub source: BundleSource,
    /// Which mail its anchors are trusted for.
    pub direction: Direction,
    /// Seconds between refreshes.
    pub refresh_secs: u32,
    /// The last good copy, if any fetch succeeded.
    pub last_good: Option<Vec<u8>>,
    /// When the last good copy was fetched.
    pub last_good_at: Option<OffsetDateTime>,
    /// When the last fetch (good or failed) happened.
    pub last_fetched_at: Option<OffsetDateTime>,
    /// The error of the last fetch, `None` when it succeeded or none happened.
    pub last_error: Option<String>,
    /// When it was added.
    pub added_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_or_absolute_paths() {
        assert_eq!(
            BundleSource::parse("https://bundles.example/a.p7b").unwrap(),
            BundleSource::Url("https://bundles.example/a.p7b".into())
        );
        assert_eq!(
            BundleSource::parse("/etc/hisp/a.p7b").unwrap(),
            BundleSource::File("/etc/hisp/a.p7b".into())
        );
        for bad in ["a.p7b", "ftp://x/a.p7b", "https:///a.p7b", "http://a b/"] {
            assert!(BundleSource::parse(bad).is_err(), "{bad}");
        }
    }
}
