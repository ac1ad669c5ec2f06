//! What every case of the discovery matrix does: publish a zone in a real
//! `named`, build a [`Discoverer`] asking it, discover an address trusting
//! the matrix root only, and check the verdict. The test binary declares the
//! modules `named` and `matrix_pki` beside this one.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hisp_discovery::{
    Discoverer, Discovery, DnsConfig, DnsDiscovery, LdapDiscovery, LdapSettings, Query, Source,
    TrustContext,
};
use hisp_trust::{cert_id, HttpFetcher, Remote, RevocationMode};
use openssl::x509::X509;

use crate::matrix_pki::{now, pki};
use crate::named::{self, pkix_line, Named, NamedConfig};

pub const DOMAIN: &str = "direct.test";
pub const ALICE: &str = "alice@direct.test";
/// The DNS owner name of ALICE's address-bound CERT records.
pub const ALICE_OWNER: &str = "alice.direct.test";
pub const SUFFIX: &str = "dc=direct,dc=test";

/// The zone `direct.test` a test publishes: CERT and SRV records.
#[derive(Default)]
pub struct Zone {
    records: String,
}

impl Zone {
    /// A CERT PKIX record for `cert` at `owner`.
    pub fn cert(mut self, owner: &str, cert: &X509) -> Zone {
        self.records.push_str(&pkix_line(owner, 300, &der(cert)));
        self
    }

    /// An `_ldap._tcp` SRV record pointing at `host.direct.test` (A
    /// 127.0.0.1), port `port`.
    pub fn srv(mut self, priority: u16, weight: u16, port: u16, host: &str) -> Zone {
        writeln!(
            self.records,
            "_ldap._tcp.{DOMAIN}. 300 IN SRV {priority} {weight} {port} {host}.{DOMAIN}.\n\
             {host}.{DOMAIN}. 300 IN A 127.0.0.1"
        )
        .expect("write to a String");
        self
    }

    /// Starts named serving the zone.
    pub fn start(self) -> Named {
        self.start_with_options("")
    }

    /// Starts named with `options` added to its `options { }`.
    pub fn start_with_options(self, options: &str) -> Named {
        Named::start(&NamedConfig {
            zones: vec![named::Zone::new(DOMAIN, self.records)],
            options: options.to_string(),
            ..NamedConfig::default()
        })
    }
}

pub fn der(cert: &X509) -> Vec<u8> {
    cert.to_der().expect("DER")
}

/// Both sources asking the name server at `dns` (CERT, SRV and A records);
/// the authoritative fallback asks it too (ns1.direct.test is 127.0.0.1).
pub fn discoverer(dns: SocketAddr) -> Discoverer {
    discoverer_with_timeout(dns, Duration::from_secs(2))
}

/// Like [`discoverer`], waiting `timeout` for each DNS answer.
pub fn discoverer_with_timeout(dns: SocketAddr, timeout: Duration) -> Discoverer {
    let dns_source = DnsDiscovery::new(DnsConfig {
        name_servers: vec![dns],
        timeout,
        attempts: 1,
        authoritative_port: dns.port(),
        ..DnsConfig::default()
    })
    .expect("DNS discovery");
    let ldap_source = LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec![dns]),
        dns_timeout: Duration::from_secs(2),
        dns_attempts: 1,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(5),
        server_timeout: Duration::from_secs(10),
    })
    .expect("LDAP discovery");
    Discoverer::new(dns_source, ldap_source)
}

/// Network access for CRLs and caIssuers, with empty caches.
pub fn remote() -> Remote {
    Remote::new(Arc::new(HttpFetcher::new(Duration::from_secs(5), 1 << 20)))
}

/// Discovers `address` through `discoverer`, trusting the matrix root only.
pub async fn run(discoverer: &Discoverer, address: &str, remote: &Remote) -> Discovery {
    let anchors = hisp_trust::Anchors::new(pki().anchors()).unwrap();
    discoverer
        .discover(
            address,
            &TrustContext {
                anchors: &anchors,
                intermediates: &[],
                at: now(),
                revocation: RevocationMode::HardFail,
                remote,
            },
        )
        .await
}

/// Discovers `address` with a fresh discoverer asking `dns`.
pub async fn discover(dns: &Named, address: &str) -> Discovery {
    run(&discoverer(dns.addr()), address, &remote()).await
}

/// The discovery found certificates in `source`'s `query` lookup only, and
/// uses exactly `expected`, each judged usable with a reason naming it.
pub fn assert_uses(d: &Discovery, expected: &[&X509], source: Source, query: Query) {
    assert!(d.usable && !d.temporary, "{d:#?}");
    for judged in &d.certificates {
        assert_eq!(
            (judged.found.source, judged.query),
            (source, query),
            "{d:#?}"
        );
    }
    let mut used: Vec<Vec<u8>> = d.usable_certs().iter().map(der).collect();
    let mut wanted: Vec<Vec<u8>> = expected.iter().map(|c| der(c)).collect();
    used.sort();
    wanted.sort();
    assert_eq!(used, wanted, "{d:#?}");
    for cert in expected {
        let judged = d
            .certificates
            .iter()
            .find(|j| j.cert.as_ref() == Some(*cert))
            .expect("the expected certificate was judged");
        assert!(
            judged
                .reason
                .starts_with(&format!("{} is usable for encryption", cert_id(cert))),
            "{}",
            judged.reason
        );
    }
}

/// Not usable, and not temporary: a definite refusal.
pub fn assert_refused(d: &Discovery) {
    assert!(!d.usable && !d.temporary, "{d:#?}");
    assert!(d.usable_certs().is_empty(), "{d:#?}");
}

/// The reason names `cert` (subject and serial) and the `check` it failed.
pub fn assert_names(reason: &str, cert: &X509, check: &str) {
    let id = cert_id(cert);
    assert!(
        reason.contains(&id),
        "the reason does not name {id}: {reason}"
    );
    assert!(
        reason.contains(check),
        "the reason does not say '{check}': {reason}"
    );
}

/// The reason for "nothing found in any of the four lookups".
pub fn nothing_anywhere() -> String {
    format!(
        "no certificate for {ALICE} in dns address-bound, dns domain-bound, \
         ldap address-bound, ldap domain-bound (not a Direct address)"
    )
}
