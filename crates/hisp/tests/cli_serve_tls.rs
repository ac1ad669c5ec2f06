//! STARTTLS in `hisp serve` (RFC 3207): with `[smtp] tls_cert` and
//! `tls_key` both listeners offer it and a portal authenticates over it;
//! `[smtp] relay_tls = "required"` relays only over TLS to a peer whose
//! certificate verifies against `relay_ca_file`, and toward a peer without
//! STARTTLS sends nothing, keeping the message queued with the reason.
//!
//! Each site's TLS certificates come from its own test CA made with the
//! `openssl` command; the server certificate names 127.0.0.1 (IP SAN), the
//! name the delivering client checks since `[[route]]` gives an address.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{hisp, hisp_cmd, openssl, s, Run};
use serde_json::Value;

const PASSWORD: &str = "a long portal password";

/// `n` distinct loopback ports free for both TCP and UDP (the DNS responder
/// uses both). The sockets are held until all are chosen, so no port repeats.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    while held.len() < n {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        let port = udp.local_addr().expect("local address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, udp, tcp));
        }
    }
    held.into_iter().map(|(port, _, _)| port).collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// How a site uses TLS.
#[derive(Clone, Copy)]
struct TlsSetup {
    /// `tls_cert` and `tls_key` set: the listeners offer STARTTLS.
    listeners: bool,
    /// `relay_tls`, and `relay_ca_file` naming the peer's TLS CA.
    relay: Option<&'static str>,
}

/// One HISP's directory, addresses and configuration.
struct Site {
    dir: tempfile::TempDir,
    domain: &'static str,
    submission: SocketAddr,
    backbone: SocketAddr,
    dns: SocketAddr,
}

