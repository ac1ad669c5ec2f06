//! LDAP certificate discovery against a real slapd, found through SRV records
//! served by a real named. Cases follow the Direct Certificate Discovery
//! Tool's LDAP cases (address-bound, domain-bound, SRV priorities and weights,
//! unreachable servers, no entry).

#[path = "common/slapd.rs"]
mod slapd;
#[path = "common/srv_dns.rs"]
mod srv_dns;

use std::time::Duration;

use hisp_ca::{issue, Binding, CertificateAuthority, IssueOptions};
use hisp_discovery::{FoundCert, LdapDiscovery, LdapSettings, Source, SourceResult, LDAP_CERT_TTL};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use slapd::{free_tcp_port, Entry, Slapd};
use srv_dns::{Srv, SrvDns};

const DOMAIN: &str = "example.test";
const ALICE: &str = "alice@example.test";

fn ca() -> CertificateAuthority {
    CertificateAuthority::create("LDAP Test CA", &Default::default()).expect("CA")
}

fn cert(ca: &CertificateAuthority, binding: Binding) -> Vec<u8> {
    issue(ca, &binding, &IssueOptions::default())
        .expect("issue")
        .cert
        .to_der()
        .expect("der")
}

fn address_cert(ca: &CertificateAuthority, address: &str) -> Vec<u8> {
    cert(ca, Binding::Address(address.to_string()))
}

fn discovery(dns: &SrvDns) -> LdapDiscovery {
    LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec![dns.addr()]),
        dns_timeout: Duration::from_secs(2),
        dns_attempts: 1,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(5),
        server_timeout: Duration::from_secs(10),
    })
    .expect("discovery")
}

fn found(result: SourceResult) -> Vec<FoundCert> {
    match result {
        SourceResult::Found(certs) => certs,
        other => panic!("expected certificates, got {other:?}"),
    }
}

fn ders(certs: &[FoundCert]) -> Vec<Vec<u8>> {
    certs.iter().map(|c| c.der.clone()).collect()
}

#[tokio::test]
async fn address_bound_certificate_in_ldap_is_found() {
    let ca = ca();
    let der = address_cert(&ca, ALICE);
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der.clone()])],
    );
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, ldap.port(), "ldap")]);

    let certs = found(discovery(&dns).lookup(DOMAIN, ALICE).await);

    assert_eq!(
        certs,
        [FoundCert {
            source: Source::Ldap,
            owner: ldap.dn("alice"),
            der,
            ttl: LDAP_CERT_TTL,
        }]
    );
}

#[tokio::test]
async fn domain_bound_certificate_in_ldap_is_found_under_mail_domain() {
    let ca = ca();
    let der = cert(&ca, Binding::Domain(DOMAIN.to_string()));
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("org", DOMAIN, vec![der.clone()])],
    );
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, ldap.port(), "ldap")]);
    let discovery = discovery(&dns);

    let certs = found(discovery.lookup(DOMAIN, DOMAIN).await);
    assert_eq!(ders(&certs), [der]);
    assert_eq!(certs[0].owner, ldap.dn("org"));
    // The address-bound lookup does not match the domain's entry.
    assert_eq!(
        discovery.lookup(DOMAIN, ALICE).await,
        SourceResult::NotFound
    );
}

#[tokio::test]
async fn mail_matches_without_regard_to_case() {
    let ca = ca();
    let der = address_cert(&ca, ALICE);
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der.clone()])],
    );
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, ldap.port(), "ldap")]);

    let certs = found(
        discovery(&dns)
            .lookup("EXAMPLE.test.", "Alice@Example.TEST")
            .await,
    );
    assert_eq!(ders(&certs), [der]);
}

#[tokio::test]
async fn unreachable_first_server_is_skipped_for_the_next_rfc2782() {
    let ca = ca();
    let der = address_cert(&ca, ALICE);
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der.clone()])],
    );
    let dead = free_tcp_port();
    let dns = SrvDns::start(
        DOMAIN,
        &[
            Srv::new(0, 10, dead, "down"),
            Srv::new(10, 10, ldap.port(), "up"),
        ],
    );

    let certs = found(discovery(&dns).lookup(DOMAIN, ALICE).await);
    assert_eq!(ders(&certs), [der]);
}

