//! A real BIND `named` serving one zone for SRV tests: its own configuration
//! in a temporary directory, a free loopback port (UDP and TCP), killed on drop.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running named, authoritative for one zone, with recursion off.
pub struct SrvDns {
    child: Child,
    addr: SocketAddr,
    zone: String,
    dir: tempfile::TempDir,
}

/// An `_ldap._tcp` SRV record to publish.
#[derive(Debug, Clone)]
pub struct Srv {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight within the priority.
    pub weight: u16,
    /// Port of the LDAP server.
    pub port: u16,
    /// Target host label inside the zone (given an A record 127.0.0.1), or
    /// "." for "no service".
    pub host: String,
}

impl Srv {
    /// A record pointing at `host.ZONE` (A 127.0.0.1) port `port`.
    pub fn new(priority: u16, weight: u16, port: u16, host: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            host: host.to_string(),
        }
    }
}

impl SrvDns {
    /// Starts named serving `zone` with `_ldap._tcp.ZONE` SRV records for
    /// `records` and waits until it answers the zone's SOA.
    pub fn start(zone: &str, records: &[Srv]) -> SrvDns {
        SrvDns::start_inner(zone, records, None)
    }

    /// Like [`SrvDns::start`], and also declares `broken` as a zone whose
    /// file does not load, so named answers SERVFAIL for every name in it.
    pub fn start_with_broken_zone(zone: &str, records: &[Srv], broken: &str) -> SrvDns {
        SrvDns::start_inner(zone, records, Some(broken))
    }

    fn start_inner(zone: &str, records: &[Srv], broken: Option<&str>) -> SrvDns {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        let zone_file = path.join("zone.db");
        std::fs::write(&zone_file, zone_text(zone, records)).expect("zone file");
        let port = free_udp_and_tcp_port();
        let conf = path.join("named.conf");
        let d = path.display();
        let broken_zone = match broken {
            Some(name) => {
                let file = path.join("broken.db");
                std::fs::write(&file, "this is not a zone file\n").expect("broken zone");
                format!(
                    "zone \"{name}\" {{ type primary; file \"{}\"; }};\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &conf,
            format!(
                "options {{\n\
                 directory \"{d}\";\n\
                 pid-file \"{d}/named.pid\";\n\
                 session-keyfile \"{d}/session.key\";\n\
                 managed-keys-directory \"{d}\";\n\
                 listen-on port {port} {{ 127.0.0.1; }};\n\
                 listen-on-v6 {{ none; }};\n\
                 recursion no;\n\
                 dnssec-validation no;\n\
                 }};\n\
                 controls {{ }};\n\
                 zone \"{zone}\" {{ type primary; file \"{zf}\"; }};\n\
                 {broken_zone}",
                zf = zone_file.display()
            ),
        )
        .expect("named.conf");
        let log = std::fs::File::create(path.join("named.log")).expect("log");
        let child = Command::new("named")
            .arg("-g")
            .arg("-n")
            .arg("1")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start named (apt-get install bind9)");
        let mut dns = SrvDns {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            zone: zone.to_string(),
            dir,
        };
        dns.wait_ready();
        dns
    }

    /// Where named listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("udp socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let query = soa_query(&self.zone);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("named status") {
                let log =
                    std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default();
                panic!("named exited with {status}: {log}");
            }
            let _ = socket.send_to(&query, self.addr);
            let mut buf = [0u8; 512];
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                // Same id, RCODE NOERROR, at least one answer: the zone is loaded.
                if n >= 12 && buf[..2] == query[..2] && buf[3] & 0x0f == 0 && buf[7] > 0 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("named did not answer for {} within 20 s", self.zone);
    }
}

impl Drop for SrvDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zone_text(zone: &str, records: &[Srv]) -> String {
    let mut text = format!(
        "$TTL 60\n\
         @ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n\
         @ IN NS ns.{zone}.\n\
         ns IN A 127.0.0.1\n"
    );
    let mut hosts: Vec<&str> = Vec::new();
    for r in records {
        let target = if r.host == "." {
            ".".to_string()
        } else {
            if !hosts.contains(&r.host.as_str()) {
                hosts.push(&r.host);
            }
            format!("{}.{zone}.", r.host)
        };
        text.push_str(&format!(
            "_ldap._tcp IN SRV {} {} {} {target}\n",
            r.priority, r.weight, r.port
        ));
    }
    for host in hosts {
        text.push_str(&format!("{host} IN A 127.0.0.1\n"));
    }
    text
}

/// A UDP query for the SOA of `zone`, id 0x4c44, no recursion.
fn soa_query(zone: &str) -> Vec<u8> {
    let mut q = vec![0x4c, 0x44, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.split('.').filter(|l| !l.is_empty()) {
        q.push(u8::try_from(label.len()).expect("short label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    q
}

/// A loopback port free for both UDP and TCP at the time of the call.
pub fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}