impl Site {
    fn new(domain: &'static str, ports: &[u16]) -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            domain,
            submission: loopback(ports[0]),
            backbone: loopback(ports[1]),
            dns: loopback(ports[2]),
        };
        site.make_tls_certificates();
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("hisp.toml")
    }

    /// The Direct CA made by `hisp cert ca` into `<data_dir>/ca`.
    fn ca_pem(&self) -> PathBuf {
        self.path("data/ca/ca.pem")
    }

    /// The CA that issued this site's TLS server certificate.
    fn tls_ca_pem(&self) -> PathBuf {
        self.path("tls/ca.pem")
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config())];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, stdin)
    }

    /// `tls/ca.pem` (a self-signed CA) and `tls/server.pem` with
    /// `tls/server.key`, for 127.0.0.1 and localhost, issued by it.
    fn make_tls_certificates(&self) {
        let dir = self.path("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let p = |name: &str| s(&dir.join(name));
        openssl(
            [
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={} TLS test CA", self.domain),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            b"",
        )
        .ok();
        openssl(
            [
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &p("server.key"),
                "-out",
                &p("server.csr"),
                "-subj",
                &format!("/CN=hisp.{}", self.domain),
            ],
            b"",
        )
        .ok();
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(
            [
                "x509",
                "-req",
                "-in",
                &p("server.csr"),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &p("server.ext"),
                "-out",
                &p("server.pem"),
            ],
            b"",
        )
        .ok();
    }

    /// Writes the config (discovery through the peer's responder, the
    /// peer's domain routed to the peer's backbone listener, TLS as `tls`
    /// says) and makes the Direct CA.
    fn configure(&self, peer: &Site, tls: TlsSetup) {
        let mut smtp_tls = String::new();
        if tls.listeners {
            // Relative to the config file.
            smtp_tls.push_str("tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\n");
        }
        if let Some(mode) = tls.relay {
            smtp_tls.push_str(&format!(
                "relay_tls = \"{mode}\"\nrelay_ca_file = \"{}\"\n",
                s(&peer.tls_ca_pem())
            ));
        }
        let text = format!(
            "data_dir = \"data\"\n\
             [log]\nlevel = \"info\"\n\
             [smtp]\nsubmission_listen = \"{}\"\nbackbone_listen = \"{}\"\nhostname = \"hisp.{}\"\n\
             {smtp_tls}\
             [discovery]\nnameservers = [\"{}\"]\n\
             [dns_responder]\nlisten = \"{}\"\n\
             [[route]]\ndomain = \"{}\"\nto = \"{}\"\n",
            self.submission,
            self.backbone,
            self.domain,
            peer.dns,
            self.dns,
            peer.domain,
            peer.backbone
        );
        std::fs::write(self.config(), text).unwrap();
        self.run(&["cert", "ca", "--cn", &format!("{} CA", self.domain)], b"")
            .ok();
    }

    /// The domain, one address with a certificate from the site's CA, the
    /// peer's CA as an anchor both ways, and a portal account that may send
    /// as the address.
    fn provision(&self, address: &str, account: &str, peer: &Site) {
        let ca_dir = self.path("data/ca");
        self.run(&["domain", "add", self.domain], b"").ok();
        self.run(
            &["address", "add", address, "--cert-from", &s(&ca_dir)],
            b"",
        )
        .ok();
        self.run(&["anchor", "add", self.domain, &s(&peer.ca_pem())], b"")
            .ok();
        self.run(
            &["user", "add", account, "--password-stdin"],
            format!("{PASSWORD}\n").as_bytes(),
        )
        .ok();
        self.run(&["user", "grant", account, address], b"").ok();
    }

    fn mailbox(&self, address: &str) -> Vec<Value> {
        let run = self.run(&["mailbox", "list", address, "--json"], b"").ok();
        let json: Value = serde_json::from_slice(&run.stdout).expect("mailbox list --json");
        json.as_array().expect("an array").clone()
    }

    fn queue(&self) -> Vec<Value> {
        let run = self.run(&["queue", "list", "--json"], b"").ok();
        let json: Value = serde_json::from_slice(&run.stdout).expect("queue list --json");
        json.as_array().expect("an array").clone()
    }
}

/// A running `hisp serve`, killed when dropped if it is still running.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(site: &Site) -> Serve {
        let log = site.path("serve.log");
        let child = hisp_cmd(["--config", &s(&site.config()), "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("hisp serve starts");
        let mut serve = Serve { child, log };
        for addr in [site.submission, site.backbone, site.dns] {
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(addr).is_err() {
                if let Ok(Some(status)) = serve.child.try_wait() {
                    panic!("hisp serve exited with {status}:\n{}", serve.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "hisp serve did not listen on {addr}:\n{}",
                    serve.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Submits a message with `swaks`: STARTTLS, then AUTH PLAIN.
fn swaks_tls(site: &Site, account: &str, from: &str, to: &str, body: &str) -> Output {
    Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(site.submission.port().to_string())
        .arg("--tls")
        .args(["--auth", "PLAIN", "--auth-user", account])
        .args(["--auth-password", PASSWORD])
        .args(["--from", from, "--to", to])
        .args(["--header", "Subject: lab results", "--body", body])
        .args(["--timeout", "30"])
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs")
}

/// `swaks` up to the EHLO reply, in clear text; the transcript.
fn ehlo(addr: SocketAddr) -> String {
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .args(["--quit-after", "EHLO", "--timeout", "30"])
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs");
    text(&out.stdout)
}

/// Whether the EHLO reply in a swaks transcript lists STARTTLS.
fn offers_starttls(transcript: &str) -> bool {
    transcript.lines().any(|l| {
        l.strip_prefix("<-  250")
            .is_some_and(|rest| rest.get(1..) == Some("STARTTLS"))
    })
}

/// `text` without the terminal colour sequences of the log.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Polls `address`'s inbox at `site` for up to 30 s; the first entry.
fn wait_for_inbox(site: &Site, address: &str, logs: &[&Serve]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(entry) = site.mailbox(address).into_iter().next() {
            return entry;
        }
        if Instant::now() >= deadline {
            let queue = site.run(&["queue", "list"], b"").stdout_text();
            let logs: Vec<String> = logs.iter().map(|l| l.log()).collect();
            panic!(
                "nothing in {address}'s inbox after 30 s; queue:\n{queue}\nlogs:\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Both sites configured and provisioned, both `hisp serve` running.
fn start_two(a_tls: TlsSetup, b_tls: TlsSetup) -> (Site, Site, Serve, Serve) {
    let ports = free_ports(6);
    let a = Site::new("a.example", &ports[..3]);
    let b = Site::new("b.example", &ports[3..]);
    a.configure(&b, a_tls);
    b.configure(&a, b_tls);
    a.provision("pat@a.example", "portal-a", &b);
    b.provision("doc@b.example", "ehr-b", &a);
    let serve_a = Serve::start(&a);
    let serve_b = Serve::start(&b);
    (a, b, serve_a, serve_b)
}

/// Submits to A over STARTTLS, checking the 250 at the end of DATA.
fn submit(a: &Site, serve_a: &Serve, body: &str) -> String {
    let out = swaks_tls(a, "portal-a", "pat@a.example", "doc@b.example", body);
    let transcript = text(&out.stdout);
    assert!(
        out.status.success() && transcript.contains("250 2.0.0 Ok: queued as"),
        "swaks failed:\n{transcript}\n{}\n{}",
        text(&out.stderr),
        serve_a.log()
    );
    transcript
}

#[test]
fn listeners_offer_starttls_and_auth_over_tls_submits_rfc_3207() {
    let with_tls = TlsSetup {
        listeners: true,
        relay: None,
    };
    let plain = TlsSetup {
        listeners: false,
        relay: None,
    };
    let (a, b, serve_a, serve_b) = start_two(with_tls, plain);

    for addr in [a.submission, a.backbone] {
        let transcript = ehlo(addr);
        assert!(offers_starttls(&transcript), "{addr}:\n{transcript}");
    }
    let transcript = ehlo(b.backbone);
    assert!(
        !offers_starttls(&transcript),
        "B has no tls_cert:\n{transcript}"
    );
    assert!(serve_a.log().contains("listener on"), "{}", serve_a.log());

    let transcript = submit(&a, &serve_a, "Sent over STARTTLS.");
    // swaks marks what it read inside TLS with `<~`.
    assert!(
        transcript.contains("<~  235"),
        "AUTH over TLS:\n{transcript}"
    );
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as"),
        "{transcript}"
    );
    // A relays opportunistically: B offers no STARTTLS, so in clear.
    let entry = wait_for_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["from"], "pat@a.example");
}

#[test]
fn relay_tls_required_delivers_over_starttls_to_a_peer_whose_ca_is_trusted() {
    let both = TlsSetup {
        listeners: true,
        relay: Some("required"),
    };
    let (a, b, serve_a, serve_b) = start_two(both, both);

    submit(&a, &serve_a, "Relayed over TLS only.");
    let entry = wait_for_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["from"], "pat@a.example");
    let shown = b
        .run(&["mailbox", "show", &entry["id"].to_string()], b"")
        .ok()
        .stdout_text();
    assert!(shown.contains("Relayed over TLS only."), "{shown}");
    let log = plain(&serve_a.log());
    assert!(
        log.lines()
            .any(|l| l.contains("message sent") && l.contains("tls=true")),
        "A's delivery went over TLS:\n{log}"
    );
}

#[test]
fn relay_tls_required_keeps_the_message_queued_when_the_peer_offers_no_starttls() {
    let a_tls = TlsSetup {
        listeners: true,
        relay: Some("required"),
    };
    let plain = TlsSetup {
        listeners: false,
        relay: None,
    };
    let (a, b, serve_a, _serve_b) = start_two(a_tls, plain);

    submit(&a, &serve_a, "Never in clear.");
    let reason = "does not offer STARTTLS and TLS is required: nothing sent";
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        let queue = a.queue();
        let found = queue.iter().find(|e| {
            e["last_error"]
                .as_str()
                .is_some_and(|err| err.contains(reason))
        });
        if let Some(entry) = found {
            break entry.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no queued message with the reason after 30 s:\n{queue:#?}\n{}",
            serve_a.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(entry["direction"], "outbound", "{entry:#}");
    assert_ne!(entry["state"], "done", "{entry:#}");
    assert!(
        b.mailbox("doc@b.example").is_empty(),
        "nothing reached B in clear"
    );
}
