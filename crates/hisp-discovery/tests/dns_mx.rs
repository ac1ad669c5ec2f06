//! Mail exchanger lookup (RFC 5321 §5.1, RFC 7505) against a real BIND 9.

#[path = "common/named.rs"]
mod named;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hisp_discovery::{DnsConfig, MxError, MxResolver};
use named::{free_port, Named, NamedConfig, Zone};

fn resolver(server: SocketAddr) -> MxResolver {
    MxResolver::new(&DnsConfig {
        name_servers: vec![server],
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..DnsConfig::default()
    })
    .unwrap()
}

fn zone() -> Named {
    Named::start(&NamedConfig {
        zones: vec![Zone::new(
            "mx.test",
            "two.mx.test. IN MX 20 backup.mx.test.\n\
             two.mx.test. IN MX 10 primary.mx.test.\n\
             primary.mx.test. IN A 127.0.0.2\n\
             backup.mx.test. IN A 127.0.0.3\n\
             backup.mx.test. IN AAAA ::1\n\
             implicit.mx.test. IN A 127.0.0.4\n\
             null.mx.test. IN MX 0 .\n\
             dangling.mx.test. IN MX 10 nowhere.mx.test.\n\
             txtonly.mx.test. IN TXT \"no mail here\"\n",
        )],
        ..NamedConfig::default()
    })
}

#[tokio::test]
async fn exchangers_come_in_preference_order_with_their_addresses() {
    let named = zone();
    let mx = resolver(named.addr());
    let found = mx.exchangers("Two.MX.test.").await.unwrap();
    let hosts: Vec<&str> = found.iter().map(|x| x.host.as_str()).collect();
    assert_eq!(hosts, ["primary.mx.test", "backup.mx.test"]);
    assert_eq!(found[0].preference, 10);
    assert_eq!(found[1].addresses.len(), 2, "A and AAAA: {found:?}");
    let servers = mx.servers("two.mx.test", 2525).await.unwrap();
    assert_eq!(servers[0], "127.0.0.2:2525".parse::<SocketAddr>().unwrap());
    assert_eq!(servers.len(), 3);
}

#[tokio::test]
async fn a_domain_without_mx_is_its_own_exchanger() {
    let named = zone();
    let found = resolver(named.addr())
        .exchangers("implicit.mx.test")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].host, "implicit.mx.test");
    assert_eq!(
        found[0].addresses,
        vec!["127.0.0.4".parse::<IpAddr>().unwrap()]
    );
}

#[tokio::test]
async fn null_mx_nxdomain_and_no_address_are_permanent() {
    let named = zone();
    let mx = resolver(named.addr());
    for (domain, says) in [
        ("null.mx.test", "null MX"),
        ("absent.mx.test", "no mail exchanger"),
        ("dangling.mx.test", "no mail exchanger"),
        ("txtonly.mx.test", "no mail exchanger"),
    ] {
        match mx.exchangers(domain).await {
            Err(e @ MxError::Permanent(_)) => {
                assert!(e.to_string().contains(says), "{domain}: {e}");
                assert!(!e.is_temporary());
            }
            other => panic!("{domain}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_name_server_that_does_not_answer_is_temporary() {
    // Nothing listens on this port: no answer at all.
    let port = free_port();
    let mx = MxResolver::new(&DnsConfig {
        name_servers: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        timeout: Duration::from_millis(300),
        attempts: 1,
        ..DnsConfig::default()
    })
    .unwrap();
    match mx.exchangers("two.mx.test").await {
        Err(e) => assert!(e.is_temporary(), "{e}"),
        Ok(found) => panic!("found {found:?}"),
    }
}
