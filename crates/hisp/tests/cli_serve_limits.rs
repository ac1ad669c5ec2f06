//! Denial of service at the listeners of a real `hisp serve` (issue 10,
//! "Connections and accounts"): parallel AUTH within a memory bound, failed
//! AUTH throttled per client address and per account (and the right password
//! working again after the window), a connection limit per client address,
//! sessions that make no progress or live too long closed, and a deadline on
//! the TLS handshake after STARTTLS.
//!
//! Clients come from many addresses of 127.0.0.0/8 (all loopback on Linux),
//! each socket bound to its source address before it connects.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{openssl, s};
use serve::{free_ports, Serve, Site, PASSWORD};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// The one account of the site.
const ACCOUNT: &str = "portal-a";
/// A wrong password, long enough to be checked like a real one.
const WRONG: &str = "not the password of anybody";
/// What [`Client::reply`] gives when the server closed the connection.
const CLOSED: &str = "<closed>";
/// The longest a test waits for one reply.
const WAIT: Duration = Duration::from_secs(30);

/// A site serving a.example with the account `portal-a`; `smtp` (whole
/// lines) is added to its `[smtp]` table. Nothing runs yet.
fn site(smtp: &str) -> Site {
    let ports = free_ports(3);
    let site = Site::new("a.example", "b.example", &ports);
    std::fs::write(
        site.config(),
        format!(
            "data_dir = \"data\"\n[log]\nlevel = \"info\"\n\
             [smtp]\nsubmission_listen = \"{}\"\nbackbone_listen = \"{}\"\n\
             hostname = \"hisp.a.example\"\nmx_routing = false\n{smtp}",
            site.submission, site.backbone
        ),
    )
    .unwrap();
    site.run(&["domain", "add", "a.example"], b"").ok();
    site.run(
        &["user", "add", ACCOUNT, "--password-stdin"],
        format!("{PASSWORD}\n").as_bytes(),
    )
    .ok();
    site
}

/// `hisp serve` for `site`, once both listeners take connections.
fn start(site: &Site) -> Serve {
    Serve::launch(
        "serve",
        &site.config(),
        site.path("serve.log"),
        &[site.submission, site.backbone],
        Duration::from_secs(20),
    )
}

/// The peak resident memory of process `pid` (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// An SMTP client whose socket is bound to a chosen loopback address.
struct Client {
    conn: BufReader<TcpStream>,
}

impl Client {
    /// Connects from `from` (any address of 127.0.0.0/8) to `server`.
    async fn connect(from: Ipv4Addr, server: SocketAddr) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let stream = socket
            .connect(server)
            .await
            .unwrap_or_else(|e| panic!("connect from {from} to {server}: {e}"));
        Client {
            conn: BufReader::new(stream),
        }
    }

    /// The next reply, its lines joined with `\n`, or [`CLOSED`]; `None`
    /// when nothing came within `wait`.
    async fn reply_within(&mut self, wait: Duration) -> Option<String> {
        tokio::time::timeout(wait, async {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                match self.conn.read_line(&mut line).await {
                    Ok(0) | Err(_) if lines.is_empty() => return CLOSED.to_string(),
                    Ok(0) | Err(_) => return lines.join("\n"),
                    Ok(_) => {}
                }
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line.trim_end().to_string());
                if last {
                    return lines.join("\n");
                }
            }
        })
        .await
        .ok()
    }

    /// The next reply, or [`CLOSED`]; panics after [`WAIT`].
    async fn reply(&mut self) -> String {
        self.reply_within(WAIT).await.expect("a reply within 30 s")
    }

    /// Sends one command line and reads its reply.
    async fn send(&mut self, line: &str) -> String {
        // A server that has closed may refuse the write: the reply says so.
        let _ = self
            .conn
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await;
        self.reply().await
    }

    /// Greeting and EHLO, checked.
    async fn greeted(from: Ipv4Addr, server: SocketAddr) -> Client {
        let mut c = Client::connect(from, server).await;
        let greeting = c.reply().await;
        assert!(greeting.starts_with("220 "), "{from}: {greeting}");
        let ehlo = c.send("EHLO portal.test").await;
        assert!(ehlo.starts_with("250"), "{from}: {ehlo}");
        c
    }

    /// One session from `from`: EHLO, then AUTH PLAIN as `user` with
    /// `password`; the reply to AUTH.
    async fn auth(from: Ipv4Addr, server: SocketAddr, user: &str, password: &str) -> String {
        let mut c = Client::greeted(from, server).await;
        let plain =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        c.send(&format!("AUTH PLAIN {plain}")).await
    }
}

