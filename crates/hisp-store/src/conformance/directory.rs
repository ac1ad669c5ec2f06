//! Domains, addresses and their certificates.

use hisp_ca::Binding;

use super::{addr, ca_anchor, domain, issued, Backend};
use crate::cert::CertUsage;
use crate::{BundleSource, Direction, NewBundle, Owner, Store};

pub(crate) fn domains_are_added_listed_and_removed<B: Backend>(db: &B) {
    let store = db.open();
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

pub(crate) fn a_domain_differing_only_in_case_is_a_duplicate<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let err = store.add_domain(&domain("A.Example."), &[]).unwrap_err();
    assert_eq!(err.to_string(), "domain a.example already exists");
}

pub(crate) fn an_address_differing_only_in_local_part_case_is_a_duplicate<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_address(&addr("Alice@a.example"), &[]).unwrap();
    let err = store
        .add_address(&addr("ALICE@A.example"), &[])
        .unwrap_err();
    assert_eq!(err.to_string(), "address Alice@a.example already exists");
    let found = store.address(&addr("alice@a.example")).unwrap();
    assert_eq!(found.address.to_string(), "Alice@a.example");
}

pub(crate) fn an_address_needs_a_local_domain<B: Backend>(db: &B) {
    let store = db.open();
    let err = store
        .add_address(&addr("alice@a.example"), &[])
        .unwrap_err();
    assert_eq!(err.to_string(), "domain a.example not found");
}

pub(crate) fn a_domain_with_addresses_cannot_be_removed<B: Backend>(db: &B) {
    let store = db.open();
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

pub(crate) fn removing_a_domain_removes_its_anchors_bundles_and_domain_certificates<B: Backend>(
    db: &B,
) {
    let store = db.open();
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

pub(crate) fn address_certificates_keep_their_key_and_are_removed_with_the_address<B: Backend>(
    db: &B,
) {
    let store = db.open();
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

pub(crate) fn a_certificate_bound_to_another_address_is_refused_applicability_statement_4_1<
    B: Backend,
>(
    db: &B,
) {
    let store = db.open();
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

pub(crate) fn the_binding_compares_the_local_part_without_case<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let cert = issued(Binding::Address("Alice@a.example".into()), false);
    store
        .add_address(&addr("alice@A.example"), &[cert])
        .unwrap();
}

pub(crate) fn a_failed_certificate_leaves_no_address_behind<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    let cert = issued(Binding::Address("alice@a.example".into()), false);
    let err = store
        .add_address(&addr("alice@a.example"), &[cert.clone(), cert])
        .unwrap_err();
    assert!(err.is_duplicate(), "{err}");
    assert!(store.addresses(None).unwrap().is_empty());
}
