//! `hisp cert ca` and `hisp cert issue`, checked with the `openssl` command.

mod common;

use common::*;

fn verify(pki: &Pki, cert: &std::path::Path) -> Run {
    openssl(
        [
            "verify".to_string(),
            "-CAfile".into(),
            s(&pki.ca_pem()),
            s(cert),
        ],
        b"",
    )
}

#[test]
fn ca_writes_pem_der_and_a_0600_key() {
    let pki = Pki::new();
    let ca = pki.ca_dir();
    assert_eq!(mode(&ca.join("ca.key")), 0o600);
    assert_eq!(mode(&ca.join("ca.pem")), 0o644);
    let der = openssl(
        [
            "x509".to_string(),
            "-inform".into(),
            "DER".into(),
            "-in".into(),
            s(&ca.join("ca.der")),
            "-noout".into(),
            "-subject".into(),
        ],
        b"",
    )
    .ok();
    assert_eq!(der.stdout_text().trim(), "subject=CN = hisp test root");

    let text = x509_text(&pki.ca_pem());
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert_eq!(text_section(&text, "X509v3 Basic Constraints"), ["CA:TRUE"]);
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(
        text_section(&text, "X509v3 Key Usage"),
        ["Certificate Sign", "CRL Sign"]
    );
    assert!(text.contains("X509v3 Subject Key Identifier"));
    assert!(text.contains("X509v3 Authority Key Identifier"));
    assert!(text.contains("sha256WithRSAEncryption"));
    assert!(text.contains("Public-Key: (2048 bit)"));
}

#[test]
fn ca_prints_the_paths_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca");
    let run = hisp(
        [
            "cert",
            "ca",
            "--cn",
            "Root",
            "--out",
            &s(&out),
            "--days",
            "30",
        ],
        b"",
    )
    .ok();
    let expected: Vec<String> = ["ca.key", "ca.pem", "ca.der"]
        .iter()
        .map(|f| s(&out.join(f)))
        .collect();
    assert_eq!(run.stdout_text().lines().collect::<Vec<_>>(), expected);
}

#[test]
fn address_bound_cert_has_exactly_one_rfc822_name() {
    let pki = Pki::new();
    let out = pki.issue("alice", &["--address", "alice@direct.example.org"]);
    let cert = out.join("cert.pem");
    let text = x509_text(&cert);
    assert_eq!(
        text_section(&text, "X509v3 Subject Alternative Name"),
        ["email:alice@direct.example.org"]
    );
    assert!(
        text.contains("Subject: CN = alice@direct.example.org"),
        "{text}"
    );
    assert!(text.contains("Issuer: CN = hisp test root"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(
        text_section(&text, "X509v3 Key Usage"),
        ["Digital Signature", "Key Encipherment"]
    );
    assert_eq!(
        text_section(&text, "X509v3 Extended Key Usage"),
        ["E-mail Protection"]
    );
    assert_eq!(
        text_section(&text, "X509v3 Basic Constraints"),
        ["CA:FALSE"]
    );
    assert!(text.contains("X509v3 Authority Key Identifier"));
    assert_eq!(mode(&out.join("key.pem")), 0o600);
    let v = verify(&pki, &cert).ok();
    assert_eq!(v.stdout_text().trim(), format!("{}: OK", s(&cert)));
}

#[test]
fn domain_bound_cert_has_exactly_one_dns_name() {
    let pki = Pki::new();
    let out = pki.issue("domain", &["--domain", "Direct.Example.org"]);
    let text = x509_text(&out.join("cert.pem"));
    assert_eq!(
        text_section(&text, "X509v3 Subject Alternative Name"),
        ["DNS:direct.example.org"]
    );
    assert!(text.contains("Subject: CN = direct.example.org"));
    assert_eq!(mode(&out.join("key.pem")), 0o600);
    verify(&pki, &out.join("cert.pem")).ok();
}

#[test]
fn separate_signing_and_encryption_certificates() {
    let pki = Pki::new();
    let sign = pki.issue(
        "sign",
        &["--address", "a@example.org", "--usage", "signing"],
    );
    let enc = pki.issue(
        "enc",
        &["--address", "a@example.org", "--usage", "encryption"],
    );
    assert_eq!(
        text_section(&x509_text(&sign.join("cert.pem")), "X509v3 Key Usage"),
        ["Digital Signature"]
    );
    assert_eq!(
        text_section(&x509_text(&enc.join("cert.pem")), "X509v3 Key Usage"),
        ["Key Encipherment"]
    );
}

#[test]
fn key_size_option_is_honoured() {
    let pki = Pki::new();
    let out = pki.issue("big", &["--domain", "example.org", "--bits", "3072"]);
    assert!(x509_text(&out.join("cert.pem")).contains("Public-Key: (3072 bit)"));
}

#[test]
fn expired_cert_fails_openssl_verify() {
    let pki = Pki::new();
    let out = pki.issue("old", &["--address", "old@example.org", "--expired"]);
    let v = verify(&pki, &out.join("cert.pem"));
    assert_ne!(v.code, 0);
    assert!(
        (v.stdout_text() + &v.stderr).contains("certificate has expired"),
        "{}",
        v.stderr
    );
}

#[test]
fn explicit_validity_is_written() {
    let pki = Pki::new();
    let out = pki.issue(
        "dated",
        &[
            "--domain",
            "example.org",
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2020-12-31T23:59:59Z",
        ],
    );
    let text = x509_text(&out.join("cert.pem"));
    assert!(
        text.contains("Not Before: Jan  1 00:00:00 2020 GMT"),
        "{text}"
    );
    assert!(
        text.contains("Not After : Dec 31 23:59:59 2020 GMT"),
        "{text}"
    );
}

#[test]
fn not_after_in_the_past_alone_makes_an_expired_cert() {
    let pki = Pki::new();
    let out = pki.issue(
        "past",
        &[
            "--domain",
            "example.org",
            "--not-after",
            "2021-06-01T00:00:00Z",
            "--days",
            "10",
        ],
    );
    let text = x509_text(&out.join("cert.pem"));
    assert!(
        text.contains("Not Before: May 22 00:00:00 2021 GMT"),
        "{text}"
    );
}

#[test]
fn missing_ca_directory_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("nope");
    let run = hisp(
        [
            "cert",
            "issue",
            "--ca",
            &s(&ca),
            "--domain",
            "example.org",
            "--out",
            &s(&dir.path().join("o")),
        ],
        b"",
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "hisp: cannot load the CA: {}: No such file or directory (os error 2)",
            s(&ca.join("ca.pem"))
        )
    );
}

