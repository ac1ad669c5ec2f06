//! Trust bundles: PKCS#7 certs-only structures (.p7b, RFC 5652 §5 SignedData
//! with certificates and no signers), DER or PEM, from a file or an http(s)
//! URL, refreshed on an interval and on demand.

use std::fmt;
use std::path::PathBuf;

use openssl::pkcs7::Pkcs7;
use openssl::x509::X509;

use crate::describe::rfc3339;
use crate::error::TrustError;
use crate::fetch::{is_fetchable, Fetcher};

/// Reads the certificates of a PKCS#7 certs-only bundle, DER or PEM
/// (`-----BEGIN PKCS7-----`). `source_name` names the file or URL in errors.
///
/// A bundle without any certificate is an error: refreshing to an empty
/// bundle would silently stop trusting a whole community, so it is treated
/// as a failed fetch and the last good bundle stays.
pub fn parse_bundle(bytes: &[u8], source_name: &str) -> Result<Vec<X509>, TrustError> {
    let bad = |detail: String| TrustError::BadBundle {
        source_name: source_name.to_string(),
        detail,
    };
    let looks_pem = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"));
    let p7 = if looks_pem {
        Pkcs7::from_pem(bytes)
    } else {
        Pkcs7::from_der(bytes)
    }
    .map_err(|e| {
        bad(format!(
            "not a PKCS#7 structure ({}): {}",
            if looks_pem { "PEM" } else { "DER" },
            first_reason(&e)
        ))
    })?;
    let signed = p7
        .signed()
        .ok_or_else(|| bad("the PKCS#7 structure is not SignedData".into()))?;
    let certs: Vec<X509> = signed
        .certificates()
        .map(|s| s.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    if certs.is_empty() {
        return Err(bad("it holds no certificate".into()));
    }
    Ok(certs)
}

pub(crate) fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_string))
        .unwrap_or_else(|| e.to_string())
}

/// Where a bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// A local file.
    File(PathBuf),
    /// An http or https URL, fetched through a [`Fetcher`].
    Url(String),
}

impl BundleSource {
    /// An `http://` or `https://` URL, a `file://` URL or a plain path.
    pub fn parse(text: &str) -> Self {
        if is_fetchable(text) {
            BundleSource::Url(text.to_string())
        } else if let Some(path) = text.strip_prefix("file://") {
            BundleSource::File(PathBuf::from(path))
        } else {
            BundleSource::File(PathBuf::from(text))
        }
    }

    /// Reads the bytes from the file or through `fetcher`.
    pub fn read(&self, fetcher: &dyn Fetcher) -> Result<Vec<u8>, TrustError> {
        match self {
            BundleSource::File(path) => std::fs::read(path).map_err(|cause| TrustError::Io {
                path: path.clone(),
                cause,
            }),
            BundleSource::Url(url) => fetcher.fetch(url),
        }
    }
}

impl fmt::Display for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleSource::File(p) => write!(f, "{}", p.display()),
            BundleSource::Url(u) => f.write_str(u),
        }
    }
}

/// A bundle as last read successfully.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Its certificates, in the order of the bundle.
    pub certs: Vec<X509>,
    /// When it was read (Unix seconds).
    pub fetched_at: i64,
}

/// A bundle with its source, its last good contents and its refresh
/// schedule. The caller drives it: [`BundleState::refresh_if_due`] from a
/// periodic task, [`BundleState::refresh`] for `hisp bundle refresh`.
#[derive(Debug, Clone)]
pub struct BundleState {
    source: BundleSource,
    interval_secs: i64,
    last_good: Option<Bundle>,
    last_attempt: Option<i64>,
    last_error: Option<String>,
}

impl BundleState {
    /// A bundle not read yet, to be refreshed every `interval_secs` seconds
    /// (at least one second).
    pub fn new(source: BundleSource, interval_secs: i64) -> Self {
        BundleState {
            source,
            interval_secs: interval_secs.max(1),
            last_good: None,
            last_attempt: None,
            last_error: None,
        }
    }

