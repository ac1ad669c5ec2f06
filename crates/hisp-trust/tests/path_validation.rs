//! RFC 5280 §6 path validation as `judge` applies it: validity at the
//! validation time, anchors, intermediates from the message, local storage
//! and AIA caIssuers, basic constraints and key usage by purpose.

mod common;

use common::http::{dead_url, Server};
use common::pki::{build, build_ca, p7b, plain_intermediate, root, Ku, Spec};
use common::{now, DAY};
use hisp_ca::{issue, Binding as CaBinding, IssueOptions, Usage, Validity};
use hisp_trust::{
    judge, Anchors, Binding, Intermediates, Purpose, Question, Remote, RevocationMode,
    TrustFailure, Verdict,
};
use openssl::x509::X509;
use time::{Duration, OffsetDateTime};

const ADDRESS: &str = "alice@direct.example.org";

fn ask(
    remote: &Remote,
    cert: &X509,
    purpose: Purpose,
    anchors: &[X509],
    message: &[X509],
    local: &[X509],
    at: i64,
) -> Verdict {
    judge(
        &Question {
            cert,
            purpose,
            expected: ADDRESS,
            anchors: &Anchors::new(anchors.to_vec()).unwrap(),
            intermediates: Intermediates { message, local },
            at,
            revocation: RevocationMode::HardFail,
        },
        remote,
    )
}

fn leaf(ca: &hisp_ca::CertificateAuthority, validity: Validity, usage: Usage) -> X509 {
    issue(
        ca,
        &CaBinding::Address(ADDRESS.into()),
        &IssueOptions {
            bits: 2048,
            validity,
            usage,
        },
    )
    .unwrap()
    .cert
}

#[test]
fn path_through_intermediate_from_message_is_usable_rfc5280_6_1() {
    let root = root("Test Root");
    let int = plain_intermediate(&root, "Test Intermediate");
    let cert = leaf(&int, Validity::Days(365), Usage::Combined);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[int.cert().clone()],
        &[],
        now(),
    );
    assert!(v.usable, "{}", v.reason);
    assert!(!v.temporary);
    assert!(v.failures.is_empty(), "{v:?}");
    assert_eq!(v.binding, Binding::Address);
    assert!(v.reason.contains("is usable for signing"), "{}", v.reason);
    assert!(v.reason.contains("anchor 'CN=Test Root'"), "{}", v.reason);
    assert!(
        v.reason.contains("'CN=Test Intermediate' ->"),
        "{}",
        v.reason
    );
}

#[test]
fn intermediate_from_local_storage_completes_the_path_rfc5280_6_1() {
    let root = root("Test Root");
    let int = plain_intermediate(&root, "Test Intermediate");
    let cert = leaf(&int, Validity::Days(365), Usage::Combined);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Encrypt,
        &[root.cert().clone()],
        &[],
        &[int.cert().clone()],
        now(),
    );
    assert!(v.usable, "{}", v.reason);
}

#[test]
fn missing_intermediate_without_aia_is_no_path_rfc5280_6_1() {
    let root = root("Test Root");
    let int = plain_intermediate(&root, "Test Intermediate");
    let cert = leaf(&int, Validity::Days(365), Usage::Combined);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::NoPath]);
    assert!(
        v.reason.starts_with("'CN="),
        "the refusal names the certificate: {}",
        v.reason
    );
    assert!(
        v.reason
            .contains(": no path to anchors ['CN=Test Root' (serial "),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains(
            "the issuer 'CN=Test Intermediate' of 'CN=alice@direct.example.org' (serial "
        ),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("it has no http caIssuers URL"),
        "{}",
        v.reason
    );
}

#[test]
fn leaf_under_another_root_is_untrusted_rfc5280_6_1() {
    let trusted = root("Trusted Root");
    let other = root("Other Root");
    let cert = leaf(&other, Validity::Days(365), Usage::Combined);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[trusted.cert().clone()],
        &[other.cert().clone()],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert!(
        v.reason.contains("no path to anchors ['CN=Trusted Root'"),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("the self-signed 'CN=Other Root'"),
        "{}",
        v.reason
    );
}

#[test]
fn no_anchor_configured_is_refused() {
    let root = root("Test Root");
    let cert = leaf(&root, Validity::Days(365), Usage::Combined);
    let v = ask(&Remote::http(), &cert, Purpose::Sign, &[], &[], &[], now());
    assert!(!v.usable && !v.temporary);
    assert_eq!(v.failures, [TrustFailure::NoAnchors]);
    assert!(
        v.reason.contains("no trust anchor is configured"),
        "{}",
        v.reason
    );
}

#[test]
fn expired_leaf_is_refused_rfc5280_6_1_3_a2() {
    let root = root("Test Root");
    let cert = leaf(&root, Validity::expired(30), Usage::Combined);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::Expired]);
    let serial = hisp_trust::serial_hex(&cert);
    assert!(
        v.reason.contains(&format!(
            "'CN=alice@direct.example.org' (serial {serial}) expired at "
        )),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("(validated at "), "{}", v.reason);
}

