//! Two in-process HISPs on loopback: A (`a.example`, patient portal side)
//! and B (`b.example`, provider side), each with its own SQLite store, CA,
//! address certificate and submission account, each started with the
//! gateway's `ServerBuilder` (both listeners on port 0), and one built-in
//! DNS CERT responder serving both domains (and `plain.example`, an
//! ordinary e-mail domain with an MX record and no certificate). By default
//! the queue engines do not run: tests step the queues with
//! `Worker::run_once`; [`World::start_engines`] runs them.

#![allow(dead_code)]

pub mod smtp;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions, Issued};
use hisp_discovery::{
    Discoverer, DnsConfig, DnsDiscovery, LdapDiscovery, LdapSettings, LocalRecords, Responder,
};
use hisp_gateway::server::{BoundServer, RunningServer, ServerBuilder, ServerSettings, StopReport};
use hisp_gateway::{GatewayContext, Routes, Worker, WorkerSettings};
use hisp_store::{
    DirectAddress, Direction, Domain, Grant, NewAnchor, NewCertificate, SqliteStore, Store,
    UserName,
};

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// One HISP's store and identity, before it serves.
pub struct Site {
    pub domain: String,
    pub address: String,
    pub user: String,
    pub ca: CertificateAuthority,
    pub issued: Issued,
    pub store: Arc<SqliteStore>,
    dir: tempfile::TempDir,
}

/// One HISP: its store, listeners and identity.
pub struct Hisp {
    pub domain: String,
    pub address: String,
    pub user: String,
    pub ca: CertificateAuthority,
    pub issued: Issued,
    pub store: Arc<SqliteStore>,
    pub ctx: GatewayContext,
    pub submission: SocketAddr,
    pub backbone: SocketAddr,
    server: RunningServer,
    _dir: tempfile::TempDir,
}

/// Both HISPs and the DNS responder.
pub struct World {
    pub a: Hisp,
    pub b: Hisp,
    pub responder: Option<Responder>,
}

/// Both sites, set up, and the DNS responder serving them; nothing serves
/// SMTP yet.
pub struct Sites {
    pub a: Site,
    pub b: Site,
    pub responder: Responder,
}

fn ca(name: &str) -> CertificateAuthority {
    CertificateAuthority::create(name, &CaOptions::default()).expect("test CA")
}

/// An address certificate with its key, issued by `ca`.
pub fn leaf(ca: &CertificateAuthority, address: &str) -> Issued {
    issue(
        ca,
        &Binding::Address(address.into()),
        &IssueOptions::default(),
    )
    .expect("issue")
}

/// Discovery through the name server at `dns` only, with short timeouts.
pub fn discoverer(dns: SocketAddr) -> Arc<Discoverer> {
    let dns_discovery = DnsDiscovery::new(DnsConfig {
        name_servers: vec![dns],
        timeout: Duration::from_secs(1),
        attempts: 1,
        authoritative_fallback: false,
        ..DnsConfig::default()
    })
    .expect("dns discovery");
    let ldap = LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec![dns]),
        dns_timeout: Duration::from_secs(1),
        dns_attempts: 1,
        ..LdapSettings::default()
    })
    .expect("ldap discovery");
    Arc::new(Discoverer::new(dns_discovery, ldap))
}

impl Site {
    /// A site for `local@domain` whose certificates come from `ca`,
    /// trusting `peer_ca` both ways.
    fn new(
        local: &str,
        domain: &str,
        ca: CertificateAuthority,
        issued: Issued,
        peer_ca: &CertificateAuthority,
    ) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open_in(dir.path()).expect("store"));
        let d = Domain::parse(domain).unwrap();
        let address = format!("{local}@{domain}");
        let a = DirectAddress::parse(&address).unwrap();
        store.add_domain(&d, &[]).unwrap();
        let cert = NewCertificate::new(
            &issued.cert.to_der().unwrap(),
            Some(&issued.key.private_key_to_pem_pkcs8().unwrap()),
        )
        .unwrap();
        store.add_address(&a, &[cert]).unwrap();
        store
            .add_anchors(
                &d,
                Direction::Both,
                &[NewAnchor::from_der(&peer_ca.cert().to_der().unwrap()).unwrap()],
            )
            .unwrap();
        let user = format!("portal-{local}");
        let name = UserName::parse(&user).unwrap();
        store.add_user(&name, PASSWORD).unwrap();
        store.grant(&name, &Grant::Address(a)).unwrap();
        Site {
            domain: domain.into(),
            address,
            user,
            ca,
            issued,
            store,
            dir,
        }
    }

    /// The server settings of this site: `hisp.<domain>`, both listeners
    /// on a free loopback port, discovery through `dns`, the queue engine
    /// off, 5 s to drain at a stop.
    pub fn settings(&self, dns: SocketAddr) -> ServerSettings {
        let mut settings = ServerSettings::new(&format!("hisp.{}", self.domain), discoverer(dns));
        settings.queue_engine = false;
        settings.drain = Duration::from_secs(5);
        settings
    }

    /// A builder of this site's server on its store with `settings`.
    pub fn builder(&self, settings: ServerSettings) -> ServerBuilder {
        ServerBuilder::new(self.store.clone(), settings)
    }

    /// The HISP serving this site with `server`.
    pub fn serving(self, server: RunningServer) -> Hisp {
        let addresses = server.addresses();
        Hisp {
            domain: self.domain,
            address: self.address,
            user: self.user,
            ca: self.ca,
            issued: self.issued,
            store: self.store,
            ctx: server.context().clone(),
            submission: addresses.submission,
            backbone: addresses.backbone,
            server,
            _dir: self.dir,
        }
    }
}

