//! A real OpenLDAP `slapd` for tests: its own configuration and database in a
//! temporary directory, listening on a free loopback port, killed on drop.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCHEMAS: [&str; 3] = [
    "/etc/ldap/schema/core.schema",
    "/etc/ldap/schema/cosine.schema",
    "/etc/ldap/schema/inetorgperson.schema",
];

/// One entry to load: `cn=CN` below the suffix, with `mail` and certificate values.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The entry's `cn` (its RDN below the suffix).
    pub cn: String,
    /// Its `mail` value: an address, or a domain for a domain-bound entry.
    pub mail: String,
    /// DER certificates for `userCertificate;binary`.
    pub user_certificates: Vec<Vec<u8>>,
    /// DER PKCS#7 blobs for `userSMIMECertificate`.
    pub smime_certificates: Vec<Vec<u8>>,
}

impl Entry {
    /// An entry with DER certificates in `userCertificate;binary`.
    pub fn with_certs(cn: &str, mail: &str, certs: Vec<Vec<u8>>) -> Entry {
        Entry {
            cn: cn.to_string(),
            mail: mail.to_string(),
            user_certificates: certs,
            smime_certificates: Vec::new(),
        }
    }
}

/// A running slapd serving one suffix.
pub struct Slapd {
    child: Child,
    port: u16,
    suffix: String,
    dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts slapd serving `suffix` (`dc=X,dc=Y`) with its root entry and
    /// `entries`, and waits until it accepts connections.
    pub fn start(suffix: &str, entries: &[Entry]) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db dir");
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path(), suffix)).expect("slapd.conf");
        let ldif = dir.path().join("data.ldif");
        std::fs::write(&ldif, data_ldif(suffix, entries)).expect("data.ldif");

        let out = Command::new("slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .expect("run slapadd (apt-get install slapd)");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_tcp_port();
        let log = std::fs::File::create(dir.path().join("slapd.log")).expect("log");
        let child = Command::new("slapd")
            .arg("-d")
            .arg("0")
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slapd");
        let mut slapd = Slapd {
            child,
            port,
            suffix: suffix.to_string(),
            dir,
        };
        slapd.wait_ready();
        slapd
    }

    /// The TCP port slapd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The DN of the entry `cn=CN` below the suffix.
    pub fn dn(&self, cn: &str) -> String {
        format!("cn={cn},{}", self.suffix)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("slapd status") {
                let log =
                    std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
                panic!("slapd exited with {status}: {log}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("slapd did not listen on {addr} within 15 s");
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback TCP port nobody listens on: connections to it are refused.
pub fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

fn config(dir: &Path, suffix: &str) -> String {
    let mut conf = String::new();
    for schema in SCHEMAS {
        writeln!(conf, "include {schema}").expect("write");
    }
    let dir = dir.display();
    write!(
        conf,
        "pidfile {dir}/slapd.pid\n\
         argsfile {dir}/slapd.args\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         database mdb\n\
         suffix \"{suffix}\"\n\
         rootdn \"cn=admin,{suffix}\"\n\
         directory {dir}/db\n\
         maxsize 10485760\n\
         access to * by * read\n"
    )
    .expect("write");
    conf
}

fn data_ldif(suffix: &str, entries: &[Entry]) -> String {
    let first = suffix
        .split(',')
        .next()
        .and_then(|rdn| rdn.strip_prefix("dc="))
        .expect("suffix starts with dc=");
    let mut ldif = format!(
        "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\no: {first}\ndc: {first}\n"
    );
    for entry in entries {
        write!(
            ldif,
            "\ndn: cn={cn},{suffix}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\nmail: {mail}\n",
            cn = entry.cn,
            mail = entry.mail
        )
        .expect("write");
        for der in &entry.user_certificates {
            writeln!(ldif, "userCertificate;binary:: {}", b64(der)).expect("write");
        }
        for der in &entry.smime_certificates {
            writeln!(ldif, "userSMIMECertificate:: {}", b64(der)).expect("write");
        }
    }
    ldif
}

fn b64(der: &[u8]) -> String {
    openssl::base64::encode_block(der)
}
