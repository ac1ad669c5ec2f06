//! The discovery matrix (issue 4, Acceptance): the cases of the Direct
//! Certificate Discovery Tool's discovery test cases D1-D18, and the
//! orderings and failures issue 4 adds, each run through
//! [`Discoverer::discover`] against a real BIND 9 `named` (CERT and SRV
//! records), a real OpenLDAP `slapd` where LDAP is involved, and a loopback
//! HTTP server for CRLs and caIssuers.
//!
//! Where DCDT places background certificates that a correct discoverer never
//! selects (D1-D3), they are published here too, invalid, so that using one
//! would fail the test. Tests named `dN_...` follow DCDT case N; the others
//! pin rules of issue 4 that DCDT has no number for.
//!
//! Every test trusts one anchor (`Matrix Root CA`), validates at the current
//! time with hard-fail revocation, and starts (and stops, on drop) its own
//! servers; the CAs and keys are made once per run (see `matrix_pki`).

#[path = "common/matrix_harness.rs"]
mod matrix_harness;
#[path = "common/matrix_http.rs"]
mod matrix_http;
#[path = "common/matrix_pki.rs"]
mod matrix_pki;
#[path = "common/named.rs"]
mod named;
#[path = "common/slapd.rs"]
mod slapd;

use std::time::Duration;

use hisp_discovery::{Query, Source};
use hisp_trust::{cert_id, Binding};
use matrix_harness::{
    assert_names, assert_refused, assert_uses, der, discover, discoverer, discoverer_with_timeout,
    nothing_anywhere, remote, run, Zone, ALICE, ALICE_OWNER, DOMAIN, SUFFIX,
};
use matrix_http::HttpServer;
use matrix_pki::{crl, pki, Leaf};
use openssl::x509::X509;
use slapd::{free_tcp_port, Entry, Slapd};

#[tokio::test]
async fn d1_address_bound_cert_in_dns() {
    let p = pki();
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    // DCDT D1's background: an invalid domain-bound certificate in DNS and
    // an invalid address-bound one in LDAP. Neither may be used.
    let dns_domain = Leaf::domain(DOMAIN).expired().issued_by(&p.root);
    let ldap_address = Leaf::address(ALICE).expired().issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[Entry::with_certs("alice", ALICE, vec![der(&ldap_address)])],
    );
    let dns = Zone::default()
        .cert(ALICE_OWNER, &valid)
        .cert(DOMAIN, &dns_domain)
        .srv(0, 0, ldap.port(), "ldap")
        .start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Dns, Query::Address);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].found.owner, ALICE_OWNER);
    assert_eq!(d.certificates[0].binding, Binding::Address);
}

#[tokio::test]
async fn d2_domain_bound_cert_in_dns() {
    let p = pki();
    let valid = Leaf::domain(DOMAIN).issued_by(&p.root);
    // DCDT D2's background: invalid address-bound and domain-bound
    // certificates in LDAP.
    let ldap_address = Leaf::address(ALICE).expired().issued_by(&p.root);
    let ldap_domain = Leaf::domain(DOMAIN).expired().issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[
            Entry::with_certs("alice", ALICE, vec![der(&ldap_address)]),
            Entry::with_certs("org", DOMAIN, vec![der(&ldap_domain)]),
        ],
    );
    let dns = Zone::default()
        .cert(DOMAIN, &valid)
        .srv(0, 0, ldap.port(), "ldap")
        .start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Dns, Query::Domain);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].found.owner, DOMAIN);
    assert_eq!(d.certificates[0].binding, Binding::Domain);
}

#[tokio::test]
async fn d3_address_bound_cert_in_ldap() {
    let p = pki();
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    // DCDT D3's background: an invalid domain-bound certificate in LDAP.
    let ldap_domain = Leaf::domain(DOMAIN).expired().issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[
            Entry::with_certs("alice", ALICE, vec![der(&valid)]),
            Entry::with_certs("org", DOMAIN, vec![der(&ldap_domain)]),
        ],
    );
    let dns = Zone::default().srv(0, 0, ldap.port(), "ldap").start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Ldap, Query::Address);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].found.owner, ldap.dn("alice"));
    assert_eq!(d.certificates[0].binding, Binding::Address);
}

