//! DNS CERT discovery against a real BIND 9, modelled on the DNS cases of
//! the Direct Certificate Discovery Tool.

#[path = "common/named.rs"]
mod named;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_discovery::dns::{owner_name, Clock};
use hisp_discovery::{DnsConfig, DnsDiscovery, FoundCert, Query, Source, SourceResult};
use named::{free_port, ipkix_line, pkix_line, Named, NamedConfig, Zone};

fn ca() -> CertificateAuthority {
    CertificateAuthority::create("DNS Test CA", &CaOptions::default()).unwrap()
}

fn cert_der(ca: &CertificateAuthority, binding: Binding) -> Vec<u8> {
    issue(ca, &binding, &IssueOptions::default())
        .unwrap()
        .cert
        .to_der()
        .unwrap()
}

fn config(server: SocketAddr) -> DnsConfig {
    DnsConfig {
        name_servers: vec![server],
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..DnsConfig::default()
    }
}

fn start_zone(records: String) -> Named {
    Named::start(&NamedConfig {
        zones: vec![Zone::new("direct.test", records)],
        ..NamedConfig::default()
    })
}

fn found(result: SourceResult) -> Vec<FoundCert> {
    match result {
        SourceResult::Found(certs) => certs,
        other => panic!("expected certificates, got {other:?}"),
    }
}

#[tokio::test]
async fn address_bound_cert_found_in_dns_certificate_discovery_3() {
    let ca = ca();
    let der = cert_der(&ca, Binding::Address("alice@direct.test".into()));
    let named = start_zone(pkix_line("alice.direct.test", 300, &der));
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();

    let owner = owner_name("alice@direct.test", Query::Address).unwrap();
    let certs = found(dns.lookup(&owner).await);
    assert_eq!(
        certs,
        vec![FoundCert {
            source: Source::Dns,
            owner: "alice.direct.test".into(),
            der,
            ttl: 300,
        }]
    );
}

#[tokio::test]
async fn domain_bound_cert_found_in_dns_certificate_discovery_3() {
    let ca = ca();
    let der = cert_der(&ca, Binding::Domain("direct.test".into()));
    let named = start_zone(pkix_line("direct.test", 600, &der));
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();

    let owner = owner_name("bob@direct.test", Query::Domain).unwrap();
    assert_eq!(owner, "direct.test");
    let certs = found(dns.lookup(&owner).await);
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].der, der);
    assert_eq!(certs[0].owner, "direct.test");
    // The address-bound name has nothing: the domain-bound lookup is separate.
    assert_eq!(dns.lookup("bob.direct.test").await, SourceResult::NotFound);
}