/// Asks `check` every 250 ms until it gives something, for at most `wait`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    wait: Duration,
    mut check: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each argon2 verification takes about 19 MiB: 150 at once took the process
/// from 20 MB to 1.34 GB. They wait for one of a few places
/// (`[smtp] max_concurrent_auth`, default 4), so the peak stays small and
/// every client still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_failed_auths_run_a_bounded_number_of_password_checks_at_once() {
    let site = site("");
    let serve = start(&site);
    let server = site.submission;
    let mut clients = JoinSet::new();
    for i in 0..150u8 {
        // Distinct addresses and names: no throttle stands in for the bound.
        let from = Ipv4Addr::new(127, 0, 1, i + 1);
        clients
            .spawn(async move { Client::auth(from, server, &format!("nobody-{i}"), WRONG).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = clients.join_next().await {
        replies.push(reply.unwrap());
    }
    for reply in &replies {
        assert!(
            reply.starts_with("535 5.7.8 ") || reply.starts_with("454 4.7.0 "),
            "{reply}\n{}",
            serve.log()
        );
    }
    let checked = replies.iter().filter(|r| r.starts_with("535 ")).count();
    assert!(checked >= 100, "{checked} of 150 checked: {replies:?}");
    let peak = peak_rss_kib(serve.pid());
    eprintln!(
        "peak resident memory after 150 parallel AUTHs: {} MiB",
        peak / 1024
    );
    // Unbounded, 150 verifications would take about 2.8 GiB.
    assert!(
        peak < 400 * 1024,
        "peak resident memory {} MiB after 150 parallel AUTHs",
        peak / 1024
    );
}

/// 50 wrong passwords from one address in two seconds were all answered
/// 535 without delay. After `max_auth_failures_per_address` (default 10)
/// failures within the window, AUTH from that address is refused with
/// `454 4.7.0` without checking anything, even with the right password;
/// other addresses are not held back. Each decision is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auths_from_one_address_are_throttled_with_454_4_7_0() {
    let site = site("");
    let serve = start(&site);
    let from = Ipv4Addr::new(127, 0, 2, 1);
    let mut replies = Vec::new();
    for i in 0..50 {
        // Another name each time: only the address limit applies.
        replies.push(Client::auth(from, site.submission, &format!("guess-{i}"), WRONG).await);
    }
    let first = replies
        .iter()
        .position(|r| r.starts_with("454 4.7.0 "))
        .unwrap_or_else(|| panic!("never throttled: {replies:?}"));
    assert_eq!(first, 10, "{replies:?}");
    assert!(
        replies[first..]
            .iter()
            .all(|r| r.starts_with("454 4.7.0 Too many failed logins from 127.0.2.1")),
        "{replies:?}"
    );
    let right = Client::auth(from, site.submission, ACCOUNT, PASSWORD).await;
    assert!(right.starts_with("454 4.7.0 "), "{right}");
    let other = Client::auth(
        Ipv4Addr::new(127, 0, 2, 2),
        site.submission,
        ACCOUNT,
        PASSWORD,
    )
    .await;
    assert!(other.starts_with("235 2.7.0 "), "{other}");
    let log = serve.log();
    assert!(
        log.lines().any(|l| l.contains("AUTH throttled")
            && l.contains("127.0.2.1")
            && l.contains("guess-")),
        "{log}"
    );
}

/// Guessing one account's password from many addresses: after
/// `max_auth_failures_per_account` (default 10) failures within the window
/// the account is refused with `454 4.7.0` from any address, except one it
/// logged in from before (so an attacker cannot lock a portal out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auths_for_one_account_are_throttled_from_every_new_address() {
    let site = site("");
    let serve = start(&site);
    let portal = Ipv4Addr::LOCALHOST;
    let ok = Client::auth(portal, site.submission, ACCOUNT, PASSWORD).await;
    assert!(ok.starts_with("235 2.7.0 "), "{ok}");
    let mut replies = Vec::new();
    for i in 0..50u8 {
        let from = Ipv4Addr::new(127, 0, 3, i + 1);
        replies.push(Client::auth(from, site.submission, ACCOUNT, WRONG).await);
    }
    let first = replies
        .iter()
        .position(|r| r.starts_with("454 4.7.0 "))
        .unwrap_or_else(|| panic!("never throttled: {replies:?}"));
    assert_eq!(first, 10, "{replies:?}");
    assert!(
        replies[first..]
            .iter()
            .all(|r| r.starts_with("454 4.7.0 Too many failed logins for this account")),
        "{replies:?}"
    );
    let stranger = Ipv4Addr::new(127, 0, 3, 200);
    let right = Client::auth(stranger, site.submission, ACCOUNT, PASSWORD).await;
    assert!(right.starts_with("454 4.7.0 "), "{right}");
    let ok = Client::auth(portal, site.submission, ACCOUNT, PASSWORD).await;
    assert!(ok.starts_with("235 2.7.0 "), "{ok}\n{}", serve.log());
    let log = serve.log();
    assert!(
        log.lines()
            .any(|l| l.contains("AUTH throttled") && l.contains("127.0.3.") && l.contains(ACCOUNT)),
        "{log}"
    );
}

