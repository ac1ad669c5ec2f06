//! `hisp demo` as the README shows it: the first start creates the demo
//! domains, addresses, anchors and the `demo` account and prints its
//! generated password once; `swaks` with that password sends from the demo
//! patient to the demo provider and the message lands in the provider's
//! mailbox, having gone through S/MIME: relayed sealed to the backbone
//! listener and opened there. A restart on the same data dir prints no
//! password and keeps the mailbox; SIGTERM stops it with exit 0.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{hisp, hisp_cmd, s};
use serde_json::Value;

const PATIENT: &str = "patient@patients.demo.test";
const PROVIDER: &str = "provider@clinic.demo.test";
const BODY: &str = "Dear doctor, here are my blood pressure readings.";

/// `n` distinct loopback ports free for both TCP and UDP.
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

/// A demo configuration: config/demo.toml with the ports and data dir of
/// this test.
struct DemoDir {
    dir: tempfile::TempDir,
    submission: SocketAddr,
    backbone: SocketAddr,
    dns: SocketAddr,
}

impl DemoDir {
    fn new() -> DemoDir {
        let ports = free_ports(3);
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let demo = DemoDir {
            dir: tempfile::tempdir().unwrap(),
            submission: at(ports[0]),
            backbone: at(ports[1]),
            dns: at(ports[2]),
        };
        let shipped = include_str!("../../../config/demo.toml")
            .replace("../target/hisp-demo", "data")
            .replace("127.0.0.1:2587", &demo.submission.to_string())
            .replace("127.0.0.1:2525", &demo.backbone.to_string())
            .replace("127.0.0.1:5353", &demo.dns.to_string());
        std::fs::write(demo.config(), shipped).unwrap();
        demo
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("demo.toml")
    }

    /// `hisp queue list --json`.
    fn queue(&self) -> Vec<Value> {
        let run = hisp(
            ["--config", &s(&self.config()), "queue", "list", "--json"],
            b"",
        )
        .ok();
        let json: Value = serde_json::from_slice(&run.stdout).expect("queue list --json");
        json.as_array().expect("an array").clone()
    }

    fn mailbox(&self, address: &str) -> Vec<Value> {
        let run = hisp(
            [
                "--config",
                &s(&self.config()),
                "mailbox",
                "list",
                address,
                "--json",
            ],
            b"",
        )
        .ok();
        let json: Value = serde_json::from_slice(&run.stdout).expect("mailbox list --json");
        json.as_array().expect("an array").clone()
    }
}

/// A running `hisp demo`, killed when dropped if it is still running.
struct Demo {
    child: Child,
    out: PathBuf,
    log: PathBuf,
}

impl Demo {
    /// Starts `hisp demo` (the `run`th start) and waits for its listeners.
    fn start(demo: &DemoDir, run: u32) -> Demo {
        let out = demo.dir.path().join(format!("demo-{run}.out"));
        let log = demo.dir.path().join(format!("demo-{run}.log"));
        let child = hisp_cmd(["--config", &s(&demo.config()), "demo"])
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("hisp demo starts");
        let mut running = Demo { child, out, log };
        // The first start makes two CAs and two RSA keys first.
        for addr in [demo.submission, demo.backbone, demo.dns] {
            let deadline = Instant::now() + Duration::from_secs(60);
            while TcpStream::connect(addr).is_err() {
                if let Ok(Some(status)) = running.child.try_wait() {
                    panic!("hisp demo exited with {status}:\n{}", running.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "hisp demo did not listen on {addr}:\n{}",
                    running.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        running
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The password printed on the `user demo password: ...` line, if any.
    fn password(&self) -> Option<String> {
        let out = self.stdout();
        let line = out.lines().find(|l| l.contains("password: "))?;
        let (_, rest) = line.split_once("password: ")?;
        Some(rest.split_whitespace().next()?.to_string())
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
                "hisp demo did not stop within 30 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_prints_a_password_once_and_swaks_mail_from_the_patient_lands_with_the_provider() {
    let dir = DemoDir::new();
    let mut demo = Demo::start(&dir, 1);
    let password = demo
        .password()
        .unwrap_or_else(|| panic!("no password printed:\n{}", demo.stdout()));
    assert_eq!(password.len(), 24, "{password}");

    // The README's command, with this test's port.
    let out = Command::new("swaks")
        .args(["--server", &dir.submission.to_string()])
        .args(["--auth", "PLAIN", "--auth-user", "demo"])
        .args(["--auth-password", &password])
        .args(["--from", PATIENT, "--to", PROVIDER])
        .args(["--header", "Subject: blood pressure", "--body", BODY])
        .stdin(Stdio::null())
        .output()
        .expect("swaks runs");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && transcript.contains("<-  250 2.0.0 Ok: queued as"),
        "swaks failed:\n{transcript}\n{}",
        demo.log()
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        if let Some(entry) = dir.mailbox(PROVIDER).into_iter().next() {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "nothing in {PROVIDER}'s inbox after 30 s:\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(entry["from"], PATIENT);
    assert_eq!(entry["subject"], "blood pressure");
    let shown = hisp(
        [
            "--config",
            &s(&dir.config()),
            "mailbox",
            "show",
            &entry["id"].to_string(),
        ],
        b"",
    )
    .ok()
    .stdout_text();
    assert!(shown.contains(BODY), "{shown}");

    // It went the Direct way, not straight into the mailbox: the outbound
    // message was relayed (sealed, by the route to the backbone listener) and
    // came back in as an inbound one that was opened and delivered; the
    // provider's side answered with processed and dispatched MDNs, which
    // took the patient's tracking to delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queue = dir.queue();
        let entry = |direction: &str| {
            queue
                .iter()
                .find(|e| e["direction"] == direction && e["from"] == PATIENT)
                .cloned()
        };
        let relayed = entry("outbound").is_some_and(|e| {
            e["recipients"][0]["state"] == "delivered"
                && e["recipients"][0]["reason"] == "dispatched MDN received"
        });
        let opened = entry("inbound").is_some_and(|e| {
            e["state"] == "done"
                && e["recipients"][0]["address"] == PROVIDER
                && e["recipients"][0]["state"] == "delivered"
        });
        if relayed && opened {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no outbound entry tracked to delivered and delivered inbound entry after 30 s: {queue:#?}\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(demo.terminate(), Some(0), "{}", demo.log());

    // Second start on the same data dir: no password, the message kept.
    let mut again = Demo::start(&dir, 2);
    assert_eq!(again.password(), None, "{}", again.stdout());
    assert!(
        again.stdout().contains("was shown at its first start"),
        "{}",
        again.stdout()
    );
    let inbox = dir.mailbox(PROVIDER);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["id"], entry["id"]);
    assert_eq!(again.terminate(), Some(0), "{}", again.log());
    assert!(again.log().contains("hisp: stopped"), "{}", again.log());
}

#[test]
fn demo_without_a_data_dir_says_which_config_to_use() {
    let run = hisp(["demo"], b"");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("hisp: no data_dir configured: `hisp demo`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--config config/demo.toml"),
        "{}",
        run.stderr
    );
}
