//! RFC 5280 §6.3 revocation with CRLs from the distribution points, hard-
//! and soft-fail, and the CRL cache kept until nextUpdate.

mod common;

use common::http::{dead_url, Server};
use common::pki::{build, build_ca, crl, plain_intermediate, root, Spec};
use common::{now, DAY};
use hisp_ca::CertificateAuthority;
use hisp_trust::{
    judge, Anchors, Intermediates, Purpose, Question, Remote, RevocationMode, TrustFailure, Verdict,
};
use openssl::x509::X509;

const ADDRESS: &str = "alice@direct.example.org";

/// root (anchor) -> intermediate (CRL at /root.crl) -> leaf (CRL at /int.crl).
struct Pki {
    root: CertificateAuthority,
    int: CertificateAuthority,
    leaf: X509,
}

fn pki(root_crl: &str, int_crl: &str) -> Pki {
    let root = root("Test Root");
    let int = build_ca(&root, &Spec::ca("Test Intermediate").crl(root_crl));
    let (leaf, _) = build(&int, &Spec::address(ADDRESS).crl(int_crl));
    Pki { root, int, leaf }
}

fn serve_crls(server: &Server, p: &Pki, revoked_by_root: &[&X509], revoked_by_int: &[&X509]) {
    server.put(
        "/root.crl",
        crl(&p.root, revoked_by_root, now() - DAY, now() + 7 * DAY),
    );
    server.put(
        "/int.crl",
        crl(&p.int, revoked_by_int, now() - DAY, now() + 7 * DAY),
    );
}

fn ask(remote: &Remote, p: &Pki, mode: RevocationMode, at: i64) -> Verdict {
    judge(
        &Question {
            cert: &p.leaf,
            purpose: Purpose::Sign,
            expected: ADDRESS,
            anchors: &Anchors::new(vec![p.root.cert().clone()]).unwrap(),
            intermediates: Intermediates {
                message: &[p.int.cert().clone()],
                local: &[],
            },
            at,
            revocation: mode,
        },
        remote,
    )
}

#[test]
fn unrevoked_path_is_usable_and_names_each_crl_rfc5280_6_3() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[]);
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(v.usable, "{}", v.reason);
    assert!(
        v.reason.contains(&format!(
            "is not revoked per CRL {}",
            server.url("/int.crl")
        )),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains(&format!(
            "is not revoked per CRL {}",
            server.url("/root.crl")
        )),
        "{}",
        v.reason
    );
}

#[test]
fn revoked_leaf_is_refused_rfc5280_6_3() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[&p.leaf]);
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::Revoked]);
    let serial = hisp_trust::serial_hex(&p.leaf);
    assert!(
        v.reason.starts_with(&format!(
            "'CN=alice@direct.example.org' (serial {serial}) was revoked on "
        )),
        "{}",
        v.reason
    );
    assert!(
        v.reason
            .ends_with(&format!("by CRL {}", server.url("/int.crl"))),
        "{}",
        v.reason
    );
}

#[test]
fn revoked_leaf_is_refused_under_soft_fail_too_rfc5280_6_3() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[&p.leaf]);
    let v = ask(&Remote::http(), &p, RevocationMode::SoftFail, now());
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert!(v.reason.contains("was revoked on"), "{}", v.reason);
}

#[test]
fn revoked_intermediate_is_refused_rfc5280_6_3() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[p.int.cert()], &[]);
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::Revoked]);
    assert!(
        v.reason.starts_with("'CN=Test Intermediate' (serial "),
        "{}",
        v.reason
    );
    assert!(
        v.reason
            .contains(&format!("by CRL {}", server.url("/root.crl"))),
        "{}",
        v.reason
    );
}

#[test]
fn revocation_wins_over_an_unreachable_crl() {
    let server = Server::start();
    let p = pki(&dead_url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[&p.leaf]);
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && !v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::Revoked]);
    assert!(v.reason.contains("was revoked on"), "{}", v.reason);
}

