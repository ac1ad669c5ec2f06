//! `hisp serve` (and `hisp demo`) processes on loopback for the tests that
//! include this file with `#[path]` (`cli_serve.rs`, `cli_serve_tls.rs`,
//! `cli_serve_acceptance.rs`, `cli_serve_inbound.rs`, `postfix_relay.rs`,
//! `cli_demo.rs`): sites set up through the CLI, the running processes
//! (waited for until they listen, stopped with SIGTERM or SIGKILL, killed
//! when dropped), `swaks`, and a plain SMTP sink that captures what a HISP
//! sends on the backbone. Each test binary uses a subset of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{hisp, hisp_cmd, s, Run};

pub const PASSWORD: &str = "a long portal password";

/// `n` distinct loopback ports free for both TCP and UDP (the DNS responder
/// uses both). The sockets are held until all are chosen, so no port repeats.
pub fn free_ports(n: usize) -> Vec<u16> {
    // Ports below the kernel's ephemeral range (32768 up on Linux): a port
    // handed out by bind(0) is released before `hisp serve` binds it, and
    // in that gap the kernel may give it to another test's outgoing
    // connection. Each test process starts at its own offset.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let base = 20_000 + (std::process::id() * 7919) % 12_000;
    let mut held = Vec::new();
    while held.len() < n {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20_000 + (base - 20_000 + step) % 12_000) as u16;
        let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, udp, tcp));
        }
    }
    held.into_iter().map(|(port, _, _)| port).collect()
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What a site's `hisp.toml` says beyond its own listeners.
#[derive(Clone, Copy)]
pub struct Settings {
    /// `[discovery] nameservers`: the one name server asked.
    pub nameserver: SocketAddr,
    /// `[[route]]` for the peer's domain; with `by_mx`, the port its MX
    /// host is reached on instead.
    pub route_to: SocketAddr,
    /// No `[[route]]`: the peer's domain is reached through its MX record
    /// (served by the peer's DNS responder) on `route_to`'s port.
    pub by_mx: bool,
    /// `[smtp] max_message_size`, when not the default.
    pub max_message_size: Option<usize>,
}

/// One HISP's directory, addresses and configuration.
pub struct Site {
    dir: tempfile::TempDir,
    /// Whole lines every `hisp.toml` of the site ends with (its `[store]`).
    store: String,
    pub domain: &'static str,
    pub peer_domain: &'static str,
    pub submission: SocketAddr,
    pub backbone: SocketAddr,
    pub dns: SocketAddr,
}

impl Site {
    pub fn new(domain: &'static str, peer_domain: &'static str, ports: &[u16]) -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
            store: String::new(),
            domain,
            peer_domain,
            submission: loopback(ports[0]),
            backbone: loopback(ports[1]),
            dns: loopback(ports[2]),
        }
    }

    /// [`Site::new`], its store the one `store` (whole lines, a `[store]`
    /// table) names.
    pub fn on_store(
        domain: &'static str,
        peer_domain: &'static str,
        ports: &[u16],
        store: &str,
    ) -> Site {
        Site {
            store: store.to_string(),
            ..Site::new(domain, peer_domain, ports)
        }
    }

    /// Submission, backbone and DNS responder: what a start waits for.
    pub fn listeners(&self) -> [SocketAddr; 3] {
        [self.submission, self.backbone, self.dns]
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("hisp.toml")
    }

    /// The CA made by `hisp cert ca` into `<data_dir>/ca`.
    pub fn ca_pem(&self) -> PathBuf {
        self.path("data/ca/ca.pem")
    }

    /// The directory `hisp cert issue` wrote `address`'s cert.pem and key.pem into.
    pub fn cert_dir(&self, address: &str) -> PathBuf {
        self.path(&format!("certs/{address}"))
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config())];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, stdin)
    }

    /// (Re)writes `hisp.toml`; the listeners stay where they are.
    pub fn write_config(&self, settings: Settings) {
        self.write_config_with_smtp(settings, "");
    }

    /// [`write_config`](Self::write_config) with `smtp` (whole lines) added
    /// to the `[smtp]` table, such as the TLS keys.
    pub fn write_config_with_smtp(&self, settings: Settings, smtp: &str) {
        let size = settings
            .max_message_size
            .map_or_else(String::new, |n| format!("max_message_size = {n}\n"));
        let route = if settings.by_mx {
            format!("relay_port = {}\n", settings.route_to.port())
        } else {
            String::new()
        };
        let mut text = format!(
            "data_dir = \"data\"\n\
             [log]\nlevel = \"info\"\n\
             [smtp]\nsubmission_listen = \"{}\"\nbackbone_listen = \"{}\"\nhostname = \"hisp.{}\"\n{size}{route}{smtp}\
             [discovery]\nnameservers = [\"{}\"]\n\
             [dns_responder]\nlisten = \"{}\"\nmail_ip = \"127.0.0.1\"\n",
            self.submission,
            self.backbone,
            self.domain,
            settings.nameserver,
            self.dns,
        );
        if !settings.by_mx {
            text.push_str(&format!(
                "[[route]]\ndomain = \"{}\"\nto = \"{}\"\n",
                self.peer_domain, settings.route_to
            ));
        }
        text.push_str(&self.store);
        std::fs::write(self.config(), text).unwrap();
    }

    pub fn mailbox(&self, address: &str) -> Vec<Value> {
        let run = self.run(&["mailbox", "list", address, "--json"], b"").ok();
        let json: Value = serde_json::from_slice(&run.stdout).expect("mailbox list --json");
        json.as_array().expect("an array").clone()
    }

    /// One message of a mailbox exactly as stored.
    pub fn mailbox_show(&self, entry: &Value) -> Vec<u8> {
        self.run(&["mailbox", "show", &entry["id"].to_string()], b"")
            .ok()
            .stdout
    }

    /// [`mailbox_show`](Self::mailbox_show) as text.
    pub fn mailbox_text(&self, entry: &Value) -> String {
        String::from_utf8_lossy(&self.mailbox_show(entry)).into_owned()
    }

    pub fn queue(&self) -> String {
        self.run(&["queue", "list"], b"").stdout_text()
    }

    /// `hisp queue list --json`.
    pub fn queue_entries(&self) -> Vec<Value> {
        let run = self.run(&["queue", "list", "--json"], b"").ok();
        let json: Value = serde_json::from_slice(&run.stdout).expect("queue list --json");
        json.as_array().expect("an array").clone()
    }
}

