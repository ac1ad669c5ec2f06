//! The built-in DNS responder and `hisp dns export`, checked against BIND 9
//! (`named-checkzone`, a real `named`), `dig`, and hisp's own DnsDiscovery.

#[path = "common/named.rs"]
mod named;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_discovery::{DnsConfig, DnsDiscovery, LocalRecords, Responder, SourceResult};
use named::{Named, NamedConfig, Zone};

struct Demo {
    records: LocalRecords,
    alice: Vec<u8>,
    domain: Vec<u8>,
}

fn demo() -> Demo {
    let ca = CertificateAuthority::create("Responder Test CA", &CaOptions::default()).unwrap();
    let der = |b: Binding| {
        issue(&ca, &b, &IssueOptions::default())
            .unwrap()
            .cert
            .to_der()
            .unwrap()
    };
    let alice = der(Binding::Address("alice@direct.test".into()));
    let domain = der(Binding::Domain("direct.test".into()));
    let records = LocalRecords {
        zones: vec!["direct.test".into()],
        certs: vec![
            ("alice.direct.test".into(), alice.clone()),
            ("direct.test".into(), domain.clone()),
        ],
        a: vec![("mail.direct.test".into(), Ipv4Addr::new(127, 0, 0, 1))],
        mx: vec![("direct.test".into(), 10, "mail.direct.test".into())],
        ttl: 300,
    };
    Demo {
        records,
        alice,
        domain,
    }
}

fn discovery(server: SocketAddr) -> DnsDiscovery {
    DnsDiscovery::new(DnsConfig {
        name_servers: vec![server],
        timeout: Duration::from_secs(2),
        attempts: 1,
        authoritative_fallback: false,
        ..DnsConfig::default()
    })
    .unwrap()
}

fn ders(result: SourceResult) -> Vec<Vec<u8>> {
    match result {
        SourceResult::Found(certs) => certs.into_iter().map(|c| c.der).collect(),
        other => panic!("expected certificates, got {other:?}"),
    }
}

async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("run dig (is bind9-dnsutils installed?)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn exported_zone_lines_load_in_bind_unchanged_and_are_found() {
    let demo = demo();
    let lines = demo.records.zone_lines();
    assert!(!lines.contains("$ORIGIN"), "{lines}");
    assert!(
        lines.contains("alice.direct.test. 300 IN CERT PKIX 0 0 ("),
        "{lines}"
    );
    assert!(
        lines.contains("direct.test. 300 IN MX 10 mail.direct.test."),
        "{lines}"
    );

    // named-checkzone accepts the zone made of the exported lines.
    let zone = Zone::new("direct.test", lines);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("direct.test.zone");
    std::fs::write(&file, named::zone_text(&zone)).unwrap();
    let check = std::process::Command::new("named-checkzone")
        .arg("direct.test")
        .arg(&file)
        .output()
        .expect("run named-checkzone");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && report.contains("OK"), "{report}");

    // A real named serves it; dig and DnsDiscovery find the certificates.
    let named = Named::start(&NamedConfig {
        zones: vec![zone],
        ..NamedConfig::default()
    });
    let answer = dig(named.addr(), &["+short", "alice.direct.test", "CERT"]).await;
    assert!(answer.starts_with("PKIX 0 0 "), "{answer}");
    let mx = dig(named.addr(), &["+short", "direct.test", "MX"]).await;
    assert_eq!(mx.trim(), "10 mail.direct.test.");

    let dns = discovery(named.addr());
    assert_eq!(
        ders(dns.lookup("alice.direct.test").await),
        vec![demo.alice]
    );
    assert_eq!(ders(dns.lookup("direct.test").await), vec![demo.domain]);
}

#[tokio::test]
async fn responder_answers_cert_queries_for_local_records() {
    let demo = demo();
    let responder = Responder::start("127.0.0.1:0".parse().unwrap(), &demo.records)
        .await
        .unwrap();
    let dns = discovery(responder.local_addr());
    assert_eq!(
        ders(dns.lookup("alice.direct.test").await),
        vec![demo.alice]
    );
    assert_eq!(ders(dns.lookup("direct.test").await), vec![demo.domain]);
    assert_eq!(
        dns.lookup("nobody.direct.test").await,
        SourceResult::NotFound
    );
    responder.shutdown().await.unwrap();
}

#[tokio::test]
async fn responder_answers_a_and_mx_nxdomain_inside_refused_outside() {
    let demo = demo();
    let responder = Responder::start("127.0.0.1:0".parse().unwrap(), &demo.records)
        .await
        .unwrap();
    let addr = responder.local_addr();
    assert_eq!(
        dig(addr, &["+short", "mail.direct.test", "A"]).await.trim(),
        "127.0.0.1"
    );
    assert_eq!(
        dig(addr, &["+short", "direct.test", "MX"]).await.trim(),
        "10 mail.direct.test."
    );
    let inside = dig(addr, &["nobody.direct.test", "CERT"]).await;
    assert!(inside.contains("status: NXDOMAIN"), "{inside}");
    let outside = dig(addr, &["alice.example.com", "CERT"]).await;
    assert!(outside.contains("status: REFUSED"), "{outside}");

    let dns = discovery(addr);
    match dns.lookup("alice.example.com").await {
        SourceResult::Temporary(reason) => assert!(reason.contains("REFUSED"), "{reason}"),
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

#[tokio::test]
async fn responder_truncates_large_udp_answer_and_serves_it_over_tcp_applicability_statement_5_4() {
    let ca = CertificateAuthority::create("Responder Test CA", &CaOptions::default()).unwrap();
    let certs: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            issue(
                &ca,
                &Binding::Address("bob@direct.test".into()),
                &IssueOptions::default(),
            )
            .unwrap()
            .cert
            .to_der()
            .unwrap()
        })
        .collect();
    let records = LocalRecords {
        zones: vec!["direct.test".into()],
        certs: certs
            .iter()
            .map(|d| ("bob.direct.test".to_string(), d.clone()))
            .collect(),
        ..LocalRecords::default()
    };
    let responder = Responder::start("127.0.0.1:0".parse().unwrap(), &records)
        .await
        .unwrap();
    let addr = responder.local_addr();

    // Over UDP without EDNS (512 octets) the answer is truncated...
    let udp = dig(
        addr,
        &["+notcp", "+noedns", "+ignore", "bob.direct.test", "CERT"],
    )
    .await;
    assert!(udp.contains(" tc"), "expected the TC flag: {udp}");
    // ...and over TCP it is whole.
    let tcp = dig(addr, &["+tcp", "+short", "bob.direct.test", "CERT"]).await;
    assert_eq!(tcp.matches("PKIX 0 0").count(), 3, "{tcp}");

    // Three certificates do not fit even a 1232-octet EDNS answer: hisp can
    // only have them all by retrying over TCP.
    assert!(certs.iter().map(Vec::len).sum::<usize>() > 1232);
    let mut got = ders(discovery(addr).lookup("bob.direct.test").await);
    let mut want = certs;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn record_outside_the_served_zones_is_refused_at_start() {
    let records = LocalRecords {
        zones: vec!["direct.test".into()],
        certs: vec![("alice.elsewhere.test".into(), vec![0x30, 0x00])],
        ..LocalRecords::default()
    };
    let err = Responder::start("127.0.0.1:0".parse().unwrap(), &records)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "'alice.elsewhere.test.' is not inside any served zone (direct.test)"
    );
}