#[test]
fn crl_server_down_is_temporary_under_hard_fail() {
    let url = dead_url("/int.crl");
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &url);
    serve_crls(&server, &p, &[], &[]);
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && v.temporary, "{v:?}");
    assert_eq!(v.failures, [TrustFailure::RevocationUnavailable]);
    assert!(
        v.reason.starts_with(&format!("CRL {url} unreachable: ")),
        "{}",
        v.reason
    );
    let serial = hisp_trust::serial_hex(&p.leaf);
    assert!(
        v.reason.ends_with(&format!(
            " (for 'CN=alice@direct.example.org' (serial {serial})) (temporary)"
        )),
        "{}",
        v.reason
    );
}

#[test]
fn crl_server_down_is_accepted_under_soft_fail() {
    let url = dead_url("/int.crl");
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &url);
    serve_crls(&server, &p, &[], &[]);
    let v = ask(&Remote::http(), &p, RevocationMode::SoftFail, now());
    assert!(v.usable && !v.temporary, "{v:?}");
    assert!(
        v.reason.contains(&format!("CRL {url} unreachable: ")),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("accepted (soft-fail)"), "{}", v.reason);
}

#[test]
fn crl_not_found_is_temporary_under_hard_fail() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[]);
    server.remove("/int.crl");
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && v.temporary, "{v:?}");
    assert!(v.reason.contains("404"), "{}", v.reason);
}

#[test]
fn crl_is_cached_until_next_update_rfc5280_5_1_2_5() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[]);
    let remote = Remote::http();
    assert!(ask(&remote, &p, RevocationMode::HardFail, now()).usable);
    assert_eq!(server.hits("/int.crl"), 1);
    assert_eq!(server.hits("/root.crl"), 1);
    // Six days on: before nextUpdate (seven days), the cached CRLs answer.
    let v = ask(&remote, &p, RevocationMode::HardFail, now() + 6 * DAY);
    assert!(v.usable, "{}", v.reason);
    assert_eq!(server.hits("/int.crl"), 1);
    // Eight days on: past nextUpdate, the CRL is fetched again (and now
    // lists the leaf).
    server.put("/int.crl", crl(&p.int, &[&p.leaf], now(), now() + 30 * DAY));
    server.put("/root.crl", crl(&p.root, &[], now(), now() + 30 * DAY));
    let v = ask(&remote, &p, RevocationMode::HardFail, now() + 8 * DAY);
    assert_eq!(server.hits("/int.crl"), 2);
    assert!(
        !v.usable && v.reason.contains("was revoked on"),
        "{}",
        v.reason
    );
}

#[test]
fn stale_crl_past_next_update_is_not_used_rfc5280_6_3_3() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[]);
    server.put("/int.crl", crl(&p.int, &[], now() - 10 * DAY, now() - DAY));
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && v.temporary, "{v:?}");
    assert!(v.reason.contains("the CRL served is stale"), "{}", v.reason);
}

#[test]
fn crl_signed_by_another_key_is_not_trusted_rfc5280_6_3_3_f() {
    let server = Server::start();
    let p = pki(&server.url("/root.crl"), &server.url("/int.crl"));
    serve_crls(&server, &p, &[], &[]);
    // Same name, another key: the CRL must not be believed.
    let impostor = root("Test Intermediate");
    server.put(
        "/int.crl",
        crl(&impostor, &[], now() - DAY, now() + 7 * DAY),
    );
    let v = ask(&Remote::http(), &p, RevocationMode::HardFail, now());
    assert!(!v.usable && v.temporary, "{v:?}");
    assert!(
        v.reason
            .contains("its signature does not verify with the key of 'CN=Test Intermediate'"),
        "{}",
        v.reason
    );
}

#[test]
fn cert_without_crl_distribution_point_is_accepted_and_noted() {
    let root = root("Test Root");
    let int = plain_intermediate(&root, "Test Intermediate");
    let (leaf, _) = build(&int, &Spec::address(ADDRESS));
    let v = judge(
        &Question {
            cert: &leaf,
            purpose: Purpose::Encrypt,
            expected: ADDRESS,
            anchors: &Anchors::new(vec![root.cert().clone()]).unwrap(),
            intermediates: Intermediates {
                message: &[int.cert().clone()],
                local: &[],
            },
            at: now(),
            revocation: RevocationMode::HardFail,
        },
        &Remote::http(),
    );
    assert!(v.usable, "{}", v.reason);
    assert!(
        v.reason.contains("'CN=alice@direct.example.org' (serial ")
            && v.reason
                .contains("has no CRL distribution point: revocation not checked"),
        "{}",
        v.reason
    );
}