/// How [`two_sites_with`] gives each site's address its certificate.
#[derive(Clone, Copy)]
pub enum Certs {
    /// `hisp cert issue` into [`Site::cert_dir`], then `address add --cert
    /// --key`: the test holds the key too.
    Issued,
    /// `address add --cert-from <data_dir>/ca`, as a newcomer does.
    FromCa,
}

/// Two sites, A (a.example, pat@a.example, account portal-a) and B
/// (b.example, doc@b.example, account ehr-b), each trusting the other's CA.
/// Each discovers through the other's DNS responder and routes to the
/// other's backbone unless `a_settings` says otherwise for A. Nothing runs yet.
pub fn two_sites(a_settings: impl FnOnce(&Site, &Site) -> Settings) -> (Site, Site) {
    two_sites_with(Certs::Issued, a_settings)
}

/// [`two_sites`], the addresses' certificates made as `certs` says.
pub fn two_sites_with(
    certs: Certs,
    a_settings: impl FnOnce(&Site, &Site) -> Settings,
) -> (Site, Site) {
    two_sites_on(certs, a_settings, "")
}

/// [`two_sites_with`], B's store the one `b_store` (a `[store]` table)
/// names.
pub fn two_sites_on(
    certs: Certs,
    a_settings: impl FnOnce(&Site, &Site) -> Settings,
    b_store: &str,
) -> (Site, Site) {
    let ports = free_ports(6);
    let a = Site::new("a.example", "b.example", &ports[..3]);
    let b = Site::on_store("b.example", "a.example", &ports[3..], b_store);
    b.write_config(peers(&b, &a));
    a.write_config(a_settings(&a, &b));
    // Each CA must exist before the other site takes it as an anchor: make
    // both first, then provision.
    a.run(&["cert", "ca", "--cn", "a.example CA"], b"").ok();
    b.run(&["cert", "ca", "--cn", "b.example CA"], b"").ok();
    a.provision("pat@a.example", "portal-a", &b.ca_pem(), certs);
    b.provision("doc@b.example", "ehr-b", &a.ca_pem(), certs);
    (a, b)
}