#[tokio::test]
async fn several_certs_at_one_name_are_all_returned() {
    let ca = ca();
    let ders: Vec<Vec<u8>> = (0..3)
        .map(|_| cert_der(&ca, Binding::Address("carol@direct.test".into())))
        .collect();
    let records: String = ders
        .iter()
        .map(|d| pkix_line("carol.direct.test", 300, d))
        .collect();
    let named = start_zone(records);
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();

    let mut got: Vec<Vec<u8>> = found(dns.lookup("carol.direct.test").await)
        .into_iter()
        .map(|c| c.der)
        .collect();
    let mut want = ders;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn name_with_nothing_is_not_found_nxdomain() {
    let named = start_zone(String::new());
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();
    assert_eq!(
        dns.lookup("nobody.direct.test").await,
        SourceResult::NotFound
    );
}

#[tokio::test]
async fn name_without_cert_records_is_not_found_nodata() {
    let named = start_zone("dave.direct.test. 300 IN A 127.0.0.9\n".into());
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();
    assert_eq!(dns.lookup("dave.direct.test").await, SourceResult::NotFound);
}

#[tokio::test]
async fn large_cert_answer_comes_over_tcp_applicability_statement_5_4() {
    let ca = ca();
    let der = cert_der(&ca, Binding::Address("erin@direct.test".into()));
    assert!(
        der.len() > 512,
        "the certificate must not fit a 512-octet answer"
    );
    // A server that sends at most 512 octets over UDP, as a server without
    // EDNS would: the answer must come truncated over UDP, then over TCP.
    let named = Named::start(&NamedConfig {
        zones: vec![Zone::new(
            "direct.test",
            pkix_line("erin.direct.test", 300, &der),
        )],
        options: "max-udp-size 512;".into(),
        ..NamedConfig::default()
    });
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();

    let certs = found(dns.lookup("erin.direct.test").await);
    assert_eq!(certs[0].der, der);

    // named's query log marks TCP queries with the flag 'T'.
    let log = named.log();
    let flags: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("query: erin.direct.test IN CERT ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(
        flags.iter().any(|f| !f.contains('T')),
        "first asked over UDP: {flags:?}\n{log}"
    );
    assert!(
        flags.iter().any(|f| f.contains('T')),
        "then over TCP: {flags:?}\n{log}"
    );
}

#[tokio::test]
async fn dns_server_down_is_temporary_not_not_found() {
    let port = free_port();
    let dns = DnsDiscovery::new(DnsConfig {
        timeout: Duration::from_millis(500),
        ..config(SocketAddr::from(([127, 0, 0, 1], port)))
    })
    .unwrap();
    let started = Instant::now();
    match dns.lookup("alice.direct.test").await {
        SourceResult::Temporary(reason) => {
            assert!(reason.contains("alice.direct.test"), "{reason}")
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn servfail_is_temporary_not_not_found() {
    // A secondary zone whose primary never answers is never loaded: named
    // answers SERVFAIL for every name in it.
    let dead = free_port();
    let named = Named::start(&NamedConfig {
        extra: format!(
            "zone \"broken.test\" {{ type secondary; primaries {{ 127.0.0.1 port {dead}; }}; file \"broken.zone\"; }};"
        ),
        ..NamedConfig::default()
    });
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();
    match dns.lookup("alice.broken.test").await {
        SourceResult::Temporary(reason) => assert!(reason.contains("SERVFAIL"), "{reason}"),
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

/// A loopback HTTP server answering every GET with `body`; stopped on drop.
struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start(body: Vec<u8>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        HttpServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn ipkix_record_cert_is_fetched_from_its_url_rfc_4398_2_1() {
    let ca = ca();
    let der = cert_der(&ca, Binding::Address("frank@direct.test".into()));
    let http = HttpServer::start(der.clone());
    let url = format!("http://{}/frank.cer", http.addr);
    let named = start_zone(ipkix_line("frank.direct.test", 300, &url));
    let dns = DnsDiscovery::new(config(named.addr())).unwrap();

    let certs = found(dns.lookup("frank.direct.test").await);
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].der, der);
    assert_eq!(certs[0].owner, "frank.direct.test");
}

#[tokio::test]
async fn ipkix_url_that_cannot_be_fetched_is_temporary() {
    let url = format!("http://127.0.0.1:{}/gone.cer", free_port());
    let named = start_zone(ipkix_line("gina.direct.test", 300, &url));
    let dns = DnsDiscovery::new(DnsConfig {
        fetch_timeout: Duration::from_secs(2),
        ..config(named.addr())
    })
    .unwrap();
    match dns.lookup("gina.direct.test").await {
        SourceResult::Temporary(reason) => assert!(reason.contains(&url), "{reason}"),
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl_and_negatives_briefly() {
    let ca = ca();
    let der = cert_der(&ca, Binding::Address("hank@direct.test".into()));
    let named = start_zone(pkix_line("hank.direct.test", 120, &der));
    let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
    let dns = DnsDiscovery::with_clock(
        DnsConfig {
            negative_ttl: Duration::from_secs(30),
            timeout: Duration::from_millis(500),
            ..config(named.addr())
        },
        clock.clone(),
    )
    .unwrap();

    assert_eq!(found(dns.lookup("hank.direct.test").await)[0].ttl, 120);
    assert_eq!(
        dns.lookup("nobody.direct.test").await,
        SourceResult::NotFound
    );

    // With the server gone, only the cache can answer.
    drop(named);
    clock.advance(Duration::from_secs(29));
    let cached = found(dns.lookup("hank.direct.test").await);
    assert_eq!(cached[0].der, der);
    assert_eq!(cached[0].ttl, 120 - 29, "the TTL counts down in the cache");
    assert_eq!(
        dns.lookup("nobody.direct.test").await,
        SourceResult::NotFound
    );

    // The negative answer expires after 30 s, the positive one after 120 s.
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        dns.lookup("nobody.direct.test").await,
        SourceResult::Temporary(_)
    ));
    assert!(matches!(
        dns.lookup("hank.direct.test").await,
        SourceResult::Found(_)
    ));
    clock.advance(Duration::from_secs(90));
    assert!(matches!(
        dns.lookup("hank.direct.test").await,
        SourceResult::Temporary(_)
    ));
    // A temporary failure is not remembered: still temporary, asked again.
    assert!(matches!(
        dns.lookup("hank.direct.test").await,
        SourceResult::Temporary(_)
    ));
}
