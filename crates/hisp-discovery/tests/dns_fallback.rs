//! When the configured resolver refuses a CERT query, hisp asks the zone's
//! authoritative name servers directly (issue 4, after Certificate Discovery
//! for Direct). Two real BIND 9 servers: an authoritative one holding the
//! certificate, and a recursive "resolver" that forwards the zone to it but
//! REFUSES every query at the address-bound name (a zone with
//! `allow-query { none; }`), as a filtering resolver would.

#[path = "common/named.rs"]
mod named;

use std::time::Duration;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_discovery::{DnsConfig, DnsDiscovery, SourceResult};
use named::{pkix_line, Named, NamedConfig, Zone};

#[tokio::test]
async fn refused_cert_query_is_asked_of_the_authoritative_servers() {
    let ca = CertificateAuthority::create("Fallback Test CA", &CaOptions::default()).unwrap();
    let der = issue(
        &ca,
        &Binding::Address("alice@direct.test".into()),
        &IssueOptions::default(),
    )
    .unwrap()
    .cert
    .to_der()
    .unwrap();

    let authoritative = Named::start(&NamedConfig {
        zones: vec![Zone::new(
            "direct.test",
            pkix_line("alice.direct.test", 300, &der),
        )],
        ..NamedConfig::default()
    });
    let resolver = Named::start(&NamedConfig {
        recursion: true,
        extra: format!(
            "zone \"direct.test\" {{ type forward; forward only; forwarders {{ 127.0.0.1 port {}; }}; }};",
            authoritative.addr().port()
        ),
        refused_zones: vec![Zone::new("alice.direct.test", "")],
        ..NamedConfig::default()
    });
    let config = DnsConfig {
        name_servers: vec![resolver.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
        // The authoritative servers of direct.test are ns1.direct.test
        // (127.0.0.1), on the test server's port instead of 53.
        authoritative_port: authoritative.addr().port(),
        ..DnsConfig::default()
    };

    // The resolver really refuses: without the fallback the lookup fails.
    let without = DnsDiscovery::new(DnsConfig {
        authoritative_fallback: false,
        ..config.clone()
    })
    .unwrap();
    match without.lookup("alice.direct.test").await {
        SourceResult::Temporary(reason) => assert!(reason.contains("REFUSED"), "{reason}"),
        other => panic!("expected REFUSED from the resolver, got {other:?}"),
    }

    // With it, the certificate comes from the authoritative server...
    let with = DnsDiscovery::new(config).unwrap();
    match with.lookup("alice.direct.test").await {
        SourceResult::Found(certs) => {
            assert_eq!(certs.len(), 1);
            assert_eq!(certs[0].der, der);
        }
        other => panic!("expected the certificate, got {other:?}"),
    }
    // ...asked directly, without recursion desired ('-' in named's log).
    let log = authoritative.log();
    assert!(
        log.lines()
            .any(|l| l.contains("query: alice.direct.test IN CERT -")),
        "{log}"
    );
}

#[tokio::test]
async fn resolver_refusing_everything_stays_temporary() {
    let resolver = Named::start(&NamedConfig {
        options: "allow-query { none; };".into(),
        ..NamedConfig::default()
    });
    let dns = DnsDiscovery::new(DnsConfig {
        name_servers: vec![resolver.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..DnsConfig::default()
    })
    .unwrap();
    // hisp does not iterate from the root: with no resolver answering at
    // all, the zone's servers cannot be found and the failure is temporary.
    match dns.lookup("alice.direct.test").await {
        SourceResult::Temporary(reason) => {
            assert!(reason.contains("REFUSED"), "{reason}");
            assert!(
                reason.contains("name servers could not be found"),
                "{reason}"
            );
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}
