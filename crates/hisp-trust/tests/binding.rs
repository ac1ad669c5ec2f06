//! Address binding, Applicability Statement for Secure Health Transport 1.3
//! §4.1: subjectAltName rfc822Name for an address, dNSName for a domain,
//! compared without regard to letter case; subject emailAddress ignored.

mod common;

use common::now;
use common::pki::{build, root, Spec};
use hisp_trust::{
    binding, judge, Anchors, Binding, Intermediates, Purpose, Question, Remote, RevocationMode,
};
use openssl::x509::X509;

fn cert(
    emails: &[&str],
    dns: &[&str],
    subject_email: Option<&str>,
) -> (hisp_ca::CertificateAuthority, X509) {
    let ca = root("Test Root");
    let mut spec = Spec::address("unused@example.org");
    spec.cn = "Binding Test".into();
    spec.emails = emails.iter().map(|s| s.to_string()).collect();
    spec.dns = dns.iter().map(|s| s.to_string()).collect();
    spec.subject_email = subject_email.map(str::to_string);
    let (c, _) = build(&ca, &spec);
    (ca, c)
}

#[test]
fn rfc822name_equal_to_the_address_is_address_bound_as_4_1() {
    let (_, c) = cert(&["alice@direct.example.org"], &[], None);
    assert_eq!(binding(&c, "alice@direct.example.org"), Binding::Address);
}

#[test]
fn address_binding_ignores_letter_case_as_4_1() {
    let (_, c) = cert(&["Alice@Direct.Example.org"], &[], None);
    assert_eq!(binding(&c, "ALICE@direct.example.ORG"), Binding::Address);
}

#[test]
fn dnsname_equal_to_the_domain_is_domain_bound_as_4_1() {
    let (_, c) = cert(&[], &["Direct.Example.org"], None);
    assert_eq!(binding(&c, "alice@direct.example.org"), Binding::Domain);
    assert_eq!(binding(&c, "direct.example.org."), Binding::Domain);
}

#[test]
fn other_address_or_domain_is_unbound_as_4_1() {
    let (_, c) = cert(&["bob@direct.example.org"], &["other.example.org"], None);
    assert_eq!(binding(&c, "alice@direct.example.org"), Binding::None);
    // A parent domain is not the domain.
    let (_, c) = cert(&[], &["example.org"], None);
    assert_eq!(binding(&c, "alice@direct.example.org"), Binding::None);
}

#[test]
fn subject_email_address_alone_does_not_bind_as_4_1() {
    let (_, c) = cert(&[], &[], Some("alice@direct.example.org"));
    assert_eq!(binding(&c, "alice@direct.example.org"), Binding::None);
}

#[test]
fn address_binding_wins_over_domain_binding() {
    let (_, c) = cert(&["alice@direct.example.org"], &["direct.example.org"], None);
    assert_eq!(binding(&c, "alice@direct.example.org"), Binding::Address);
    assert_eq!(binding(&c, "bob@direct.example.org"), Binding::Domain);
}

#[test]
fn bare_domain_admits_only_a_domain_binding() {
    let (_, c) = cert(&["direct.example.org"], &[], None);
    assert_eq!(binding(&c, "direct.example.org"), Binding::None);
}

#[test]
fn unbound_certificate_is_refused_with_the_address_as_4_1() {
    let (ca, c) = cert(&[], &[], Some("alice@direct.example.org"));
    let v = judge(
        &Question {
            cert: &c,
            purpose: Purpose::Sign,
            expected: "alice@direct.example.org",
            anchors: &Anchors::new(vec![ca.cert().clone()]).unwrap(),
            intermediates: Intermediates::default(),
            at: now(),
            revocation: RevocationMode::HardFail,
        },
        &Remote::http(),
    );
    assert!(!v.usable && !v.temporary);
    assert_eq!(v.binding, Binding::None);
    let serial = hisp_trust::serial_hex(&c);
    assert_eq!(
        v.reason,
        format!(
            "'CN=Binding Test, emailAddress=alice@direct.example.org' (serial {serial}) is not bound to alice@direct.example.org (no subjectAltName rfc822Name or dNSName matches)"
        )
    );
}

#[test]
fn domain_bound_certificate_is_usable_for_any_address_of_the_domain() {
    let (ca, c) = cert(&[], &["direct.example.org"], None);
    let v = judge(
        &Question {
            cert: &c,
            purpose: Purpose::Encrypt,
            expected: "carol@DIRECT.example.org",
            anchors: &Anchors::new(vec![ca.cert().clone()]).unwrap(),
            intermediates: Intermediates::default(),
            at: now(),
            revocation: RevocationMode::HardFail,
        },
        &Remote::http(),
    );
    assert!(v.usable, "{}", v.reason);
    assert_eq!(v.binding, Binding::Domain);
    assert!(v.reason.contains("domain-bound"), "{}", v.reason);
}

#[test]
fn rfc822name_with_trailing_dot_on_its_domain_binds_as_the_same_address() {
    // Both sides are `DirectAddress`es: the domain compares as DNS does.
    let (_, c) = cert(&["alice@direct.example.org."], &[], None);
    assert_eq!(binding(&c, "alice@Direct.Example.org"), Binding::Address);
}

#[test]
fn expected_name_that_is_not_a_direct_address_binds_nothing() {
    let (_, c) = cert(&["alice@direct.example.org"], &["direct.example.org"], None);
    // Not a dot-atom local part, not an LDH domain, no domain at all.
    assert_eq!(binding(&c, "a..lice@direct.example.org"), Binding::None);
    assert_eq!(binding(&c, "alice@direct_example.org"), Binding::None);
    assert_eq!(binding(&c, "alice@"), Binding::None);
    assert_eq!(binding(&c, ""), Binding::None);
}
