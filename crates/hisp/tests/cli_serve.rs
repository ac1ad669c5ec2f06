//! `hisp serve` as a newcomer runs it: two HISPs (A serving a.example, B
//! serving b.example), each a real `hisp serve` process with its own data
//! dir set up through the CLI, each publishing its own certificates with the
//! built-in DNS responder and discovering the other's through it, relaying
//! by `[[route]]`. A portal's message submitted to A with `swaks` lands,
//! decrypted, in B's mailbox; SIGTERM stops both with exit 0.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{hisp, hisp_cmd, s, Run};
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
        Site {
            dir: tempfile::tempdir().unwrap(),
            domain,
            submission: loopback(ports[0]),
            backbone: loopback(ports[1]),
            dns: loopback(ports[2]),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("hisp.toml")
    }

    /// The CA made by `hisp cert ca` into `<data_dir>/ca`.
    fn ca_pem(&self) -> PathBuf {
        self.path("data/ca/ca.pem")
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config())];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, stdin)
    }

    /// Writes the config: discovery through the peer's responder, the
    /// peer's domain routed to the peer's backbone listener.
    fn configure(&self, peer: &Site) {
        let text = format!(
            "data_dir = \"data\"\n\
             [log]\nlevel = \"info\"\n\
             [smtp]\nsubmission_listen = \"{}\"\nbackbone_listen = \"{}\"\nhostname = \"hisp.{}\"\n\
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

    /// Sends SIGTERM and returns the exit code, waiting at most 30 s.
    fn terminate(&mut self) -> Option<i32> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) with the pid of our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "hisp serve did not stop within 30 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Submits a message with `swaks`, AUTH PLAIN over loopback.
fn swaks(site: &Site, account: &str, from: &str, to: &str, body: &str) -> Output {
    Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(site.submission.port().to_string())
        .args(["--auth", "PLAIN", "--auth-user", account])
        .args(["--auth-password", PASSWORD])
        .args(["--from", from, "--to", to])
        .args(["--header", "Subject: lab results", "--body", body])
        .args(["--timeout", "30"])
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs")
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
fn start_two() -> (Site, Site, Serve, Serve) {
    let ports = free_ports(6);
    let a = Site::new("a.example", &ports[..3]);
    let b = Site::new("b.example", &ports[3..]);
    a.configure(&b);
    b.configure(&a);
    a.provision("pat@a.example", "portal-a", &b);
    b.provision("doc@b.example", "ehr-b", &a);
    let serve_a = Serve::start(&a);
    let serve_b = Serve::start(&b);
    (a, b, serve_a, serve_b)
}

#[test]
fn message_submitted_with_swaks_lands_decrypted_in_the_peers_mailbox_both_ways() {
    let (a, b, mut serve_a, mut serve_b) = start_two();

    let out = swaks(
        &a,
        "portal-a",
        "pat@a.example",
        "doc@b.example",
        "Dear doctor, my lab results are attached.",
    );
    let transcript = text(&out.stdout);
    assert!(
        out.status.success() && transcript.contains("<-  250 2.0.0 Ok: queued as"),
        "swaks failed:\n{transcript}\n{}\n{}",
        text(&out.stderr),
        serve_a.log()
    );
    let entry = wait_for_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["from"], "pat@a.example");
    assert_eq!(entry["subject"], "lab results");
    let id = entry["id"].to_string();
    let shown = b.run(&["mailbox", "show", &id], b"").ok().stdout_text();
    assert!(
        shown.contains("Dear doctor, my lab results are attached."),
        "{shown}"
    );
    // Decrypted: the stored message is the portal's, not the S/MIME envelope.
    assert!(!shown.contains("application/pkcs7-mime"), "{shown}");
    assert_eq!(a.mailbox("pat@a.example").len(), 0, "A's inbox stays empty");

    let out = swaks(
        &b,
        "ehr-b",
        "doc@b.example",
        "pat@a.example",
        "The results look fine.",
    );
    assert!(
        out.status.success(),
        "swaks failed:\n{}\n{}",
        text(&out.stdout),
        serve_b.log()
    );
    let entry = wait_for_inbox(&a, "pat@a.example", &[&serve_a, &serve_b]);
    let shown = a
        .run(&["mailbox", "show", &entry["id"].to_string()], b"")
        .ok()
        .stdout_text();
    assert!(shown.contains("The results look fine."), "{shown}");

    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
    assert!(serve_a.log().contains("hisp: stopped"), "{}", serve_a.log());
}

#[test]
fn address_without_a_certificate_is_refused_at_rcpt_with_550_5_1_1() {
    let (a, _b, mut serve_a, _serve_b) = start_two();
    // b.example is a Direct domain, but nobody@b.example has no certificate
    // published (B's responder answers NXDOMAIN), so it is not a Direct address.
    let out = swaks(
        &a,
        "portal-a",
        "pat@a.example",
        "nobody@b.example",
        "never sent",
    );
    let transcript = text(&out.stdout);
    assert!(!out.status.success(), "{transcript}");
    assert!(
        transcript.contains("<** 550 5.1.1 <nobody@b.example>: not a Direct address"),
        "{transcript}\n{}",
        serve_a.log()
    );
    let queue = a.run(&["queue", "list", "--json"], b"").ok();
    assert_eq!(queue.stdout_text().trim(), "[]", "nothing is queued");
    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
}

#[test]
fn serve_without_a_data_dir_says_how_to_configure_one() {
    let run = hisp(["serve"], b"");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("hisp: no data_dir configured"),
        "{}",
        run.stderr
    );
}
