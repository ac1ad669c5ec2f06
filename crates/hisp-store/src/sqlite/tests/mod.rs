//! The SQLite store against a real file in a temporary directory: the
//! file and schema, domains and addresses, anchors and bundles, users, the
//! queue and tracking, mailboxes and quarantine.

mod audit_chain;
mod directory;
mod engine;
mod file;
mod filing;
mod mailbox;
mod mailbox_view;
mod migration;
mod once;
mod portal_notice;
mod portal_user;
mod queue;
mod tracking;
mod trust;
mod users;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

use super::*;

pub(super) fn ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| {
        CertificateAuthority::create("store test root", &CaOptions::default()).unwrap()
    })
}

pub(super) fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

pub(super) fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

/// An issued certificate with its key, as the store takes it.
pub(super) fn issued(binding: Binding, with_key: bool) -> NewCertificate {
    let issued = issue(ca(), &binding, &IssueOptions::default()).unwrap();
    let der = issued.cert.to_der().unwrap();
    let key = issued.key_pem().unwrap();
    NewCertificate::new(&der, with_key.then_some(key.as_slice())).unwrap()
}

/// A self-signed CA certificate with a chosen serial, for anchors.
pub(super) fn anchor_cert(cn: &str, serial: u32) -> NewAnchor {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    NewAnchor::from_der(&b.build().to_der().unwrap()).unwrap()
}

pub(super) fn ca_anchor() -> NewAnchor {
    NewAnchor::from_der(&ca().cert().to_der().unwrap()).unwrap()
}

pub(super) fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open_in(dir).unwrap()
}

pub(super) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