    /// Starts from contents read earlier (kept by the store), so that a
    /// restart trusts what it trusted before even if the source is down.
    pub fn with_last_good(mut self, bundle: Bundle) -> Self {
        self.last_attempt = Some(bundle.fetched_at);
        self.last_good = Some(bundle);
        self
    }

    /// Where the bundle comes from.
    pub fn source(&self) -> &BundleSource {
        &self.source
    }

    /// The last good bundle, if one was ever read.
    pub fn last_good(&self) -> Option<&Bundle> {
        self.last_good.as_ref()
    }

    /// The certificates of the last good bundle (empty before the first
    /// successful read).
    pub fn certs(&self) -> &[X509] {
        self.last_good
            .as_ref()
            .map(|b| b.certs.as_slice())
            .unwrap_or(&[])
    }

    /// Why the last refresh failed, or `None` when it succeeded.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether a refresh is due at `now`: never tried, or the interval has
    /// passed since the last attempt (successful or not).
    pub fn is_due(&self, now: i64) -> bool {
        self.last_attempt
            .is_none_or(|t| now.saturating_sub(t) >= self.interval_secs)
    }

    /// Reads the bundle now. On success it replaces the last good one; on
    /// failure the last good one stays in force, the failure is logged
    /// (warn, with the source and the cause) and returned.
    pub fn refresh(&mut self, fetcher: &dyn Fetcher, now: i64) -> Result<&Bundle, TrustError> {
        self.last_attempt = Some(now);
        let source_name = self.source.to_string();
        let read = self
            .source
            .read(fetcher)
            .and_then(|bytes| parse_bundle(&bytes, &source_name));
        match read {
            Ok(certs) => {
                tracing::info!(source = %source_name, certs = certs.len(), "trust bundle refreshed");
                self.last_error = None;
                Ok(self.last_good.insert(Bundle {
                    certs,
                    fetched_at: now,
                }))
            }
            Err(e) => {
                let kept = match &self.last_good {
                    Some(b) => format!(
                        "keeping the bundle read at {} ({} certificates)",
                        rfc3339(b.fetched_at),
                        b.certs.len()
                    ),
                    None => "no earlier bundle to keep".to_string(),
                };
                tracing::warn!(source = %source_name, cause = %e, "trust bundle refresh failed; {kept}");
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Refreshes when [`BundleState::is_due`]; `None` when it was not due.
    pub fn refresh_if_due(
        &mut self,
        fetcher: &dyn Fetcher,
        now: i64,
    ) -> Option<Result<&Bundle, TrustError>> {
        if self.is_due(now) {
            Some(self.refresh(fetcher, now))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_is_a_url_or_a_path() {
        assert_eq!(
            BundleSource::parse("https://bundles.example/a.p7b"),
            BundleSource::Url("https://bundles.example/a.p7b".into())
        );
        assert_eq!(
            BundleSource::parse("file:///etc/hisp/a.p7b"),
            BundleSource::File("/etc/hisp/a.p7b".into())
        );
        assert_eq!(
            BundleSource::parse("certs/a.p7b"),
            BundleSource::File("certs/a.p7b".into())
        );
    }

    #[test]
    fn never_read_bundle_is_due_and_empty() {
        let state = BundleState::new(BundleSource::parse("x.p7b"), 0);
        assert!(state.is_due(0));
        assert!(state.certs().is_empty());
        assert!(state.last_good().is_none());
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        struct NoNetwork;
        impl Fetcher for NoNetwork {
            fn fetch(&self, url: &str) -> Result<Vec<u8>, TrustError> {
                Err(TrustError::UnsupportedUrl(url.into()))
            }
        }
        let mut state = BundleState::new(BundleSource::parse("/nonexistent/x.p7b"), 60);
        let err = state.refresh(&NoNetwork, 100).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/x.p7b: "), "{err}");
        assert!(!state.is_due(159));
        assert!(state.is_due(160));
    }
}
