//! Checks of the Direct certificate profile, read back both with the openssl
//! crate and with the `openssl` command (an independent parser).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509StoreContext, X509};
use time::{Duration, OffsetDateTime};

use crate::*;

fn ca() -> CertificateAuthority {
    CertificateAuthority::create("hisp test root", &CaOptions::default()).unwrap()
}

/// `openssl x509 -text -noout` of a PEM certificate.
fn openssl_text(cert: &X509) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pem");
    std::fs::write(&path, cert.to_pem().unwrap()).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-text", "-noout", "-in"])
        .arg(&path)
        .output()
        .expect("the openssl command is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The line after `heading` in openssl's text output, trimmed.
fn text_after<'a>(text: &'a str, heading: &str) -> &'a str {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.contains(heading))
        .unwrap_or_else(|| panic!("no {heading} in\n{text}"));
    lines.next().unwrap().trim()
}

fn verifies(ca: &X509, leaf: &X509) -> bool {
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca.clone()).unwrap();
    let store = store.build();
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, leaf, &Stack::new().unwrap(), |c| c.verify_cert())
        .unwrap()
}

fn serial_len(cert: &X509) -> usize {
    cert.serial_number().to_bn().unwrap().num_bytes() as usize
}

#[test]
fn root_ca_has_ca_extensions_and_key_ids() {
    let ca = ca();
    let cert = ca.cert();
    let ku = cert.key_usage().unwrap();
    assert_eq!(ku, X509KeyUsage::KEY_CERT_SIGN | X509KeyUsage::CRL_SIGN);
    assert!(cert.subject_key_id().is_some());
    assert_eq!(
        cert.authority_key_id().unwrap().as_slice(),
        cert.subject_key_id().unwrap().as_slice(),
        "a root's AKI is its own SKI"
    );
    assert_eq!(serial_len(cert), 16);
    assert!(cert.subject_alt_names().is_none());

    let text = openssl_text(cert);
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert_eq!(text_after(&text, "X509v3 Basic Constraints"), "CA:TRUE");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(
        text_after(&text, "X509v3 Key Usage"),
        "Certificate Sign, CRL Sign"
    );
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"));
    assert!(text.contains("Public-Key: (2048 bit)"));
    assert!(text.contains("Subject: CN = hisp test root"));
    assert!(text.contains("Issuer: CN = hisp test root"));
    assert!(text.contains("X509v3 Subject Key Identifier"));
    assert!(text.contains("X509v3 Authority Key Identifier"));
}

