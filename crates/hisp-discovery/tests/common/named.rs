//! A real BIND 9 `named` for tests: writes named.conf and zone files into a
//! temporary directory, starts `named -g` on 127.0.0.1 on a free port, waits
//! until it runs with every zone loaded, and kills it when dropped.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One primary zone: its origin and the records after the SOA and NS that
/// the helper writes (`ns1.ORIGIN` at 127.0.0.1). Names must be absolute.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: String,
    pub records: String,
}

impl Zone {
    pub fn new(origin: &str, records: impl Into<String>) -> Self {
        Zone {
            origin: origin.trim_end_matches('.').to_string(),
            records: records.into(),
        }
    }
}

/// What the server holds and how it behaves.
#[derive(Debug, Clone, Default)]
pub struct NamedConfig {
    /// Zones served authoritatively.
    pub zones: Vec<Zone>,
    /// Statements added to `options { }`, e.g. `max-udp-size 512;`.
    pub options: String,
    /// Statements added after the zones (forward zones, extra zones).
    pub extra: String,
    /// Whether the server recurses (default: authoritative only).
    pub recursion: bool,
    /// Zones loaded with `allow-query { none; }`: every query for a name in
    /// them is REFUSED, while names outside them are answered as usual.
    pub refused_zones: Vec<Zone>,
}

/// A running `named`; killed on drop.
pub struct Named {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    dir: tempfile::TempDir,
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for UDP and TCP");
}

/// Zone-file text: SOA, NS and the name server's address, then `records`.
pub fn zone_text(zone: &Zone) -> String {
    let o = &zone.origin;
    format!(
        "$TTL 300\n\
         {o}. IN SOA ns1.{o}. hostmaster.{o}. 1 3600 600 86400 60\n\
         {o}. IN NS ns1.{o}.\n\
         ns1.{o}. IN A 127.0.0.1\n\
         {}\n",
        zone.records
    )
}

impl Named {
    /// Starts `named` with `config`; panics (with named's log) if it does
    /// not come up with every zone loaded within 30 seconds.
    pub fn start(config: &NamedConfig) -> Named {
        let mut last = String::new();
        // A port found free can be taken before named binds it: try again.
        for _ in 0..3 {
            match Self::try_start(config) {
                Ok(named) => return named,
                Err(log) => last = log,
            }
        }
        panic!("named did not start:\n{last}");
    }

    fn try_start(config: &NamedConfig) -> Result<Named, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = write_config(dir.path(), port, config);
        let log = dir.path().join("named.log");
        let log_file = fs::File::create(&log).expect("create named.log");
        let child = Command::new("named")
            .args(["-g", "-n", "1", "-4", "-c"])
            .arg(&conf)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start named (is bind9 installed?)");
        let mut named = Named {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            dir,
        };
        named.wait_ready(config)?;
        Ok(named)
    }

    fn wait_ready(&mut self, config: &NamedConfig) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            let loaded = config
                .zones
                .iter()
                .all(|z| log.contains(&format!("zone {}/IN: loaded serial", z.origin)));
            if log.contains("running") && loaded {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("named exited with {status}:\n{log}"));
            }
            if Instant::now() > deadline {
                return Err(format!("named not ready after 30 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything named has logged so far (with `querylog`, every query).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The directory holding named.conf and the zone files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, port: u16, config: &NamedConfig) -> PathBuf {
    let mut zones = String::new();
    let served = config.zones.iter().map(|z| (z, ""));
    let refused = config
        .refused_zones
        .iter()
        .map(|z| (z, " allow-query { none; };"));
    for (zone, acl) in served.chain(refused) {
        let file = dir.join(format!("{}.zone", zone.origin));
        fs::write(&file, zone_text(zone)).expect("write zone file");
        writeln!(
            zones,
            "zone \"{}\" {{ type primary; file \"{}\";{acl} }};",
            zone.origin,
            file.display()
        )
        .expect("write to string");
    }
    let recursion = if config.recursion { "yes" } else { "no" };
    let d = dir.display();
    let text = format!(
        "options {{
    directory \"{d}\";
    pid-file none;
    session-keyfile none;
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion {recursion};
    dnssec-validation no;
    querylog yes;
    notify no;
    {options}
}};
controls {{ }};
{zones}
{extra}
",
        options = config.options,
        extra = config.extra,
    );
    let conf = dir.join("named.conf");
    fs::write(&conf, text).expect("write named.conf");
    conf
}

/// A CERT PKIX record line for a zone file, written the way an operator
/// would: mnemonic type, key tag 0, algorithm 0, base64 in parentheses over
/// several lines (RFC 4398 §2 and §6). Independent of hisp's own exporter.
pub fn pkix_line(owner: &str, ttl: u32, der: &[u8]) -> String {
    cert_line(owner, ttl, "PKIX", der)
}

/// A CERT IPKIX record line: the data is the URL (RFC 4398 §2.1), shown in
/// base64 like every CERT data field.
pub fn ipkix_line(owner: &str, ttl: u32, url: &str) -> String {
    cert_line(owner, ttl, "IPKIX", url.as_bytes())
}

fn cert_line(owner: &str, ttl: u32, kind: &str, data: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut lines = String::new();
    for chunk in b64.as_bytes().chunks(64) {
        lines.push_str("    ");
        lines.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        lines.push('\n');
    }
    format!("{owner}. {ttl} IN CERT {kind} 0 0 (\n{lines}    )\n")
}