#[test]
fn validation_time_is_injected_not_read_from_the_clock_rfc5280_6_1_1_b() {
    let root = root("Test Root");
    let cert = leaf(&root, Validity::Days(30), Usage::Combined);
    let anchors = [root.cert().clone()];
    let remote = Remote::http();
    let later = now() + 60 * DAY;
    let v = ask(&remote, &cert, Purpose::Sign, &anchors, &[], &[], later);
    assert!(!v.usable, "{v:?}");
    assert!(v.reason.contains("expired at"), "{}", v.reason);
    assert!(
        v.reason.contains(&hisp_trust::rfc3339(later)),
        "{}",
        v.reason
    );
    let v = ask(&remote, &cert, Purpose::Sign, &anchors, &[], &[], now());
    assert!(v.usable, "{}", v.reason);
}

#[test]
fn not_yet_valid_leaf_is_refused_rfc5280_6_1_3_a2() {
    let root = root("Test Root");
    let start = OffsetDateTime::now_utc() + Duration::days(10);
    let cert = leaf(
        &root,
        Validity::Between {
            not_before: start,
            not_after: start + Duration::days(365),
        },
        Usage::Combined,
    );
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert_eq!(v.failures, [TrustFailure::NotYetValid]);
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert!(v.reason.contains("is not valid before"), "{}", v.reason);
}

#[test]
fn intermediate_anchor_ends_the_path_partial_chain() {
    let root = root("Test Root");
    let int = plain_intermediate(&root, "Community CA");
    let cert = leaf(&int, Validity::Days(365), Usage::Combined);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[int.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(v.usable, "{}", v.reason);
    assert!(
        v.reason.contains("anchor 'CN=Community CA'"),
        "{}",
        v.reason
    );
}

#[test]
fn issuer_that_is_not_a_ca_is_refused_basic_constraints_rfc5280_6_1_4_k() {
    let root = root("Test Root");
    // An end-entity certificate (CA:FALSE, no keyUsage) used as an issuer.
    let fake = build_ca(
        &root,
        &Spec::address("bob@direct.example.org").ku(Ku::Absent),
    );
    let (cert, _) = build(&fake, &Spec::address(ADDRESS));
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[fake.cert().clone()],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::InvalidPath]);
    assert!(
        v.reason.contains("'CN=bob@direct.example.org' (serial "),
        "{}",
        v.reason
    );
    assert!(
        v.reason
            .contains("at depth 1 fails RFC 5280 path validation: invalid CA certificate"),
        "{}",
        v.reason
    );
}

#[test]
fn signing_only_cert_is_refused_for_encryption_key_usage_rfc5280_4_2_1_3() {
    let root = root("Test Root");
    let cert = leaf(&root, Validity::Days(365), Usage::SigningOnly);
    let anchors = [root.cert().clone()];
    let remote = Remote::http();
    let v = ask(&remote, &cert, Purpose::Encrypt, &anchors, &[], &[], now());
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::KeyUsage]);
    assert!(
        v.reason
            .ends_with("key usage lacks keyEncipherment, needed for encryption"),
        "{}",
        v.reason
    );
    let v = ask(&remote, &cert, Purpose::Sign, &anchors, &[], &[], now());
    assert!(v.usable, "{}", v.reason);
}

#[test]
fn encryption_only_cert_is_refused_for_signing_key_usage_rfc5280_4_2_1_3() {
    let root = root("Test Root");
    let cert = leaf(&root, Validity::Days(365), Usage::EncryptionOnly);
    let anchors = [root.cert().clone()];
    let remote = Remote::http();
    let v = ask(&remote, &cert, Purpose::Sign, &anchors, &[], &[], now());
    assert!(!v.usable, "{v:?}");
    assert!(
        v.reason
            .contains("key usage lacks digitalSignature, needed for signing"),
        "{}",
        v.reason
    );
    let v = ask(&remote, &cert, Purpose::Encrypt, &anchors, &[], &[], now());
    assert!(v.usable, "{}", v.reason);
}

#[test]
fn cert_without_key_usage_is_unrestricted_and_noted_rfc5280_4_2_1_3() {
    let root = root("Test Root");
    let (cert, _) = build(&root, &Spec::address(ADDRESS).ku(Ku::Absent));
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Encrypt,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(v.usable, "{}", v.reason);
    assert!(
        v.reason.contains("has no keyUsage extension: unrestricted"),
        "{}",
        v.reason
    );
}

#[test]
fn every_offline_failure_is_named() {
    let root = root("Test Root");
    let cert = issue(
        &root,
        &CaBinding::Address("bob@direct.example.org".into()),
        &IssueOptions {
            usage: Usage::SigningOnly,
            validity: Validity::expired(10),
            ..IssueOptions::default()
        },
    )
    .unwrap()
    .cert;
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Encrypt,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary);
    assert_eq!(v.binding, Binding::None);
    assert_eq!(
        v.failures,
        [
            TrustFailure::Unbound,
            TrustFailure::KeyUsage,
            TrustFailure::Expired
        ]
    );
    for part in [
        "is not bound to alice@direct.example.org",
        "lacks keyEncipherment",
        "expired at",
    ] {
        assert!(v.reason.contains(part), "{part}: {}", v.reason);
    }
}