/// The throttle holds for `auth_failure_window_secs` from the first failure
/// counted; then the right password works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_works_again_after_the_throttle_window() {
    let site = site("auth_failure_window_secs = 2\nmax_auth_failures_per_account = 3\n");
    let serve = start(&site);
    for i in 1..=3 {
        let from = Ipv4Addr::new(127, 0, 4, i);
        let reply = Client::auth(from, site.submission, ACCOUNT, WRONG).await;
        assert!(reply.starts_with("535 5.7.8 "), "{reply}");
    }
    let from = Ipv4Addr::new(127, 0, 4, 9);
    let held = Client::auth(from, site.submission, ACCOUNT, PASSWORD).await;
    assert!(held.starts_with("454 4.7.0 "), "{held}\n{}", serve.log());
    let server = site.submission;
    let admitted = eventually(Duration::from_secs(10), || async move {
        let reply = Client::auth(from, server, ACCOUNT, PASSWORD).await;
        reply.starts_with("235 2.7.0 ").then_some(reply)
    })
    .await;
    assert!(admitted.is_some(), "still refused:\n{}", serve.log());
}

/// One client address could take all 200 connection slots, so that every
/// other peer got 421. Now one address holds at most
/// `max_connections_per_address` (default 20) and the next gets
/// `421 4.7.0`; another address still gets in, and a slot given back is
/// free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection_slot() {
    let site = site("");
    let serve = start(&site);
    let hog = Ipv4Addr::new(127, 0, 5, 1);
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..201 {
        let mut c = Client::connect(hog, site.backbone).await;
        let greeting = c.reply().await;
        if greeting.starts_with("220 ") {
            held.push(c);
        } else {
            refused = Some(greeting);
            break;
        }
    }
    let refused = refused.expect("some connection from one address refused");
    assert!(
        refused.starts_with("421 4.7.0 Too many connections from 127.0.5.1"),
        "{refused}"
    );
    assert_eq!(held.len(), 20);
    let mut other = Client::connect(Ipv4Addr::new(127, 0, 5, 2), site.backbone).await;
    let greeting = other.reply().await;
    assert!(greeting.starts_with("220 "), "{greeting}\n{}", serve.log());
    let mut quitter = held.pop().unwrap();
    assert!(quitter.send("QUIT").await.starts_with("221 "));
    drop(quitter);
    let server = site.backbone;
    let again = eventually(Duration::from_secs(10), || async move {
        let mut c = Client::connect(hog, server).await;
        let greeting = c.reply().await;
        greeting.starts_with("220 ").then_some(c)
    })
    .await;
    assert!(again.is_some(), "the freed slot stays taken");
}