#[test]
fn address_bound_cert_has_one_rfc822_name_and_combined_usage() {
    let ca = ca();
    let issued = issue(
        &ca,
        &Binding::Address("alice@direct.Example.org".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let cert = &issued.cert;

    let sans = cert.subject_alt_names().unwrap();
    assert_eq!(sans.len(), 1, "exactly one subjectAltName");
    assert_eq!(
        sans.get(0).unwrap().email(),
        Some("alice@direct.example.org")
    );
    assert_eq!(
        cert.key_usage().unwrap(),
        X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::KEY_ENCIPHERMENT
    );
    assert!(cert
        .extended_key_usage()
        .unwrap()
        .contains(X509ExtendedKeyUsage::SMIME));
    assert_eq!(
        cert.authority_key_id().unwrap().as_slice(),
        ca.cert().subject_key_id().unwrap().as_slice()
    );
    assert!(cert.subject_key_id().is_some());
    assert_eq!(serial_len(cert), 16);
    assert!(verifies(&ca.cert().clone(), cert));

    let text = openssl_text(cert);
    assert_eq!(
        text_after(&text, "X509v3 Subject Alternative Name"),
        "email:alice@direct.example.org"
    );
    assert!(
        text.contains("Subject: CN = alice@direct.example.org"),
        "{text}"
    );
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(
        text_after(&text, "X509v3 Key Usage"),
        "Digital Signature, Key Encipherment"
    );
    assert_eq!(
        text_after(&text, "X509v3 Extended Key Usage"),
        "E-mail Protection"
    );
    assert!(text.contains("X509v3 Basic Constraints: critical"));
    assert_eq!(text_after(&text, "X509v3 Basic Constraints"), "CA:FALSE");
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"));
}

#[test]
fn domain_bound_cert_has_one_dns_name() {
    let ca = ca();
    let issued = issue(
        &ca,
        &Binding::Domain("direct.example.org".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let sans = issued.cert.subject_alt_names().unwrap();
    assert_eq!(sans.len(), 1);
    assert_eq!(sans.get(0).unwrap().dnsname(), Some("direct.example.org"));
    assert!(sans.get(0).unwrap().email().is_none());
    let text = openssl_text(&issued.cert);
    assert_eq!(
        text_after(&text, "X509v3 Subject Alternative Name"),
        "DNS:direct.example.org"
    );
}

#[test]
fn separate_signing_and_encryption_certs_have_one_key_usage_each() {
    let ca = ca();
    let binding = Binding::Address("bob@example.org".into());
    for (usage, bits, text_usage) in [
        (
            Usage::SigningOnly,
            X509KeyUsage::DIGITAL_SIGNATURE,
            "Digital Signature",
        ),
        (
            Usage::EncryptionOnly,
            X509KeyUsage::KEY_ENCIPHERMENT,
            "Key Encipherment",
        ),
    ] {
        let options = IssueOptions {
            usage,
            ..IssueOptions::default()
        };
        let cert = issue(&ca, &binding, &options).unwrap().cert;
        assert_eq!(cert.key_usage().unwrap(), bits);
        assert_eq!(
            text_after(&openssl_text(&cert), "X509v3 Key Usage"),
            text_usage
        );
    }
}

#[test]
fn expired_cert_can_be_made_and_fails_verification() {
    let ca = ca();
    let options = IssueOptions {
        validity: Validity::expired(30),
        ..IssueOptions::default()
    };
    let cert = issue(&ca, &Binding::Domain("example.org".into()), &options)
        .unwrap()
        .cert;
    let now = openssl::asn1::Asn1Time::days_from_now(0).unwrap();
    assert!(cert.not_after() < now);
    assert!(!verifies(&ca.cert().clone(), &cert));
}

#[test]
fn explicit_period_is_written_to_the_second() {
    let ca = ca();
    let not_before = OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap();
    let not_after = not_before + Duration::days(10);
    let options = IssueOptions {
        validity: Validity::Between {
            not_before,
            not_after,
        },
        ..IssueOptions::default()
    };
    let cert = issue(&ca, &Binding::Domain("example.org".into()), &options)
        .unwrap()
        .cert;
    let text = openssl_text(&cert);
    assert!(
        text.contains("Not Before: Sep 13 12:26:40 2020 GMT"),
        "{text}"
    );
    assert!(
        text.contains("Not After : Sep 23 12:26:40 2020 GMT"),
        "{text}"
    );
}

#[test]
fn serials_are_random() {
    let ca = ca();
    let b = Binding::Domain("example.org".into());
    let a = issue(&ca, &b, &IssueOptions::default()).unwrap().cert;
    let c = issue(&ca, &b, &IssueOptions::default()).unwrap().cert;
    assert_ne!(
        a.serial_number().to_bn().unwrap(),
        c.serial_number().to_bn().unwrap()
    );
}

#[test]
fn unsupported_key_size_is_refused() {
    let err = CertificateAuthority::create(
        "x",
        &CaOptions {
            bits: 1000,
            ..CaOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported RSA key size 1000: use 2048, 3072 or 4096"
    );
}

#[test]
fn weak_key_can_be_made_for_tests() {
    let ca = ca();
    let options = IssueOptions {
        bits: WEAK_KEY_SIZE,
        ..IssueOptions::default()
    };
    let cert = issue(&ca, &Binding::Domain("example.org".into()), &options)
        .unwrap()
        .cert;
    assert_eq!(cert.public_key().unwrap().bits(), 1024);
}

#[test]
fn intermediate_chains_to_root() {
    let root = ca();
    let mid = root
        .create_intermediate("hisp test intermediate", &CaOptions::default())
        .unwrap();
    assert_eq!(
        mid.cert().authority_key_id().unwrap().as_slice(),
        root.cert().subject_key_id().unwrap().as_slice()
    );
    let leaf = issue(
        &mid,
        &Binding::Address("a@example.org".into()),
        &IssueOptions::default(),
    )
    .unwrap()
    .cert;
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(root.cert().clone()).unwrap();
    let store = store.build();
    let mut chain = Stack::new().unwrap();
    chain.push(mid.cert().clone()).unwrap();
    let mut ctx = X509StoreContext::new().unwrap();
    assert!(ctx
        .init(&store, &leaf, &chain, |c| c.verify_cert())
        .unwrap());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn save_and_load_round_trip_with_private_key_0600() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let ca = ca();
    let written = ca.save(&ca_dir).unwrap();
    assert_eq!(written.len(), 3);
    assert_eq!(mode(&ca_dir.join(CA_KEY_PEM)), 0o600);
    let der = std::fs::read(ca_dir.join(CA_CERT_DER)).unwrap();
    assert_eq!(der, ca.cert().to_der().unwrap());

    let loaded = CertificateAuthority::load(&ca_dir).unwrap();
    assert_eq!(loaded.cert().to_der().unwrap(), ca.cert().to_der().unwrap());

    let out = dir.path().join("alice");
    let issued = issue(
        &loaded,
        &Binding::Address("alice@example.org".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    issued.save(&out).unwrap();
    assert_eq!(mode(&out.join(KEY_PEM)), 0o600);
    let status = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca_dir.join(CA_CERT_PEM))
        .arg(out.join(CERT_PEM))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}

#[test]
fn save_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    ca().save(dir.path()).unwrap();
    let err = ca().save(dir.path()).unwrap_err();
    assert!(matches!(err, CaError::AlreadyExists(_)), "{err}");
    assert!(err
        .to_string()
        .ends_with("ca.key already exists; refusing to overwrite it"));
}

#[test]
fn load_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = CertificateAuthority::load(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ca.pem") && text.contains("No such file"),
        "{text}"
    );
}

#[test]
fn load_refuses_a_key_of_another_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let a = ca();
    a.save(dir.path()).unwrap();
    let b = ca();
    let key = dir.path().join(CA_KEY_PEM);
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, b.key().private_key_to_pem_pkcs8().unwrap()).unwrap();
    let err = CertificateAuthority::load(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("the private key does not belong to the certificate"),
        "{err}"
    );
}

#[test]
fn leaf_cannot_act_as_ca() {
    let root = ca();
    let leaf = issue(
        &root,
        &Binding::Domain("example.org".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let err = CertificateAuthority::from_parts(leaf.cert, leaf.key).unwrap_err();
    assert!(err.to_string().contains("lacks keyCertSign"), "{err}");
}
