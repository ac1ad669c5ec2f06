//! The delivering client of `hisp serve` against peers that stall, and
//! STARTTLS to mail exchangers found by MX (issue 10, "Connections" and
//! "TLS to mail exchangers").
//!
//! The stalled peers are raw TCP servers written here: one accepts and never
//! answers, one stops reading after `354` to DATA, one stops in the middle
//! of the TLS handshake after `220` to STARTTLS. B, a real `hisp serve`,
//! hosts c.example, d.example and e.example besides b.example, so that its
//! DNS responder publishes their certificates; A routes those domains to the
//! stalled peers and b.example to B.

mod common;
#[path = "../../hisp-discovery/tests/common/named.rs"]
mod named;
#[path = "common/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{openssl, s};
use named::{Named, NamedConfig, Zone};
use serde_json::Value;
use serve::{eventually, peers, two_sites, wait_for_inbox, Serve, Settings, Site, Swaks};

/// How a [`StalledPeer`] stops.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// Accepts TCP and never writes a byte (no greeting).
    Silent,
    /// Answers up to `354` to DATA, then reads nothing more.
    AfterData,
    /// Offers STARTTLS, answers `220` to it, then takes no part in the
    /// handshake.
    InTls,
}

/// A raw SMTP peer on loopback that stalls as its [`Stall`] says and holds
/// every connection until it is dropped.
struct StalledPeer {
    addr: SocketAddr,
    /// What each connection reached: "connected", "data", "starttls".
    reached: Arc<Mutex<Vec<&'static str>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StalledPeer {
    fn start(stall: Stall) -> StalledPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A small receive buffer, inherited by accepted sockets, so that a
        // client writing to a peer that stopped reading blocks soon.
        let size: libc::c_int = 4096;
        // SAFETY: setsockopt on our own socket with a pointer to a c_int
        // and its size.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUF");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let reached = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (reached.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        seen.lock().unwrap().push("connected");
                        let (seen, stopped) = (seen.clone(), stopped.clone());
                        held.push(std::thread::spawn(move || {
                            let _ = stalled_session(&stream, stall, &seen);
                            // Hold the connection open, silent, until the end.
                            while !stopped.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for h in held {
                let _ = h.join();
            }
        });
        StalledPeer {
            addr,
            reached,
            stop,
            thread: Some(thread),
        }
    }

    fn reached(&self, stage: &str) -> bool {
        self.reached.lock().unwrap().contains(&stage)
    }
}

impl Drop for StalledPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Plays the peer's part up to its stall; the connection then stays open
/// (held by the caller) with nothing more read or written.
fn stalled_session(
    stream: &TcpStream,
    stall: Stall,
    seen: &Mutex<Vec<&'static str>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    if let Stall::Silent = stall {
        return Ok(());
    }
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream.try_clone()?);
    out.write_all(b"220 stalled.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.to_ascii_uppercase();
        if verb.starts_with("EHLO") {
            match stall {
                Stall::InTls => out.write_all(b"250-stalled.test\r\n250 STARTTLS\r\n")?,
                _ => out.write_all(b"250 stalled.test\r\n")?,
            }
        } else if verb.starts_with("STARTTLS") {
            out.write_all(b"220 2.0.0 go ahead\r\n")?;
            seen.lock().unwrap().push("starttls");
            return Ok(());
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            seen.lock().unwrap().push("data");
            return Ok(());
        } else {
            out.write_all(b"250 2.0.0 ok\r\n")?;
        }
    }
}

/// B also hosts `domain` with the address doc@`domain` (a certificate from
/// B's CA, which A trusts), so that B's DNS responder publishes it.
fn host_at_b(b: &Site, domain: &str) {
    b.run(&["domain", "add", domain], b"").ok();
    let ca = s(&b.path("data/ca"));
    b.run(
        &[
            "address",
            "add",
            &format!("doc@{domain}"),
            "--cert-from",
            &ca,
        ],
        b"",
    )
    .ok();
}

/// Appends a `[[route]]` for `domain` to `site`'s configuration.
fn add_route(site: &Site, domain: &str, to: SocketAddr) {
    let mut text = std::fs::read_to_string(site.config()).unwrap();
    text.push_str(&format!(
        "[[route]]\ndomain = \"{domain}\"\nto = \"{to}\"\n"
    ));
    std::fs::write(site.config(), text).unwrap();
}