/// A client sending NOOP for ever was never closed. Commands that do not
/// move a mail transaction on are counted (`max_commands_without_progress`,
/// default 50); past the limit the session gets `421 4.7.0` and is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sending_only_noop_is_closed_with_421_4_7_0() {
    let site = site("");
    let _serve = start(&site);
    let mut c = Client::greeted(Ipv4Addr::new(127, 0, 6, 1), site.backbone).await;
    let mut end = None;
    for i in 0..1000 {
        let reply = c.send("NOOP").await;
        if !reply.starts_with("250 ") {
            end = Some((i, reply));
            break;
        }
    }
    let (count, reply) = end.expect("1000 NOOPs all answered 250");
    assert!(
        reply.starts_with("421 4.7.0 Too many commands without progress"),
        "after {count} NOOPs: {reply}"
    );
    assert_eq!(c.reply().await, CLOSED);
}

/// A session lives at most `max_session_secs`: a client that keeps it busy
/// with commands in time gets `421 4.4.2` at the end and is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_closed_with_421_4_4_2_at_the_end_of_its_life() {
    let site = site("max_session_secs = 2\n");
    let serve = start(&site);
    let mut c = Client::greeted(Ipv4Addr::new(127, 0, 6, 2), site.backbone).await;
    let started = Instant::now();
    let reply = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let reply = c.send("NOOP").await;
        if !reply.starts_with("250 ") {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still open after 20 s:\n{}",
            serve.log()
        );
    };
    assert!(
        reply.starts_with("421 4.4.2 Session time limit reached"),
        "{reply}"
    );
    assert_eq!(c.reply().await, CLOSED);
}

/// A self-signed TLS certificate for 127.0.0.1 in `site`'s `tls/`.
fn make_tls_certificate(site: &Site) {
    let dir = site.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
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
            &s(&dir.join("server.key")),
            "-out",
            &s(&dir.join("server.pem")),
            "-days",
            "2",
            "-subj",
            "/CN=hisp.a.example",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        b"",
    )
    .ok();
}

/// A client that sent STARTTLS and then nothing held its slot for ever: the
/// handshake now has a deadline (`tls_handshake_timeout_secs`), after which
/// the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_then_silence_is_closed_after_the_handshake_deadline() {
    let site = site(
        "tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\n\
         tls_handshake_timeout_secs = 1\n",
    );
    make_tls_certificate(&site);
    let serve = start(&site);
    let mut c = Client::greeted(Ipv4Addr::new(127, 0, 7, 1), site.backbone).await;
    let ready = c.send("STARTTLS").await;
    assert!(ready.starts_with("220 2.0.0 "), "{ready}");
    let started = Instant::now();
    let end = c.reply_within(Duration::from_secs(10)).await;
    assert_eq!(
        end.as_deref(),
        Some(CLOSED),
        "silent TLS client still connected after {:?}:\n{}",
        started.elapsed(),
        serve.log()
    );
    // The socket closes as the handshake is dropped, just before the line is
    // written.
    let logged = eventually(Duration::from_secs(5), || async {
        serve
            .log()
            .contains("TLS handshake timed out")
            .then_some(())
    })
    .await;
    assert!(logged.is_some(), "{}", serve.log());
}

/// A limit of 0 would refuse every client: `hisp serve` refuses to start,
/// naming the key, before it listens.
#[test]
fn serve_refuses_a_zero_limit() {
    let site = site("max_connections_per_address = 0\n");
    let run = site.run(&["serve"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[smtp] max_connections_per_address is 0: it must be at least 1"),
        "{}",
        run.stderr
    );
}