#[test]
fn bad_address_is_refused_with_the_reason() {
    let pki = Pki::new();
    let run = hisp(
        [
            "cert",
            "issue",
            "--ca",
            &s(&pki.ca_dir()),
            "--address",
            "no-at-sign",
            "--out",
            &s(&pki.path("x")),
        ],
        b"",
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        "hisp: invalid Direct address 'no-at-sign': it has no '@'"
    );
    assert!(!pki.path("x").exists(), "nothing is written");
}

#[test]
fn existing_files_are_never_overwritten() {
    let pki = Pki::new();
    let run = hisp(
        ["cert", "ca", "--cn", "again", "--out", &s(&pki.ca_dir())],
        b"",
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "hisp: cannot save the CA in {}: {} already exists; refusing to overwrite it",
            s(&pki.ca_dir()),
            s(&pki.ca_dir().join("ca.key"))
        )
    );
}

#[test]
fn reversed_validity_is_refused() {
    let pki = Pki::new();
    let run = hisp(
        [
            "cert",
            "issue",
            "--ca",
            &s(&pki.ca_dir()),
            "--domain",
            "example.org",
            "--out",
            &s(&pki.path("x")),
            "--not-before",
            "2024-02-01T00:00:00Z",
            "--not-after",
            "2024-01-01T00:00:00Z",
        ],
        b"",
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("invalid validity: not-after 2024-01-01 0:00:00.0 +00:00:00 is not later than not-before 2024-02-01 0:00:00.0 +00:00:00"),
        "{}",
        run.stderr
    );
}

#[test]
fn days_with_both_ends_is_refused() {
    let pki = Pki::new();
    let run = hisp(
        [
            "cert",
            "issue",
            "--ca",
            &s(&pki.ca_dir()),
            "--domain",
            "example.org",
            "--out",
            &s(&pki.path("x")),
            "--days",
            "3",
            "--not-before",
            "2024-01-01T00:00:00Z",
            "--not-after",
            "2024-02-01T00:00:00Z",
        ],
        b"",
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        "hisp: --days cannot be combined with both --not-before and --not-after"
    );
}

#[test]
fn usage_errors_exit_2_with_clap_message() {
    for (args, expected) in [
        (
            vec![
                "cert", "ca", "--cn", "x", "--out", "/tmp/x", "--bits", "1024",
            ],
            "invalid value '1024' for '--bits <BITS>': use 2048, 3072 or 4096",
        ),
        (
            vec![
                "cert",
                "issue",
                "--ca",
                "c",
                "--out",
                "o",
                "--address",
                "a@b",
                "--domain",
                "b",
            ],
            "the argument '--address <USER@DOMAIN>' cannot be used with '--domain <DOMAIN>'",
        ),
        (
            vec!["cert", "issue", "--ca", "c", "--out", "o"],
            "the following required arguments were not provided:\n  --address <USER@DOMAIN>",
        ),
        (
            vec![
                "cert",
                "issue",
                "--ca",
                "c",
                "--out",
                "o",
                "--domain",
                "b",
                "--not-before",
                "yesterday",
            ],
            "invalid value 'yesterday' for '--not-before <RFC3339>': not an RFC 3339 time",
        ),
        (
            vec![
                "cert",
                "issue",
                "--ca",
                "c",
                "--out",
                "o",
                "--domain",
                "b",
                "--expired",
                "--not-after",
                "2020-01-01T00:00:00Z",
            ],
            "the argument '--expired' cannot be used with '--not-after <RFC3339>'",
        ),
    ] {
        let run = hisp(&args, b"");
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn out_is_required_without_a_data_dir() {
    let run = hisp(["cert", "ca", "--cn", "x"], b"");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim(),
        "hisp: --out DIR is required (or set data_dir in the config file to use <data_dir>/ca)"
    );
}

#[test]
fn data_dir_holds_the_ca_when_no_directory_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hisp.toml");
    // A relative data_dir is taken relative to the config file.
    std::fs::write(&config, "data_dir = \"state\"\n").unwrap();
    hisp(["--config", &s(&config), "cert", "ca", "--cn", "Root"], b"").ok();
    let ca = dir.path().join("state/ca/ca.pem");
    assert!(ca.exists());
    let out = dir.path().join("bob");
    hisp(
        [
            "--config",
            &s(&config),
            "cert",
            "issue",
            "--domain",
            "example.org",
            "--out",
            &s(&out),
        ],
        b"",
    )
    .ok();
    let v = openssl(
        [
            "verify".to_string(),
            "-CAfile".into(),
            s(&ca),
            s(&out.join("cert.pem")),
        ],
        b"",
    );
    v.ok();
}
