//! Trust bundles: PKCS#7 certs-only (.p7b) in DER and PEM, from a file or
//! over http, refreshed with the last good bundle kept on failure.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::http::Server;
use common::pki::{p7b, root};
use common::{now, DAY};
use hisp_trust::{
    judge, parse_bundle, Anchors, BundleSource, BundleState, Fetcher, HttpFetcher, Intermediates,
    Purpose, Question, Remote, RevocationMode, TrustError,
};

#[test]
fn der_bundle_yields_its_certificates() {
    let (a, b) = (root("Community A"), root("Community B"));
    let certs = parse_bundle(&p7b(&[a.cert(), b.cert()], true), "test.p7b").unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(&certs[0], a.cert());
    assert_eq!(&certs[1], b.cert());
}

#[test]
fn pem_bundle_yields_its_certificates() {
    let a = root("Community A");
    let bytes = p7b(&[a.cert()], false);
    assert!(bytes.starts_with(b"-----BEGIN PKCS7-----"));
    let certs = parse_bundle(&bytes, "test.p7b").unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(&certs[0], a.cert());
}

#[test]
fn bytes_that_are_not_pkcs7_are_refused_with_the_source() {
    let err = parse_bundle(b"not a bundle", "https://bundles.example/x.p7b").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("trust bundle from https://bundles.example/x.p7b is unusable: not a PKCS#7 structure (DER)"),
        "{err}"
    );
    let a = root("Community A");
    let err = parse_bundle(&a.cert().to_pem().unwrap(), "x.pem").unwrap_err();
    assert!(
        err.to_string().contains("not a PKCS#7 structure (PEM)"),
        "{err}"
    );
}

#[test]
fn bundle_is_read_from_a_file() {
    let a = root("Community A");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.p7b");
    std::fs::write(&path, p7b(&[a.cert()], true)).unwrap();
    let mut state = BundleState::new(BundleSource::parse(path.to_str().unwrap()), 3600);
    let bundle = state.refresh(&HttpFetcher::default(), now()).unwrap();
    assert_eq!(bundle.certs.len(), 1);
    assert_eq!(state.certs()[0], *a.cert());
}

#[test]
fn bundle_is_fetched_over_http() {
    let server = Server::start();
    let a = root("Community A");
    server.put("/bundle.p7b", p7b(&[a.cert()], true));
    let source = BundleSource::parse(&server.url("/bundle.p7b"));
    assert_eq!(source, BundleSource::Url(server.url("/bundle.p7b")));
    let mut state = BundleState::new(source, 3600);
    state.refresh(&HttpFetcher::default(), now()).unwrap();
    assert_eq!(state.certs().len(), 1);
    assert_eq!(server.hits("/bundle.p7b"), 1);
}

#[test]
fn failed_refresh_keeps_the_last_good_bundle() {
    let server = Server::start();
    let (a, b) = (root("Community A"), root("Community B"));
    server.put("/bundle.p7b", p7b(&[a.cert(), b.cert()], false));
    let mut state = BundleState::new(BundleSource::Url(server.url("/bundle.p7b")), 3600);
    let fetcher = HttpFetcher::default();
    state.refresh(&fetcher, now()).unwrap();

    // The server loses the file: the refresh fails and says why...
    server.remove("/bundle.p7b");
    let err = state.refresh(&fetcher, now() + 3600).unwrap_err();
    assert!(matches!(err, TrustError::Fetch { .. }), "{err}");
    assert!(
        err.to_string().contains(&server.url("/bundle.p7b")),
        "{err}"
    );
    assert!(err.to_string().contains("404"), "{err}");
    // ...and the two anchors are still in force.
    assert_eq!(state.certs().len(), 2);
    assert_eq!(state.last_error(), Some(err.to_string().as_str()));

    // Garbage is a failure too, not an empty bundle.
    server.put("/bundle.p7b", b"<html>maintenance</html>".to_vec());
    assert!(state.refresh(&fetcher, now() + 7200).is_err());
    assert_eq!(state.certs().len(), 2);

    // Back to normal: the new bundle replaces the old one.
    server.put("/bundle.p7b", p7b(&[a.cert()], true));
    state.refresh(&fetcher, now() + 10800).unwrap();
    assert_eq!(state.certs().len(), 1);
    assert_eq!(state.last_error(), None);
}

/// Counts the fetches it passes on.
struct Counting {
    inner: HttpFetcher,
    calls: AtomicUsize,
}

impl Fetcher for Counting {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, TrustError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch(url)
    }
}

#[test]
fn bundle_refreshes_on_its_interval() {
    let server = Server::start();
    let a = root("Community A");
    server.put("/bundle.p7b", p7b(&[a.cert()], true));
    let fetcher = Counting {
        inner: HttpFetcher::default(),
        calls: AtomicUsize::new(0),
    };
    let t0 = now();
    let mut state = BundleState::new(BundleSource::Url(server.url("/bundle.p7b")), DAY);
    assert!(state.is_due(t0));
    assert!(state.refresh_if_due(&fetcher, t0).unwrap().is_ok());
    assert!(state.refresh_if_due(&fetcher, t0 + DAY - 1).is_none());
    assert!(state.refresh_if_due(&fetcher, t0 + DAY).unwrap().is_ok());
    assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
    assert_eq!(state.last_good().unwrap().fetched_at, t0 + DAY);
}

#[test]
fn bundle_certificates_serve_as_anchors() {
    let server = Server::start();
    let community = root("Community Root");
    let leaf = hisp_ca::issue(
        &community,
        &hisp_ca::Binding::Address("alice@partner.example".into()),
        &hisp_ca::IssueOptions::default(),
    )
    .unwrap()
    .cert;
    server.put("/bundle.p7b", p7b(&[community.cert()], true));
    let mut state = BundleState::new(BundleSource::Url(server.url("/bundle.p7b")), DAY);
    state.refresh(&HttpFetcher::default(), now()).unwrap();
    let v = judge(
        &Question {
            cert: &leaf,
            purpose: Purpose::Sign,
            expected: "alice@partner.example",
            anchors: &Anchors::new(state.certs().to_vec()).unwrap(),
            intermediates: Intermediates::default(),
            at: now(),
            revocation: RevocationMode::HardFail,
        },
        &Remote::http(),
    );
    assert!(v.usable, "{}", v.reason);
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn failed_refresh_is_logged_as_a_warning_with_the_url_and_cause() {
    let server = Server::start();
    let url = server.url("/missing.p7b");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut state = BundleState::new(BundleSource::Url(url.clone()), DAY);
        assert!(state.refresh(&HttpFetcher::default(), now()).is_err());
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains(&format!("source={url}")), "{log}");
    assert!(log.contains("404"), "{log}");
    assert!(log.contains("no earlier bundle to keep"), "{log}");
}