impl Site {
    /// Its domain, one address with a certificate from the site's CA made
    /// as `certs` says, `peer_ca` as an anchor both ways, and a portal
    /// account that may send as the address.
    fn provision(&self, address: &str, account: &str, peer_ca: &Path, certs: Certs) {
        self.run(&["domain", "add", self.domain], b"").ok();
        match certs {
            Certs::Issued => {
                let dir = self.cert_dir(address);
                self.run(
                    &["cert", "issue", "--address", address, "--out", &s(&dir)],
                    b"",
                )
                .ok();
                let (cert, key) = (s(&dir.join("cert.pem")), s(&dir.join("key.pem")));
                self.run(
                    &["address", "add", address, "--cert", &cert, "--key", &key],
                    b"",
                )
                .ok();
            }
            Certs::FromCa => {
                let ca = s(&self.path("data/ca"));
                self.run(&["address", "add", address, "--cert-from", &ca], b"")
                    .ok();
            }
        }
        self.run(&["anchor", "add", self.domain, &s(peer_ca)], b"")
            .ok();
        self.run(
            &["user", "add", account, "--password-stdin"],
            format!("{PASSWORD}\n").as_bytes(),
        )
        .ok();
        self.run(&["user", "grant", account, address], b"").ok();
    }
}

/// The settings that make A and B talk to each other.
pub fn peers(_a: &Site, b: &Site) -> Settings {
    Settings {
        nameserver: b.dns,
        route_to: b.backbone,
        by_mx: false,
        max_message_size: None,
    }
}

/// A running `hisp serve` or `hisp demo`, killed when dropped if it is
/// still running.
pub struct Serve {
    child: Child,
    command: &'static str,
    log: PathBuf,
    stdout: PathBuf,
}

impl Serve {
    /// Starts `hisp serve` for `site` and waits until its three listeners
    /// take connections. `name` tells apart the logs of several starts.
    pub fn start(site: &Site, name: &str) -> Serve {
        let log = site.path(&format!("{name}.log"));
        let patience = Duration::from_secs(20);
        Serve::launch("serve", &site.config(), log, &site.listeners(), patience)
    }

    /// Starts `hisp --config <config> <command>`, its log (stderr) going to
    /// `log` and its stdout to the same path ending in `.out`, and waits
    /// until each of `listeners` takes a TCP connection, for at most
    /// `patience` each; panics with the log if it exits or does not listen.
    pub fn launch(
        command: &'static str,
        config: &Path,
        log: PathBuf,
        listeners: &[SocketAddr],
        patience: Duration,
    ) -> Serve {
        Serve::launch_env(command, config, log, listeners, patience, &[])
    }

