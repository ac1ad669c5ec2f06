//! Trust bundles kept current: each bundle of the store is fetched again
//! when its refresh interval has passed (or on demand), parsed, and the
//! outcome recorded. A failed fetch keeps the last good copy in force and
//! is logged; the next read of the anchors sees a new copy at once.

use hisp_store::{BundleFetch, Domain, Store, StoreError};
use hisp_trust::{parse_bundle, BundleSource, Fetcher};
use time::OffsetDateTime;

/// What one refresh of one bundle came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOutcome {
    /// The local domain it belongs to.
    pub domain: String,
    /// Where it is read from.
    pub source: String,
    /// The number of certificates, or why it failed.
    pub result: Result<usize, String>,
    /// Whether a good copy was in force before (and still is, on failure).
    pub had_good_copy: bool,
}

/// Refreshes the bundles of `domain` (all when `None`): every one when
/// `only_due` is false, else those whose interval has passed since the last
/// attempt (or never fetched).
pub fn refresh_bundles(
    store: &dyn Store,
    fetcher: &dyn Fetcher,
    domain: Option<&Domain>,
    now: OffsetDateTime,
    only_due: bool,
) -> Result<Vec<BundleOutcome>, StoreError> {
    let mut outcomes = Vec::new();
    for bundle in store.bundles(domain)? {
        let due = match bundle.last_fetched_at {
            None => true,
            Some(last) => (now - last).whole_seconds() >= i64::from(bundle.refresh_secs),
        };
        if only_due && !due {
            continue;
        }
        let name = bundle.source.to_string();
        let result = BundleSource::parse(&name)
            .read(fetcher)
            .and_then(|bytes| parse_bundle(&bytes, &name).map(|certs| (bytes, certs.len())));
        let outcome = match result {
            Ok((bytes, count)) => {
                store.record_bundle_fetch(bundle.id, &BundleFetch::Good { bytes, at: now })?;
                tracing::info!(domain = %bundle.domain, source = %name, certs = count, "bundle refreshed");
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(domain = %bundle.domain, source = %name, error = %e, "bundle refresh failed; the last good copy stays in force");
                store.record_bundle_fetch(
                    bundle.id,
                    &BundleFetch::Failed {
                        error: e.to_string(),
                        at: now,
                    },
                )?;
                Err(e.to_string())
            }
        };
        outcomes.push(BundleOutcome {
            domain: bundle.domain.to_string(),
            source: name,
            result: outcome,
            had_good_copy: bundle.last_good.is_some(),
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hisp_ca::{CaOptions, CertificateAuthority};
    use hisp_store::{BundleSource as StoredSource, Direction, NewBundle, SqliteStore};

    struct FileFetcher;

    impl Fetcher for FileFetcher {
        fn fetch(&self, url: &str) -> Result<Vec<u8>, hisp_trust::TrustError> {
            Err(hisp_trust::TrustError::UnsupportedUrl(url.to_string()))
        }
    }

    #[test]
    fn due_bundles_are_fetched_and_a_failure_keeps_the_last_good_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        let domain = Domain::parse("a.example").unwrap();
        store.add_domain(&domain, &[]).unwrap();
        let ca = CertificateAuthority::create("Bundle CA", &CaOptions::default()).unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.cert().to_pem().unwrap()).unwrap();
        let path = dir.path().join("b.p7b");
        // The bundle is made by the openssl command line, as an operator would.
        let made = std::process::Command::new("openssl")
            .args(["crl2pkcs7", "-nocrl", "-outform", "DER", "-certfile"])
            .arg(&pem)
            .arg("-out")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        store
            .add_bundle(&NewBundle {
                domain: domain.clone(),
                source: StoredSource::parse(path.to_str().unwrap()).unwrap(),
                direction: Direction::Both,
                refresh_secs: 3600,
            })
            .unwrap();
        let t0 = OffsetDateTime::now_utc();
        let first = refresh_bundles(&store, &FileFetcher, None, t0, true).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].result, Ok(1));
        // Not due again within the interval.
        let later = t0 + time::Duration::seconds(60);
        assert!(refresh_bundles(&store, &FileFetcher, None, later, true)
            .unwrap()
            .is_empty());
        // Past it, a broken file is refused and the good copy stays.
        std::fs::write(&path, b"broken").unwrap();
        let past = t0 + time::Duration::seconds(3601);
        let second = refresh_bundles(&store, &FileFetcher, None, past, true).unwrap();
        assert!(second[0].result.is_err());
        assert!(second[0].had_good_copy);
        let stored = store.bundles(None).unwrap();
        assert!(stored[0].last_good.is_some());
        assert!(stored[0].last_error.is_some());
    }
}
