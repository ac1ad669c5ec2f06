//! Getting bytes from a URL: trust bundles, AIA caIssuers certificates and
//! CRLs. The [`Fetcher`] trait lets tests and other crates count, fake or
//! proxy requests; [`HttpFetcher`] is the real one.

use std::io::Read;
use std::time::Duration;

use crate::error::TrustError;

/// Something that returns the body of an http(s) URL.
///
/// Implementations must give up after a bounded time and a bounded size, and
/// must return an error (never an empty body) on an HTTP error status.
pub trait Fetcher: Send + Sync {
    /// The body at `url`.
    fn fetch(&self, url: &str) -> Result<Vec<u8>, TrustError>;
}

/// Whether hisp fetches this URL at all: only `http://` and `https://`.
///
/// RFC 5280 §4.2.2.1 and §4.2.1.13 also allow ldap: URIs for caIssuers and
/// CRL distribution points; Direct trust communities publish over http, and
/// hisp does not speak LDAP for these.
pub fn is_fetchable(url: &str) -> bool {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Fetches over http and https with ureq, with a time and a size limit.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    agent: ureq::Agent,
    max_bytes: u64,
}

impl HttpFetcher {
    /// Default time for one whole request, connect to last byte.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default largest body accepted: 32 MiB (large CAs publish CRLs of
    /// several MiB; bundles of a trust community are a few hundred KiB).
    pub const DEFAULT_MAX_BYTES: u64 = 32 * 1024 * 1024;

    /// A fetcher that gives up after `timeout` and refuses bodies larger
    /// than `max_bytes`. Proxies come from the environment (`HTTP_PROXY`,
    /// `NO_PROXY`), as ureq reads them.
    pub fn new(timeout: Duration, max_bytes: u64) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(5)
            .http_status_as_error(true)
            .build();
        HttpFetcher {
            agent: config.into(),
            max_bytes,
        }
    }
}

impl Default for HttpFetcher {
    fn default() -> Self {
        HttpFetcher::new(Self::DEFAULT_TIMEOUT, Self::DEFAULT_MAX_BYTES)
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, TrustError> {
        if !is_fetchable(url) {
            return Err(TrustError::UnsupportedUrl(url.to_string()));
        }
        let failed = |cause: String| TrustError::Fetch {
            url: url.to_string(),
            cause,
        };
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| failed(e.to_string()))?;
        // Read one byte past the limit to tell "exactly the limit" from "more".
        let mut body = Vec::new();
        response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .reader()
            .take(self.max_bytes + 1)
            .read_to_end(&mut body)
            .map_err(|e| failed(e.to_string()))?;
        if body.len() as u64 > self.max_bytes {
            return Err(failed(format!(
                "the body is larger than {} bytes",
                self.max_bytes
            )));
        }
        tracing::debug!(url, bytes = body.len(), "fetched");
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_are_fetched() {
        assert!(is_fetchable("http://ca.example/x.crl"));
        assert!(is_fetchable("HTTPS://ca.example/x.crl"));
        assert!(!is_fetchable("ldap://ca.example/cn=x"));
        assert!(!is_fetchable("file:///etc/passwd"));
        assert!(!is_fetchable("http"));
    }

    #[test]
    fn ldap_url_is_refused_without_a_request() {
        let err = HttpFetcher::default()
            .fetch("ldap://ca.example/cn=x")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot fetch ldap://ca.example/cn=x: only http and https URLs are fetched"
        );
    }
}