fn aia_pki(
    server_url: &str,
) -> (
    hisp_ca::CertificateAuthority,
    hisp_ca::CertificateAuthority,
    X509,
) {
    let root = root("Test Root");
    let int = plain_intermediate(&root, "AIA Intermediate");
    let (cert, _) = build(&int, &Spec::address(ADDRESS).aia(server_url));
    (root, int, cert)
}

#[test]
fn intermediate_fetched_by_aia_ca_issuers_and_cached_rfc5280_4_2_2_1() {
    let server = Server::start();
    let (root, int, cert) = aia_pki(&server.url("/int.cer"));
    server.put("/int.cer", int.cert().to_der().unwrap());
    let remote = Remote::http();
    let anchors = [root.cert().clone()];
    let v = ask(&remote, &cert, Purpose::Sign, &anchors, &[], &[], now());
    assert!(v.usable, "{}", v.reason);
    assert!(
        v.reason.contains(&format!(
            "issuers from caIssuers {}",
            server.url("/int.cer")
        )),
        "{}",
        v.reason
    );
    assert_eq!(server.hits("/int.cer"), 1);
    let v = ask(&remote, &cert, Purpose::Encrypt, &anchors, &[], &[], now());
    assert!(v.usable, "{}", v.reason);
    assert_eq!(
        server.hits("/int.cer"),
        1,
        "the second judgement used the cache"
    );
}

#[test]
fn aia_serving_pem_or_pkcs7_collection_is_read() {
    let server = Server::start();
    let (root, int, cert) = aia_pki(&server.url("/int.p7c"));
    server.put("/int.p7c", p7b(&[int.cert()], true));
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(v.usable, "{}", v.reason);

    let (root, int, cert) = aia_pki(&server.url("/int.pem"));
    server.put("/int.pem", int.cert().to_pem().unwrap());
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(v.usable, "{}", v.reason);
}

#[test]
fn aia_server_down_is_a_temporary_failure() {
    let url = dead_url("/int.cer");
    let (root, _int, cert) = aia_pki(&url);
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(!v.usable && v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::IssuerUnavailable]);
    assert!(
        v.reason.contains(&format!("caIssuers {url} unreachable: ")),
        "{}",
        v.reason
    );
    assert!(v.reason.ends_with("(temporary)"), "{}", v.reason);
}

#[test]
fn aia_serving_the_wrong_issuer_is_no_path() {
    let server = Server::start();
    let (root, _int, cert) = aia_pki(&server.url("/int.cer"));
    let stranger = plain_intermediate(&root, "Someone Else");
    server.put("/int.cer", stranger.cert().to_der().unwrap());
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert!(v.reason.contains("no path to anchors"), "{}", v.reason);
}

#[test]
fn rsa_1024_leaf_fails_the_path_at_security_level_2_applicability_statement_1_3() {
    let root = root("Test Root");
    let cert = issue(
        &root,
        &CaBinding::Address(ADDRESS.into()),
        &IssueOptions {
            bits: 1024,
            ..IssueOptions::default()
        },
    )
    .unwrap()
    .cert;
    let v = ask(
        &Remote::http(),
        &cert,
        Purpose::Sign,
        &[root.cert().clone()],
        &[],
        &[],
        now(),
    );
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::InvalidPath]);
    assert!(
        v.reason
            .contains("fails RFC 5280 path validation: EE certificate key too weak"),
        "{}",
        v.reason
    );
}

/// One `Anchors` (its certificate store built once) serves validations at
/// different times from several threads: the validation time belongs to each
/// validation, never to the store (RFC 5280 §6.1.1 (b)).
#[test]
fn one_anchor_store_serves_each_validation_at_its_own_time_rfc5280_6_1_1_b() {
    let root = root("Test Root");
    let cert = leaf(&root, Validity::Days(30), Usage::Combined);
    let anchors = Anchors::new(vec![root.cert().clone()]).unwrap();
    let remote = Remote::http();
    let ask_at = |at: i64| {
        judge(
            &Question {
                cert: &cert,
                purpose: Purpose::Sign,
                expected: ADDRESS,
                anchors: &anchors,
                intermediates: Intermediates::default(),
                at,
                revocation: RevocationMode::HardFail,
            },
            &remote,
        )
    };
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..4)
            .map(|i| {
                let at = if i % 2 == 0 { now() } else { now() + 60 * DAY };
                let ask_at = &ask_at;
                s.spawn(move || (i, ask_at(at)))
            })
            .collect();
        for run in runs {
            let (i, v) = run.join().unwrap();
            if i % 2 == 0 {
                assert!(v.usable, "{}", v.reason);
            } else {
                assert_eq!(v.failures, [TrustFailure::Expired], "{}", v.reason);
            }
        }
    });
    assert!(ask_at(now()).usable);
}