#[tokio::test]
async fn d4_domain_bound_cert_in_ldap() {
    let p = pki();
    let valid = Leaf::domain(DOMAIN).issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[Entry::with_certs("org", DOMAIN, vec![der(&valid)])],
    );
    let dns = Zone::default().srv(0, 0, ldap.port(), "ldap").start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Ldap, Query::Domain);
    assert_eq!(d.certificates[0].found.owner, ldap.dn("org"));
    assert_eq!(d.certificates[0].binding, Binding::Domain);
}

#[tokio::test]
async fn address_bound_cert_wins_over_domain_bound_cert_both_in_dns() {
    let p = pki();
    let address = Leaf::address(ALICE).issued_by(&p.root);
    let domain = Leaf::domain(DOMAIN).issued_by(&p.root);
    let dns = Zone::default()
        .cert(ALICE_OWNER, &address)
        .cert(DOMAIN, &domain)
        .start();

    let d = discover(&dns, ALICE).await;

    // Both are valid; the address-bound lookup comes first and decides.
    assert_uses(&d, &[&address], Source::Dns, Query::Address);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
}

#[tokio::test]
async fn dns_domain_bound_cert_wins_over_ldap_address_bound_cert() {
    let p = pki();
    let dns_domain = Leaf::domain(DOMAIN).issued_by(&p.root);
    let ldap_address = Leaf::address(ALICE).issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[Entry::with_certs("alice", ALICE, vec![der(&ldap_address)])],
    );
    let dns = Zone::default()
        .cert(DOMAIN, &dns_domain)
        .srv(0, 0, ldap.port(), "ldap")
        .start();

    let d = discover(&dns, ALICE).await;

    // Order of Certificate Discovery for Direct: DNS (address, then
    // domain) before LDAP, so the DNS domain-bound certificate decides.
    assert_uses(&d, &[&dns_domain], Source::Dns, Query::Domain);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
}

#[tokio::test]
async fn d5_expired_address_bound_cert_in_dns_is_refused_without_falling_back_to_domain_bound() {
    let p = pki();
    let expired = Leaf::address(ALICE).expired().issued_by(&p.root);
    let domain = Leaf::domain(DOMAIN).issued_by(&p.root);
    let dns = Zone::default()
        .cert(ALICE_OWNER, &expired)
        .cert(DOMAIN, &domain)
        .start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert_eq!(
        d.certificates.len(),
        1,
        "only the deciding source's: {d:#?}"
    );
    assert_eq!(d.certificates[0].cert.as_ref(), Some(&expired));
    assert_eq!(d.certificates[0].query, Query::Address);
    assert_names(&d.reason, &expired, " expired at ");
    assert!(
        d.reason
            .starts_with("no usable certificate: 1 found in dns address-bound")
            && d.reason.ends_with("the next source is not asked"),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn d6_untrusted_domain_bound_cert_in_dns_is_refused_without_falling_back_to_ldap() {
    let p = pki();
    let untrusted = Leaf::domain(DOMAIN).issued_by(&p.stranger);
    let ldap_address = Leaf::address(ALICE).issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[Entry::with_certs("alice", ALICE, vec![der(&ldap_address)])],
    );
    let dns = Zone::default()
        .cert(DOMAIN, &untrusted)
        .srv(0, 0, ldap.port(), "ldap")
        .start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].query, Query::Domain);
    assert_eq!(d.certificates[0].found.source, Source::Dns);
    let anchor = cert_id(p.root.cert());
    assert!(
        d.reason.contains(&format!("no path to anchors [{anchor}]")),
        "{}",
        d.reason
    );
    assert!(d.reason.contains(&cert_id(&untrusted)), "{}", d.reason);
}