impl Hisp {
    /// A worker routing `peer`'s domain to `peer`'s backbone listener.
    pub fn worker(&self, peer: &Hisp) -> Worker {
        self.worker_via(&peer.domain, peer.backbone)
    }

    /// A worker routing `domain` to the SMTP server at `server` (a tap, a
    /// sink, a peer).
    pub fn worker_via(&self, domain: &str, server: SocketAddr) -> Worker {
        let mut routes = Routes::new();
        routes.insert(domain, server);
        Worker::new(
            self.ctx.clone(),
            routes,
            WorkerSettings::new(&format!("hisp.{}", self.domain)),
        )
    }

    /// Stops the server in order (listeners, engine when it runs).
    pub async fn stop(self) -> StopReport {
        self.server.stop().await.expect("stops")
    }
}

impl Sites {
    /// Both sites and the responder serving their certificates; with
    /// `b_domain_cert` B also holds a domain-bound certificate (with its
    /// key) for b.example, published in DNS.
    pub async fn new(b_domain_cert: bool) -> Sites {
        let (ca_a, ca_b) = (ca("HISP A Test CA"), ca("HISP B Test CA"));
        let alice = leaf(&ca_a, "alice@a.example");
        let bob = leaf(&ca_b, "bob@b.example");
        let domain_cert = b_domain_cert.then(|| {
            issue(
                &ca_b,
                &Binding::Domain("b.example".into()),
                &IssueOptions::default(),
            )
            .expect("issue")
        });
        let mut records = LocalRecords {
            zones: vec![
                "a.example".into(),
                "b.example".into(),
                "plain.example".into(),
            ],
            certs: vec![
                ("alice.a.example".into(), alice.cert.to_der().unwrap()),
                ("bob.b.example".into(), bob.cert.to_der().unwrap()),
            ],
            a: vec![("mail.plain.example".into(), Ipv4Addr::LOCALHOST)],
            mx: vec![("plain.example".into(), 10, "mail.plain.example".into())],
            ttl: 60,
        };
        if let Some(issued) = &domain_cert {
            records
                .certs
                .push(("b.example".into(), issued.cert.to_der().unwrap()));
        }
        let responder = Responder::start((Ipv4Addr::LOCALHOST, 0).into(), &records)
            .await
            .expect("responder");
        let a = Site::new("alice", "a.example", ca_a, alice, &ca_b);
        let b = Site::new("bob", "b.example", ca_b, bob, &a.ca);
        if let Some(issued) = &domain_cert {
            let cert = NewCertificate::new(
                &issued.cert.to_der().unwrap(),
                Some(&issued.key.private_key_to_pem_pkcs8().unwrap()),
            )
            .unwrap();
            b.store
                .add_certificate(
                    &hisp_store::Owner::Domain(Domain::parse("b.example").unwrap()),
                    &cert,
                )
                .unwrap();
        }
        Sites { a, b, responder }
    }

    /// Where the responder answers.
    pub fn dns(&self) -> SocketAddr {
        self.responder.local_addr()
    }
}

impl World {
    /// Starts the responder and both HISPs, their queue engines off.
    pub async fn start() -> World {
        World::start_with(false).await
    }

    /// Like [`start`](Self::start), and B also holds a domain-bound
    /// certificate (with its key) for b.example, published in DNS: any local
    /// address of B is then a Direct address whose mail B decrypts with the
    /// domain key.
    pub async fn start_with_b_domain_cert() -> World {
        World::start_with(true).await
    }

    async fn start_with(b_domain_cert: bool) -> World {
        World::serve(Sites::new(b_domain_cert).await, |_, _| {}).await
    }

    /// Both HISPs with their queue engines running, each routing the
    /// other's domain to the other's backbone listener.
    pub async fn start_engines() -> World {
        World::serve(Sites::new(false).await, |a, b| {
            a.queue_engine = true;
            b.queue_engine = true;
        })
        .await
    }

    /// Serves both sites with their [`Site::settings`] as `configure`
    /// changes them (A's, B's). Once both are bound, each routes the
    /// other's domain to the other's backbone listener unless `configure`
    /// gave it a route already.
    pub async fn serve(
        sites: Sites,
        configure: impl FnOnce(&mut ServerSettings, &mut ServerSettings),
    ) -> World {
        let Sites { a, b, responder } = sites;
        let dns = responder.local_addr();
        let (mut a_settings, mut b_settings) = (a.settings(dns), b.settings(dns));
        configure(&mut a_settings, &mut b_settings);
        let mut a_bound = a.builder(a_settings).bind().await.expect("A binds");
        let mut b_bound = b.builder(b_settings).bind().await.expect("B binds");
        route_to(&mut a_bound, &b.domain, &b_bound);
        route_to(&mut b_bound, &a.domain, &a_bound);
        let a = a.serving(a_bound.start().await.expect("A starts"));
        let b = b.serving(b_bound.start().await.expect("B starts"));
        World {
            a,
            b,
            responder: Some(responder),
        }
    }

    /// Stops everything.
    pub async fn stop(mut self) {
        if let Some(r) = self.responder.take() {
            let _ = r.shutdown().await;
        }
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// Routes `domain` to `peer`'s backbone listener unless `server` has a
/// route for it already.
fn route_to(server: &mut BoundServer, domain: &str, peer: &BoundServer) {
    let routes = server.routes_mut();
    if routes.get(domain).is_none() {
        routes.insert(domain, peer.addresses().backbone);
    }
}