    /// As [`Serve::launch`], with `env` set for the process.
    pub fn launch_env(
        command: &'static str,
        config: &Path,
        log: PathBuf,
        listeners: &[SocketAddr],
        patience: Duration,
        env: &[(&str, &str)],
    ) -> Serve {
        let stdout = log.with_extension("out");
        let child = hisp_cmd(["--config", &s(config), command])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("hisp {command} starts: {e}"));
        let mut serve = Serve {
            child,
            command,
            log,
            stdout,
        };
        for &addr in listeners {
            let deadline = Instant::now() + patience;
            while TcpStream::connect(addr).is_err() {
                if let Ok(Some(status)) = serve.child.try_wait() {
                    panic!("hisp {command} exited with {status}:\n{}", serve.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "hisp {command} did not listen on {addr}:\n{}",
                    serve.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        serve
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has printed to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Sends SIGTERM and returns the exit code, waiting at most 30 s.
    pub fn terminate(&mut self) -> Option<i32> {
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
                "hisp {} did not stop within 30 s of SIGTERM:\n{}",
                self.command,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its exit code once it has exited on its own, waiting at most
    /// `patience`; `None` if it still runs then.
    pub fn exit_within(&mut self, patience: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no drain, no clean stop.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL to hisp");
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `swaks` run against `server`, built up before it runs.
pub struct Swaks {
    cmd: Command,
}

impl Swaks {
    /// A session with `server` and no envelope yet (for `--quit-after`).
    pub fn at(server: SocketAddr) -> Swaks {
        let mut cmd = Command::new("swaks");
        cmd.args(["--server", "127.0.0.1", "--port"])
            .arg(server.port().to_string())
            .args(["--timeout", "60"])
            .stdin(Stdio::null());
        Swaks { cmd }
    }

    pub fn to(server: SocketAddr, from: &str, to: &str) -> Swaks {
        Swaks::at(server).args(["--from", from, "--to", to])
    }

    /// AUTH PLAIN over loopback with [`PASSWORD`].
    pub fn auth(self, account: &str) -> Swaks {
        self.auth_with(account, PASSWORD)
    }

    /// AUTH PLAIN over loopback with `password`.
    pub fn auth_with(mut self, account: &str, password: &str) -> Swaks {
        self.cmd
            .args(["--auth", "PLAIN", "--auth-user", account])
            .args(["--auth-password", password]);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Swaks {
        self.cmd.args(args);
        self
    }

    pub fn run(mut self) -> Transcript {
        let out: Output = self.cmd.output().expect("swaks runs");
        Transcript {
            success: out.status.success(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// What swaks printed, and whether it ended with success.
pub struct Transcript {
    pub success: bool,
    pub text: String,
}

impl Transcript {
    /// The line of the server reply swaks marks `<**` (a refusal).
    pub fn refusal(&self) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("<** "))
            .map(str::trim_end)
    }

    pub fn queued(&self) -> bool {
        self.success && self.text.contains("<-  250 2.0.0 Ok: queued as")
    }
}

/// Polls `address`'s inbox at `site` until it holds `count` messages, for
/// at most `wait`; the entries then, or a panic with the queue and logs.
pub fn wait_for_inbox(
    site: &Site,
    address: &str,
    count: usize,
    wait: Duration,
    logs: &[&Serve],
) -> Vec<Value> {
    eventually(
        wait,
        || Some(site.mailbox(address)).filter(|entries| entries.len() >= count),
        || {
            let logs: Vec<String> = logs.iter().map(|l| l.log()).collect();
            format!(
                "{} of {count} messages in {address}'s inbox; queue:\n{}\nlogs:\n{}",
                site.mailbox(address).len(),
                site.queue(),
                logs.join("\n----\n")
            )
        },
    )
}

/// The first message in `address`'s inbox at `site`, waiting up to 30 s.
pub fn first_in_inbox(site: &Site, address: &str, logs: &[&Serve]) -> Value {
    wait_for_inbox(site, address, 1, Duration::from_secs(30), logs).swap_remove(0)
}

/// Asks `check` every 250 ms until it finds something, for at most `wait`;
/// what it found, or a panic with what `explain` says was there instead.
pub fn eventually<T>(
    wait: Duration,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = check() {
            return found;
        }
        if Instant::now() >= deadline {
            panic!("not within {wait:?}: {}", explain());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A plain SMTP server on loopback that accepts every message and hands
/// its DATA (dot-unstuffed, CRLF line ends) to the test: a tap on the
/// backbone. Stopped when dropped.
pub struct Sink {
    pub addr: SocketAddr,
    messages: mpsc::Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    pub fn start() -> Sink {
        Sink::start_on(loopback(0))
    }

    /// A sink on `addr` (a port chosen earlier, say for a smart host that
    /// comes up late).
    pub fn start_on(addr: SocketAddr) -> Sink {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, messages) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // A session that breaks off is the client's problem;
                        // the sink takes the next connection.
                        let _ = sink_session(stream, &tx);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Sink {
            addr,
            messages,
            stop,
            thread: Some(thread),
        }
    }

    /// The first message received within `wait`.
    pub fn message(&self, wait: Duration) -> Option<Vec<u8>> {
        self.messages.recv_timeout(wait).ok()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One SMTP session (RFC 5321 §4.1 minimal: EHLO/HELO, MAIL, RCPT, DATA,
/// RSET, NOOP, QUIT), every message sent to `tx`.
fn sink_session(stream: TcpStream, tx: &mpsc::Sender<Vec<u8>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 sink.test ESMTP\r\n")?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let verb = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = Vec::new();
            loop {
                line.clear();
                if input.read_until(b'\n', &mut line)? == 0 {
                    return Ok(());
                }
                let text = line.strip_suffix(b"\r\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\n").unwrap_or(text);
                if text == b"." {
                    break;
                }
                // RFC 5321 §4.5.2: a leading dot was doubled by the sender.
                let text = text.strip_prefix(b".").unwrap_or(text);
                data.extend_from_slice(text);
                data.extend_from_slice(b"\r\n");
            }
            let _ = tx.send(data);
            b"250 2.0.0 captured\r\n"
        } else if verb.starts_with("QUIT") {
            out.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            b"250 2.0.0 ok\r\n"
        };
        out.write_all(reply)?;
    }
}

/// Appends `text` (whole lines: a `[queue]` table, a `[[route]]`) to
/// `site`'s configuration.
pub fn append_config(site: &Site, text: &str) {
    let mut config = std::fs::read_to_string(site.config()).unwrap();
    config.push_str(text);
    std::fs::write(site.config(), config).unwrap();
}

/// One SMTP reply, all its lines.
pub fn reply(input: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        input.read_line(&mut line).expect("a reply line");
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return all;
        }
    }
}