#[tokio::test]
async fn d7_expired_address_bound_cert_in_ldap_is_refused_without_falling_back_to_domain_bound() {
    let p = pki();
    let expired = Leaf::address(ALICE).expired().issued_by(&p.root);
    let domain = Leaf::domain(DOMAIN).issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[
            Entry::with_certs("alice", ALICE, vec![der(&expired)]),
            Entry::with_certs("org", DOMAIN, vec![der(&domain)]),
        ],
    );
    let dns = Zone::default().srv(0, 0, ldap.port(), "ldap").start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].cert.as_ref(), Some(&expired));
    assert_eq!(d.certificates[0].found.owner, ldap.dn("alice"));
    assert_names(&d.reason, &expired, " expired at ");
    assert!(
        d.reason
            .starts_with("no usable certificate: 1 found in ldap address-bound"),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn d8_domain_bound_cert_in_ldap_without_key_encipherment_is_refused() {
    let p = pki();
    let signing_only = Leaf::domain(DOMAIN).signing_only().issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[Entry::with_certs("org", DOMAIN, vec![der(&signing_only)])],
    );
    let dns = Zone::default().srv(0, 0, ldap.port(), "ldap").start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].query, Query::Domain);
    assert_names(
        &d.reason,
        &signing_only,
        "key usage lacks keyEncipherment, needed for encryption",
    );
}

#[tokio::test]
async fn d9_valid_address_bound_cert_is_picked_among_invalid_ones_in_dns() {
    let p = pki();
    let expired = Leaf::address(ALICE).expired().issued_by(&p.root);
    let untrusted = Leaf::address(ALICE).issued_by(&p.stranger);
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    let signing_only = Leaf::address(ALICE).signing_only().issued_by(&p.root);
    let dns = Zone::default()
        .cert(ALICE_OWNER, &expired)
        .cert(ALICE_OWNER, &untrusted)
        .cert(ALICE_OWNER, &valid)
        .cert(ALICE_OWNER, &signing_only)
        .start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Dns, Query::Address);
    assert_eq!(d.certificates.len(), 4, "every one is judged: {d:#?}");
    assert!(
        d.reason.starts_with("1 usable certificate(s) of 4"),
        "{}",
        d.reason
    );
    let reason_of = |cert: &X509| {
        d.certificates
            .iter()
            .find(|j| j.cert.as_ref() == Some(cert))
            .map(|j| j.reason.clone())
            .expect("judged")
    };
    assert_names(&reason_of(&expired), &expired, " expired at ");
    assert_names(&reason_of(&untrusted), &untrusted, "no path to anchors");
    assert_names(
        &reason_of(&signing_only),
        &signing_only,
        "key usage lacks keyEncipherment",
    );
}

#[tokio::test]
async fn one_revoked_and_one_valid_cert_only_the_valid_one_is_used() {
    let p = pki();
    let http = HttpServer::start();
    let crl_url = http.url("/root.crl");
    let revoked = Leaf::address(ALICE).crl(&crl_url).issued_by(&p.root);
    let valid = Leaf::address(ALICE).crl(&crl_url).issued_by(&p.root);
    http.put("/root.crl", crl(&p.root, &[&revoked]));
    let dns = Zone::default()
        .cert(ALICE_OWNER, &revoked)
        .cert(ALICE_OWNER, &valid)
        .start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Dns, Query::Address);
    assert_eq!(d.certificates.len(), 2, "{d:#?}");
    let judged = d
        .certificates
        .iter()
        .find(|j| j.cert.as_ref() == Some(&revoked))
        .expect("the revoked certificate was judged");
    assert!(!judged.usable && !judged.temporary, "{judged:#?}");
    assert_names(&judged.reason, &revoked, " was revoked on ");
    assert!(
        judged.reason.ends_with(&format!("by CRL {crl_url}")),
        "{}",
        judged.reason
    );
}

#[tokio::test]
async fn d10_ldap_srv_first_server_unreachable_the_next_is_used() {
    let p = pki();
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    let ldap = Slapd::start(
        SUFFIX,
        &[Entry::with_certs("alice", ALICE, vec![der(&valid)])],
    );
    let dns = Zone::default()
        .srv(0, 0, free_tcp_port(), "down")
        .srv(1, 0, ldap.port(), "up")
        .start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Ldap, Query::Address);
    assert_eq!(d.certificates[0].found.owner, ldap.dn("alice"));
}