#[tokio::test]
async fn srv_pointing_only_at_unreachable_servers_is_temporary() {
    let dns = SrvDns::start(
        DOMAIN,
        &[
            Srv::new(0, 0, free_tcp_port(), "down1"),
            Srv::new(5, 0, free_tcp_port(), "down2"),
        ],
    );

    let result = discovery(&dns).lookup(DOMAIN, ALICE).await;
    match result {
        SourceResult::Temporary(reason) => {
            assert!(reason.contains("down1.example.test"), "{reason}");
            assert!(reason.contains("down2.example.test"), "{reason}");
            assert!(reason.contains("Connection refused"), "{reason}");
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

#[tokio::test]
async fn answering_server_without_entry_decides_not_found_without_falling_through() {
    let ca = ca();
    let empty = Slapd::start("dc=first,dc=test", &[]);
    let full = Slapd::start(
        "dc=second,dc=test",
        &[Entry::with_certs(
            "alice",
            ALICE,
            vec![address_cert(&ca, ALICE)],
        )],
    );
    let dns = SrvDns::start(
        DOMAIN,
        &[
            Srv::new(0, 0, empty.port(), "first"),
            Srv::new(10, 0, full.port(), "second"),
        ],
    );

    assert_eq!(
        discovery(&dns).lookup(DOMAIN, ALICE).await,
        SourceResult::NotFound
    );
}

#[tokio::test]
async fn weight_65535_target_is_used_before_weight_0_target_rfc2782() {
    let ca = ca();
    let heavy_cert = address_cert(&ca, ALICE);
    let zero_cert = address_cert(&ca, ALICE);
    let heavy = Slapd::start(
        "dc=heavy,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![heavy_cert.clone()])],
    );
    let zero = Slapd::start(
        "dc=zero,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![zero_cert])],
    );
    let dns = SrvDns::start(
        DOMAIN,
        &[
            Srv::new(0, 0, zero.port(), "zero"),
            Srv::new(0, 65535, heavy.port(), "heavy"),
        ],
    );
    let discovery = discovery(&dns);

    // Random selection must never put the weight-0 target first; results
    // are not merged, so the other server's certificate never shows.
    for _ in 0..5 {
        let certs = found(discovery.lookup(DOMAIN, ALICE).await);
        assert_eq!(ders(&certs), std::slice::from_ref(&heavy_cert));
        assert_eq!(certs[0].owner, heavy.dn("alice"));
    }
}

#[tokio::test]
async fn every_certificate_of_the_entry_is_returned() {
    let ca = ca();
    let certs: Vec<Vec<u8>> = (0..3).map(|_| address_cert(&ca, ALICE)).collect();
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("alice", ALICE, certs.clone())],
    );
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, ldap.port(), "ldap")]);

    let mut got = ders(&found(discovery(&dns).lookup(DOMAIN, ALICE).await));
    let mut expected = certs;
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn user_smime_certificate_yields_its_certificates_rfc2798() {
    let ca = ca();
    let issued = issue(
        &ca,
        &Binding::Address(ALICE.to_string()),
        &IssueOptions::default(),
    )
    .expect("issue");
    let p7 = Pkcs7::sign(
        &issued.cert,
        &issued.key,
        &Stack::new().expect("stack"),
        b"",
        Pkcs7Flags::BINARY | Pkcs7Flags::DETACHED,
    )
    .expect("pkcs7");
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry {
            cn: "alice".into(),
            mail: ALICE.into(),
            user_certificates: Vec::new(),
            smime_certificates: vec![p7.to_der().expect("der")],
        }],
    );
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, ldap.port(), "ldap")]);

    let certs = found(discovery(&dns).lookup(DOMAIN, ALICE).await);
    assert_eq!(ders(&certs), [issued.cert.to_der().expect("der")]);
}

#[tokio::test]
async fn no_srv_records_is_not_found() {
    let dns = SrvDns::start(DOMAIN, &[]);
    assert_eq!(
        discovery(&dns).lookup(DOMAIN, ALICE).await,
        SourceResult::NotFound
    );
}

#[tokio::test]
async fn srv_target_dot_means_no_service_rfc2782() {
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, 0, ".")]);
    assert_eq!(
        discovery(&dns).lookup(DOMAIN, ALICE).await,
        SourceResult::NotFound
    );
}