/// Submits a message from pat@a.example to `to` at A; asserts the 250.
fn submit(a: &Site, serve_a: &Serve, to: &str, subject: &str, extra: &[&str]) {
    let out = Swaks::to(a.submission, "pat@a.example", to)
        .auth("portal-a")
        .args(["--header", &format!("Subject: {subject}")])
        .args(extra)
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
}

/// A's queue entry with a recipient `rcpt`, once `check` holds for it,
/// within `wait`.
fn queue_entry_when(
    a: &Site,
    serve_a: &Serve,
    rcpt: &str,
    wait: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(
        wait,
        || {
            a.queue_entries().into_iter().find(|e| {
                e["recipients"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|r| r["address"] == rcpt))
                    && check(e)
            })
        },
        || format!("queue:\n{}\nlog:\n{}", a.queue(), serve_a.log()),
    )
}

/// A message still queued for another try, deferred with a reason.
fn deferred(e: &Value) -> bool {
    e["state"] == "pending" && e["last_error"].is_string()
}

#[test]
fn deliveries_do_not_wait_for_a_peer_that_never_answers_rfc_5321_4_5_3_2() {
    // The default deadlines (RFC 5321 §4.5.3.2: 5 minutes for the greeting)
    // are in force: the healthy delivery must not queue behind them.
    let (a, b) = two_sites(peers);
    host_at_b(&b, "c.example");
    let silent = StalledPeer::start(Stall::Silent);
    add_route(&a, "c.example", silent.addr);
    let serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");

    submit(&a, &serve_a, "doc@c.example", "to a silent peer", &[]);
    eventually(
        Duration::from_secs(20),
        || silent.reached("connected").then_some(()),
        || format!("A never connected to the silent peer:\n{}", serve_a.log()),
    );
    let started = Instant::now();
    submit(&a, &serve_a, "doc@b.example", "to a healthy peer", &[]);
    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(15),
        &[&serve_a, &serve_b],
    );
    assert_eq!(entries[0]["subject"], "to a healthy peer");
    assert!(started.elapsed() < Duration::from_secs(15));
    // The silent peer's delivery is still waiting for its greeting.
    let c = queue_entry_when(&a, &serve_a, "doc@c.example", Duration::ZERO, |_| true);
    assert_eq!(c["recipients"][0]["state"], "queued", "{c}");
}

#[test]
fn a_stalled_peer_is_a_temporary_failure_within_the_relay_deadlines_rfc_5321_4_5_3_2() {
    let (a, b) = two_sites(peers);
    for domain in ["c.example", "d.example", "e.example"] {
        host_at_b(&b, domain);
    }
    let silent = StalledPeer::start(Stall::Silent);
    let after_data = StalledPeer::start(Stall::AfterData);
    let in_tls = StalledPeer::start(Stall::InTls);
    // Opportunistic STARTTLS, so that A starts TLS with the peer that
    // offers it; short deadlines for every step.
    a.write_config_with_smtp(
        peers(&a, &b),
        &format!(
            "relay_tls = \"opportunistic\"\nrelay_ca_file = \"{}\"\n\
             relay_connect_timeout_secs = 2\nrelay_command_timeout_secs = 2\n\
             relay_data_block_timeout_secs = 2\nrelay_data_timeout_secs = 2\n",
            s(&b.ca_pem())
        ),
    );
    add_route(&a, "c.example", silent.addr);
    add_route(&a, "d.example", after_data.addr);
    add_route(&a, "e.example", in_tls.addr);
    let serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");

    // Larger than any socket buffer between A and the peer (at most 4 MiB
    // to send on Linux, 4 KiB to receive): A's writes must block.
    let big = a.path("big.txt");
    let line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n";
    std::fs::write(&big, line.repeat(6 * 1024 * 1024 / line.len())).unwrap();
    submit(&a, &serve_a, "doc@c.example", "silent", &[]);
    submit(
        &a,
        &serve_a,
        "doc@d.example",
        "stalls after DATA",
        &["--body", &format!("@{}", s(&big))],
    );
    submit(&a, &serve_a, "doc@e.example", "stalls in TLS", &[]);

    let wait = Duration::from_secs(30);
    let c = queue_entry_when(&a, &serve_a, "doc@c.example", wait, deferred);
    let why = c["last_error"].as_str().unwrap();
    assert!(
        why.contains("Connect") && why.contains("did not answer in time"),
        "{why}"
    );
    let d = queue_entry_when(&a, &serve_a, "doc@d.example", wait, deferred);
    assert!(after_data.reached("data"), "the peer saw DATA");
    let why = d["last_error"].as_str().unwrap();
    assert!(
        why.contains("Message") && why.contains("stopped taking data"),
        "{why}"
    );
    let e = queue_entry_when(&a, &serve_a, "doc@e.example", wait, deferred);
    assert!(in_tls.reached("starttls"), "the peer saw STARTTLS");
    let why = e["last_error"].as_str().unwrap();
    assert!(
        why.contains("TLS handshake") && why.contains("did not finish in time"),
        "{why}"
    );
    for entry in [&c, &d, &e] {
        assert_eq!(entry["recipients"][0]["state"], "queued", "{entry}");
    }

    // The stalls cost their own deliveries only.
    let started = Instant::now();
    submit(&a, &serve_a, "doc@b.example", "to a healthy peer", &[]);
    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(15),
        &[&serve_a, &serve_b],
    );
    assert_eq!(entries[0]["subject"], "to a healthy peer");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// `dir/ca.pem` (a self-signed CA) and `dir/server.pem` with