#[tokio::test]
async fn d11_no_certificate_anywhere_is_not_found_not_temporary() {
    // No CERT record for the address or its domain, no SRV record; another
    // address's certificate is published and must not be taken.
    let bobs = Leaf::address("bob@direct.test").issued_by(&pki().root);
    let dns = Zone::default().cert("bob.direct.test", &bobs).start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert!(d.certificates.is_empty(), "{d:#?}");
    assert_eq!(d.reason, nothing_anywhere());
}

#[tokio::test]
async fn d12_srv_pointing_only_at_an_unreachable_ldap_server_is_temporary() {
    let dead = free_tcp_port();
    let dns = Zone::default().srv(0, 0, dead, "down").start();

    let d = discover(&dns, ALICE).await;

    // DCDT D12 expects nothing to be sent; hisp goes further and says the
    // failure is temporary (4xx), never "no certificate": the directory
    // that did not answer may hold the address's certificate.
    assert!(!d.usable && d.temporary, "{d:#?}");
    assert!(d.certificates.is_empty(), "{d:#?}");
    assert!(
        d.reason
            .starts_with("temporary failure at ldap address-bound: "),
        "{}",
        d.reason
    );
    assert!(
        d.reason.contains(&format!("down.{DOMAIN}:{dead}")),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn d13_srv_server_without_entry_decides_not_found_without_falling_through() {
    let p = pki();
    let empty = Slapd::start("dc=first,dc=test", &[]);
    let full = Slapd::start(
        "dc=second,dc=test",
        &[Entry::with_certs(
            "alice",
            ALICE,
            vec![der(&Leaf::address(ALICE).issued_by(&p.root))],
        )],
    );
    let dns = Zone::default()
        .srv(0, 0, empty.port(), "first")
        .srv(1, 0, full.port(), "second")
        .start();

    let d = discover(&dns, ALICE).await;

    // The first server answered (with nothing): results are not merged
    // across servers and the second is not asked.
    assert_refused(&d);
    assert!(d.certificates.is_empty(), "{d:#?}");
    assert_eq!(d.reason, nothing_anywhere());
}

#[tokio::test]
async fn d14_cert_larger_than_512_bytes_comes_over_tcp_applicability_statement_5_4() {
    let p = pki();
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    assert!(der(&valid).len() > 512, "must not fit a 512-octet answer");
    // A server that answers at most 512 octets over UDP, as one without
    // EDNS would: the answer comes truncated, and must be asked over TCP.
    let dns = Zone::default()
        .cert(ALICE_OWNER, &valid)
        .start_with_options("max-udp-size 512;");

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Dns, Query::Address);
    // named's query log marks a query that came over TCP with the flag 'T'.
    let log = dns.log();
    let flags: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split(&format!("query: {ALICE_OWNER} IN CERT ")).nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(
        flags.iter().any(|f| !f.contains('T')) && flags.iter().any(|f| f.contains('T')),
        "asked over UDP, then over TCP: {flags:?}\n{log}"
    );
}

#[tokio::test]
async fn d15_ldap_srv_lowest_priority_value_server_is_used() {
    let p = pki();
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    let invalid = Leaf::address(ALICE).expired().issued_by(&p.root);
    let first = Slapd::start(
        "dc=first,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der(&valid)])],
    );
    let second = Slapd::start(
        "dc=second,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der(&invalid)])],
    );
    // Listed in the zone with the higher priority value first.
    let dns = Zone::default()
        .srv(1, 0, second.port(), "second")
        .srv(0, 0, first.port(), "first")
        .start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&valid], Source::Ldap, Query::Address);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].found.owner, first.dn("alice"));
}