#[tokio::test]
async fn refused_srv_lookup_is_temporary() {
    // The name server is not authoritative for the domain and does not recurse.
    let dns = SrvDns::start("other.test", &[]);
    match discovery(&dns).lookup(DOMAIN, ALICE).await {
        SourceResult::Temporary(reason) => {
            assert!(reason.contains("_ldap._tcp.example.test."), "{reason}");
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

#[tokio::test]
async fn srv_lookup_timeout_is_temporary() {
    // A UDP socket that never answers, and no TCP listener on its port.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let discovery = LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec![silent.local_addr().expect("addr")]),
        dns_timeout: Duration::from_millis(300),
        dns_attempts: 1,
        ..LdapSettings::default()
    })
    .expect("discovery");

    match discovery.lookup(DOMAIN, ALICE).await {
        SourceResult::Temporary(reason) => {
            assert!(reason.contains("_ldap._tcp.example.test."), "{reason}");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

#[tokio::test]
async fn servfail_srv_lookup_is_temporary() {
    let dns = SrvDns::start_with_broken_zone("other.test", &[], DOMAIN);
    match discovery(&dns).lookup(DOMAIN, ALICE).await {
        SourceResult::Temporary(reason) => {
            assert!(reason.contains("_ldap._tcp.example.test."), "{reason}");
            assert!(reason.contains("Server Failure"), "{reason}");
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

#[tokio::test]
async fn server_that_accepts_but_never_answers_is_skipped_for_the_next() {
    let ca = ca();
    let der = address_cert(&ca, ALICE);
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der.clone()])],
    );
    // The kernel completes the TCP handshake; nothing ever reads or replies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let silent_port = silent.local_addr().expect("addr").port();
    let dns = SrvDns::start(
        DOMAIN,
        &[
            Srv::new(0, 0, silent_port, "silent"),
            Srv::new(1, 0, ldap.port(), "ldap"),
        ],
    );
    let discovery = LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec![dns.addr()]),
        dns_timeout: Duration::from_secs(2),
        dns_attempts: 1,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_millis(500),
        server_timeout: Duration::from_secs(2),
    })
    .expect("discovery");

    let certs = found(discovery.lookup(DOMAIN, ALICE).await);
    assert_eq!(ders(&certs), [der]);
}

#[tokio::test]
async fn domain_that_is_not_a_dns_name_is_not_found() {
    // No name server is asked: the port is never contacted.
    let discovery = LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec!["127.0.0.1:9".parse().expect("addr")]),
        ..LdapSettings::default()
    })
    .expect("discovery");
    assert_eq!(
        discovery.lookup("exa..mple.test", "a@exa..mple.test").await,
        SourceResult::NotFound
    );
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct TestClock(std::sync::Mutex<std::time::Instant>);

impl hisp_discovery::dns::Clock for TestClock {
    fn now(&self) -> std::time::Instant {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn ldap_answers_are_cached_for_their_ttl_and_then_asked_again() {
    let ca = ca();
    let der = address_cert(&ca, ALICE);
    let ldap = Slapd::start(
        "dc=example,dc=test",
        &[Entry::with_certs("alice", ALICE, vec![der.clone()])],
    );
    let dns = SrvDns::start(DOMAIN, &[Srv::new(0, 0, ldap.port(), "ldap")]);
    let clock = std::sync::Arc::new(TestClock(std::sync::Mutex::new(std::time::Instant::now())));
    let source = discovery(&dns).with_clock(clock.clone());
    let first = ders(&found(source.lookup(DOMAIN, ALICE).await));
    assert_eq!(first, std::slice::from_ref(&der));
    drop(ldap);
    // The directory is gone, but the answer is still fresh.
    assert_eq!(ders(&found(source.lookup(DOMAIN, ALICE).await)), [der]);
    // Past its TTL the directory is asked again, and cannot answer.
    *clock.0.lock().unwrap() += Duration::from_secs(u64::from(LDAP_CERT_TTL) + 1);
    assert!(
        matches!(
            source.lookup(DOMAIN, ALICE).await,
            SourceResult::Temporary(_)
        ),
        "an expired cache entry must not be served"
    );
}
