//! Two in-process HISPs on loopback: A (`a.example`, patient portal side)
//! and B (`b.example`, provider side), each with its own SQLite store, CA,
//! address certificate and submission account, both listeners on port 0, and
//! one built-in DNS CERT responder serving both domains (and `plain.example`,
//! an ordinary e-mail domain with an MX record and no certificate).

#![allow(dead_code)]

pub mod smtp;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions, Issued};
use hisp_discovery::{
    Discoverer, DnsConfig, DnsDiscovery, LdapDiscovery, LdapSettings, LocalRecords, Responder,
};
use hisp_gateway::{GatewayContext, GatewayPolicy, Routes, TrustSettings, Worker, WorkerSettings};
use hisp_smtp::{Role, Server, ServerConfig, Shutdown, ShutdownReport};
use hisp_store::{
    DirectAddress, Direction, Domain, Grant, NewAnchor, NewCertificate, SqliteStore, Store,
    UserName,
};
use tokio::task::JoinHandle;

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

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
    shutdown: Shutdown,
    servers: Vec<JoinHandle<ShutdownReport>>,
    _dir: tempfile::TempDir,
}

/// Both HISPs and the DNS responder.
pub struct World {
    pub a: Hisp,
    pub b: Hisp,
    pub responder: Option<Responder>,
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

fn discoverer(dns: SocketAddr) -> Arc<Discoverer> {
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

impl Hisp {
    /// A HISP for `local@domain` whose certificates come from `ca`, trusting
    /// `peer_ca` both ways.
    async fn start(
        local: &str,
        domain: &str,
        ca: CertificateAuthority,
        issued: Issued,
        peer_ca: &CertificateAuthority,
        dns: SocketAddr,
    ) -> Hisp {
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

        let ctx = GatewayContext::new(store.clone(), discoverer(dns), TrustSettings::new());
        let policy = Arc::new(GatewayPolicy::new(ctx.clone()));
        let shutdown = Shutdown::new();
        let mut servers = Vec::new();
        let mut addrs = Vec::new();
        for role in [Role::Submission, Role::Backbone] {
            let server = Server::bind(
                (Ipv4Addr::LOCALHOST, 0).into(),
                ServerConfig::new(role, format!("hisp.{domain}")),
                policy.clone(),
            )
            .await
            .expect("bind");
            addrs.push(server.local_addr().unwrap());
            servers.push(tokio::spawn(
                server.serve(shutdown.clone(), Duration::from_secs(5)),
            ));
        }
        Hisp {
            domain: domain.into(),
            address,
            user,
            ca,
            issued,
            store,
            ctx,
            submission: addrs[0],
            backbone: addrs[1],
            shutdown,
            servers,
            _dir: dir,
        }
    }

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

    /// Stops both listeners.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for s in self.servers {
            let _ = s.await;
        }
    }
}

impl World {
    /// Starts the responder and both HISPs.
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
        let dns = responder.local_addr();
        let a = Hisp::start("alice", "a.example", ca_a, alice, &ca_b, dns).await;
        let b = Hisp::start("bob", "b.example", ca_b, bob, &a.ca, dns).await;
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