#[tokio::test]
async fn d16_ldap_srv_weight_65535_server_is_used_before_weight_0_server_rfc_2782() {
    let p = pki();
    let heavy_cert = Leaf::address(ALICE).issued_by(&p.root);
    let zero_cert = Leaf::address(ALICE).issued_by(&p.root);
    let heavy = Slapd::start(
        "dc=heavy,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der(&heavy_cert)])],
    );
    let zero = Slapd::start(
        "dc=zero,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der(&zero_cert)])],
    );
    let dns = Zone::default()
        .srv(0, 0, zero.port(), "zero")
        .srv(0, 65535, heavy.port(), "heavy")
        .start();
    let discoverer = discoverer(dns.addr());
    let remote = remote();

    // Both certificates are valid: only the order of the servers decides.
    // The selection is random, so it is made several times.
    for _ in 0..5 {
        let d = run(&discoverer, ALICE, &remote).await;
        assert_uses(&d, &[&heavy_cert], Source::Ldap, Query::Address);
        assert_eq!(d.certificates.len(), 1, "{d:#?}");
        assert_eq!(d.certificates[0].found.owner, heavy.dn("alice"));
    }
}

#[tokio::test]
async fn d17_address_bound_cert_revoked_by_crl_is_refused_rfc_5280_6_3() {
    let p = pki();
    let http = HttpServer::start();
    let crl_url = http.url("/root.crl");
    let revoked = Leaf::address(ALICE).crl(&crl_url).issued_by(&p.root);
    http.put("/root.crl", crl(&p.root, &[&revoked]));
    // A valid domain-bound certificate too: the revoked address-bound one
    // decides, with no fall-back.
    let domain = Leaf::domain(DOMAIN).issued_by(&p.root);
    let dns = Zone::default()
        .cert(ALICE_OWNER, &revoked)
        .cert(DOMAIN, &domain)
        .start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_names(&d.reason, &revoked, " was revoked on ");
    assert!(
        d.reason.contains(&format!("by CRL {crl_url}")),
        "{}",
        d.reason
    );
    assert_eq!(http.hits("/root.crl"), 1);
}

#[tokio::test]
async fn d18_intermediate_fetched_by_aia_ca_issuers_rfc_5280_4_2_2_1() {
    let p = pki();
    let http = HttpServer::start();
    let aia_url = http.url("/intermediate.cer");
    http.put("/intermediate.cer", der(p.intermediate.cert()));
    // Issued by the intermediate, which is neither an anchor, nor a local
    // intermediate, nor published with the certificate.
    let leaf = Leaf::address(ALICE)
        .aia(&aia_url)
        .issued_by(&p.intermediate);
    let dns = Zone::default().cert(ALICE_OWNER, &leaf).start();

    let d = discover(&dns, ALICE).await;

    assert_uses(&d, &[&leaf], Source::Dns, Query::Address);
    let reason = &d.certificates[0].reason;
    assert!(
        reason.contains("'CN=Matrix Intermediate CA' -> anchor ")
            && reason.contains(&format!("(issuers from caIssuers {aia_url})")),
        "{reason}"
    );
    assert_eq!(http.hits("/intermediate.cer"), 1);
}

#[tokio::test]
async fn cert_not_bound_to_the_address_is_refused_applicability_statement_4_1() {
    let p = pki();
    let bobs = Leaf::address("bob@direct.test").issued_by(&p.root);
    let dns = Zone::default().cert(ALICE_OWNER, &bobs).start();

    let d = discover(&dns, ALICE).await;

    assert_refused(&d);
    assert_eq!(d.certificates.len(), 1, "{d:#?}");
    assert_eq!(d.certificates[0].binding, Binding::None);
    assert_names(&d.reason, &bobs, &format!(" is not bound to {ALICE}"));
}

#[tokio::test]
async fn dns_server_down_is_temporary_not_not_found() {
    let p = pki();
    let valid = Leaf::address(ALICE).issued_by(&p.root);
    // The certificate is published, but the name server is gone by the
    // time of the lookup (nothing listens on its port any more).
    let addr = {
        let dns = Zone::default().cert(ALICE_OWNER, &valid).start();
        dns.addr()
    };
    let discoverer = discoverer_with_timeout(addr, Duration::from_millis(500));

    let d = run(&discoverer, ALICE, &remote()).await;

    assert!(!d.usable && d.temporary, "{d:#?}");
    assert!(d.certificates.is_empty(), "{d:#?}");
    assert!(
        d.reason.starts_with(&format!(
            "temporary failure at dns address-bound: DNS CERT lookup of {ALICE_OWNER}: "
        )),
        "{}",
        d.reason
    );
}
