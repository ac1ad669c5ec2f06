//! Shared test support: a test policy, a test certificate and a server on 127.0.0.1:0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hisp_smtp::{
    Account, Envelope, Policy, Reply, Role, Server, ServerConfig, Session, Shutdown, ShutdownReport,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Name, X509};
use tokio::task::JoinHandle;

/// A message the policy committed.
#[derive(Debug, Clone)]
pub struct Stored {
    pub envelope: Envelope,
    pub message: Vec<u8>,
    pub account: Option<String>,
    pub tls: bool,
}

/// The test policy: user `alice` / `secret` owns `@a.example`; `a.example` and
/// `b.example` are Direct domains, `a.example` is local; `nodirect.example` has no
/// certificate; `dnsdown.example` fails temporarily.
#[derive(Default)]
pub struct TestPolicy {
    pub stored: Mutex<Vec<Stored>>,
    /// Delay inside `data()`, to test that shutdown waits for a transaction.
    pub data_delay: Option<Duration>,
    /// Signalled when `data()` is entered.
    pub data_entered: tokio::sync::Notify,
}

fn domain(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, d)| d)
}

#[async_trait]
impl Policy for TestPolicy {
    async fn authenticate(
        &self,
        _s: &Session,
        user: &str,
        password: &str,
    ) -> Result<Account, Reply> {
        if user == "alice" && password == "secret" {
            Ok(Account::new("alice"))
        } else {
            Err(Reply::auth_failed())
        }
    }

    async fn mail_from(&self, s: &Session, from: &str) -> Result<(), Reply> {
        if s.role == Role::Submission && domain(from) != "a.example" {
            return Err(Reply::sender_not_owned(from));
        }
        Ok(())
    }

    async fn rcpt_to(&self, s: &Session, _e: &Envelope, to: &str) -> Result<(), Reply> {
        match (s.role, domain(to)) {
            (Role::Backbone, "a.example") => Ok(()),
            (_, "dnsdown.example") => Err(Reply::temporary_discovery(to, "DNS server unreachable")),
            (Role::Backbone, _) => Err(Reply::relay_denied(to)),
            (_, "a.example" | "b.example") => Ok(()),
            _ => Err(Reply::not_direct(to, "no certificate found in DNS or LDAP")),
        }
    }

    async fn data(&self, s: &Session, e: &Envelope, message: Vec<u8>) -> Reply {
        self.data_entered.notify_one();
        if let Some(d) = self.data_delay {
            tokio::time::sleep(d).await;
        }
        self.stored.lock().unwrap().push(Stored {
            envelope: e.clone(),
            message,
            account: s.account.as_ref().map(|a| a.name.clone()),
            tls: s.tls,
        });
        Reply::ok_queued(&e.id)
    }
}

/// A self-signed P-256 certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
pub fn test_cert() -> (Vec<u8>, Vec<u8>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    (
        cert.to_pem().unwrap(),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
}

/// A running test server.
pub struct Running {
    pub addr: SocketAddr,
    pub policy: Arc<TestPolicy>,
    pub shutdown: Shutdown,
    pub task: JoinHandle<ShutdownReport>,
}

impl Running {
    pub async fn stop(self) -> ShutdownReport {
        self.shutdown.trigger();
        self.task.await.unwrap()
    }
}

/// Starts a server with `config` and the policy on 127.0.0.1:0.
pub async fn start(config: ServerConfig, policy: TestPolicy) -> Running {
    let policy = Arc::new(policy);
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config, policy.clone())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(server.serve(shutdown.clone(), Duration::from_secs(5)));
    Running {
        addr,
        policy,
        shutdown,
        task,
    }
}

/// A server config for `role` with TLS from a fresh test certificate; returns the
/// certificate PEM too (the client's root).
pub fn config_with_tls(role: Role) -> (ServerConfig, Vec<u8>) {
    let (cert, key) = test_cert();
    let mut config = ServerConfig::new(role, "mx.test.example");
    config.tls = Some(hisp_smtp::tls::server_config_from_pem(&cert, &key).unwrap());
    (config, cert)
}

/// Expands `{x*N}` in a dialogue line to N times `x` (the `C:` lines of `tests/dialogues/`).
pub fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 1..start + end];
        match inner.split_once('*') {
            Some((s, n)) if n.parse::<usize>().is_ok() => {
                out.push_str(&rest[..start]);
                out.push_str(&s.repeat(n.parse().unwrap()));
            }
            _ => out.push_str(&rest[..start + end + 1]),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}
