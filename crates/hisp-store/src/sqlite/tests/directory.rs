//! Domains, addresses and their certificates.

use super::*;
use crate::cert::CertUsage;
use crate::sqlite::*;

#[test]
fn domains_are_added_listed_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let names: Vec<String> = store
        .domains()
        .unwrap()
        .iter()
        .map(|d| d.domain.to_string())
        .collect();
    assert_eq!(names, ["a.example", "b.example"]);
    store.remove_domain(&domain("a.example")).unwrap();
    assert_eq!(store.domains().unwrap().len(), 1);
    let err = store.remove_domain(&domain("a.example")).unwrap_err();
    assert_eq!(err.to_string(), "domain a.example not found");
}

#[test]
fn a_domain_differing_only_in_case_is_a_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let err = store.add_domain(&domain("A.Example."), &[]).unwrap_err();
    assert_eq!(err.to_string(), "domain a.example already exists");
}

#[test]
fn an_address_differing_only_in_local_part_case_is_a_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_address(&addr("Alice@a.example"), &[]).unwrap();
    let err = store
        .add_address(&addr("ALICE@A.example"), &[])
        .unwrap_err();
    assert_eq!(err.to_string(), "address Alice@a.example already exists");
    let found = store.address(&addr("alice@a.example")).unwrap();
    assert_eq!(found.address.to_string(), "Alice@a.example");
}

#[test]
fn an_address_needs_a_local_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let err = store
        .add_address(&addr("alice@a.example"), &[])
        .unwrap_err();
    assert_eq!(err.to_string(), "domain a.example not found");
}

#[test]
fn a_domain_with_addresses_cannot_be_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_address(&addr("alice@a.example"), &[]).unwrap();
    let err = store.remove_domain(&domain("a.example")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain a.example is still in use: it has 1 address; remove it first"
    );
    store.remove_address(&addr("ALICE@a.example")).unwrap();
    store.remove_domain(&domain("a.example")).unwrap();
}

#[test]
fn removing_a_domain_removes_its_anchors_bundles_and_domain_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let d = domain("a.example");
    let cert = issued(Binding::Domain("a.example".into()), true);
    store.add_domain(&d, &[cert]).unwrap();
    store
        .add_anchors(&d, Direction::Both, &[ca_anchor()])
        .unwrap();
    store
        .add_bundle(&NewBundle {
            domain: d.clone(),
            source: BundleSource::parse("https://bundles.example/a.p7b").unwrap(),
            direction: Direction::Both,
            refresh_secs: 3600,
        })
        .unwrap();
    store.remove_domain(&d).unwrap();
    assert!(store.anchors(None).unwrap().is_empty());
    assert!(store.bundles(None).unwrap().is_empty());
    assert!(store.certificates(None).unwrap().is_empty());
}

#[test]
fn address_certificates_keep_their_key_and_are_removed_with_the_address() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let a = addr("alice@a.example");
    let cert = issued(Binding::Address("alice@a.example".into()), true);
    let fingerprint = cert.info().fingerprint;
    store.add_address(&a, &[cert]).unwrap();
    let certs = store
        .certificates(Some(&Owner::Address(a.clone())))
        .unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].info.fingerprint, fingerprint);
    assert_eq!(certs[0].usage, CertUsage::Both);
    assert_eq!(certs[0].owner, Owner::Address(a.clone()));
    let key = certs[0].private_key.as_ref().expect("key kept");
    assert!(key.as_bytes().starts_with(b"-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{:?}", certs[0]).contains("BEGIN PRIVATE KEY"));
    store.remove_address(&a).unwrap();
    assert!(store.certificates(None).unwrap().is_empty());
}

#[test]
fn a_certificate_bound_to_another_address_is_refused_applicability_statement_4_1() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let cert = issued(Binding::Address("bob@a.example".into()), false);
    let err = store
        .add_address(&addr("alice@a.example"), &[cert])
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "it is not bound to the address alice@a.example: its subjectAltName rfc822Name entries are bob@a.example"
        ),
        "{err}"
    );
    // All or nothing: the address was not added either.
    assert!(store
        .address(&addr("alice@a.example"))
        .unwrap_err()
        .is_not_found());
}

#[test]
fn the_binding_compares_the_local_part_without_case() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let cert = issued(Binding::Address("Alice@a.example".into()), false);
    store
        .add_address(&addr("alice@A.example"), &[cert])
        .unwrap();
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let one = issue(
        ca(),
        &Binding::Domain("a.example".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let other = issue(
        ca(),
        &Binding::Domain("a.example".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let err = NewCertificate::new(&one.cert.to_der().unwrap(), Some(&other.key_pem().unwrap()))
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("': the private key does not belong to it"),
        "{err}"
    );
}

#[test]
fn a_failed_certificate_leaves_no_address_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let cert = issued(Binding::Address("alice@a.example".into()), false);
    let err = store
        .add_address(&addr("alice@a.example"), &[cert.clone(), cert])
        .unwrap_err();
    assert!(err.is_duplicate(), "{err}");
    assert!(store.addresses(None).unwrap().is_empty());
}