/// `dir/server.key` issued by it, naming only `san` (such as
/// `DNS:mx.b.example`).
fn make_tls_certificates(dir: &std::path::Path, san: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let p = |name: &str| s(&dir.join(name));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    let (ca_key, ca_pem) = (p("ca.key"), p("ca.pem"));
    ca.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-days",
        "2",
        "-subj",
        "/CN=TLS test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(ca, b"").ok();
    let mut req = vec!["req"];
    req.extend(ec);
    let (key, csr) = (p("server.key"), p("server.csr"));
    req.extend([
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/CN=TLS test server",
    ]);
    openssl(req, b"").ok();
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName={san}\n"
        ),
    )
    .unwrap();
    let (ext, pem) = (p("server.ext"), p("server.pem"));
    openssl(
        [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
        b"",
    )
    .ok();
}

/// The CERT records of `hisp dns export` (each with its continuation lines);
/// the A and MX records it writes for the demo's mail routing are left out.
fn cert_records(export: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in export.lines() {
        if !line.starts_with(char::is_whitespace) && !line.starts_with(')') {
            keep = line.split_whitespace().any(|t| t == "CERT");
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn starttls_to_a_mail_exchanger_verifies_the_mx_host_name_rfc_3207_4_1() {
    let (a, b) = two_sites(peers);
    // B's TLS certificate names its host and nothing else: no IP address.
    let tls = b.path("tls");
    make_tls_certificates(&tls, "DNS:mx.b.example");
    b.write_config_with_smtp(
        peers(&b, &a),
        "tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\n",
    );
    // b.example's zone: its certificates, and its mail exchanger by name,
    // whose address is loopback.
    let export = b.run(&["dns", "export"], b"").ok().stdout_text();
    let mut records = cert_records(&export);
    records.push_str("b.example. IN MX 10 mx.b.example.\nmx.b.example. IN A 127.0.0.1\n");
    assert!(records.contains("CERT"), "{export}");
    let named = Named::start(&NamedConfig {
        zones: vec![Zone::new("b.example", records)],
        ..NamedConfig::default()
    });
    // A: no [[route]]; MX through named, on B's backbone port; nothing in
    // clear, B's certificate checked against B's TLS CA.
    a.write_config_with_smtp(
        Settings {
            nameserver: named.addr(),
            by_mx: true,
            ..peers(&a, &b)
        },
        &format!(
            "relay_tls = \"required\"\nrelay_ca_file = \"{}\"\n",
            s(&tls.join("ca.pem"))
        ),
    );
    let config = std::fs::read_to_string(a.config()).unwrap();
    assert!(!config.contains("[[route]]"), "{config}");
    let serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");

    submit(
        &a,
        &serve_a,
        "doc@b.example",
        "to the MX host over TLS",
        &[],
    );
    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(30),
        &[&serve_a, &serve_b],
    );
    assert_eq!(entries[0]["subject"], "to the MX host over TLS");
    let log = serve_a.log();
    assert!(
        log.lines()
            .any(|l| l.contains("message sent") && l.contains("tls") && l.contains("true")),
        "A's delivery went over TLS:\n{log}"
    );
}
