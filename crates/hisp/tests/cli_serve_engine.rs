//! The queue engine of `hisp serve` (issue 13, "A queue engine", "One
//! destination that is slow or down never holds up the others", the retry
//! schedule and `hisp queue retry`), through real `hisp serve` processes
//! over loopback: A (a.example) sends to B (b.example) and, in the first
//! test, to c.example, which B hosts (so that B's DNS responder publishes
//! its certificate) but which A routes to a peer that accepts TCP and never
//! answers.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use common::s;
use serde_json::Value;
use serve::{
    append_config, eventually, free_ports, loopback, peers, reply, two_sites, wait_for_inbox,
    Serve, Settings, Sink, Site, Swaks, PASSWORD,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// B also hosts `domain` with the address doc@`domain` (a certificate from
/// B's CA, which A trusts), so that B's DNS responder publishes it.
fn host_at_b(b: &Site, domain: &str) {
    b.run(&["domain", "add", domain], b"").ok();
    let ca = s(&b.path("data/ca"));
    let address = format!("doc@{domain}");
    b.run(&["address", "add", &address, "--cert-from", &ca], b"")
        .ok();
}

/// A submission session of pat@a.example's account (portal-a) at A, for
/// sending many messages over one connection.
struct Submitter {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Submitter {
    fn connect(server: SocketAddr) -> Submitter {
        let stream = TcpStream::connect(server).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let out = stream.try_clone().unwrap();
        let mut s = Submitter {
            out,
            input: BufReader::new(stream),
        };
        s.expect("", "220");
        s.expect("EHLO portal.a.example\r\n", "250");
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0portal-a\0{PASSWORD}"));
        s.expect(&format!("AUTH PLAIN {token}\r\n"), "235");
        s
    }

    /// Sends `command` (nothing when empty) and checks the reply's code.
    fn expect(&mut self, command: &str, code: &str) -> String {
        if !command.is_empty() {
            self.out.write_all(command.as_bytes()).unwrap();
        }
        let answer = reply(&mut self.input);
        assert!(answer.starts_with(code), "{command:?} -> {answer}");
        answer
    }

    /// Submits one message from pat@a.example to `to` with `message_id`
    /// (without angle brackets); asserts the 250.
    fn send(&mut self, to: &str, subject: &str, message_id: &str) {
        self.expect("MAIL FROM:<pat@a.example>\r\n", "250");
        self.expect(&format!("RCPT TO:<{to}>\r\n"), "250");
        self.expect("DATA\r\n", "354");
        let date = "Mon, 1 Jan 2024 00:00:00 +0000";
        let message = format!(
            "From: pat@a.example\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Message-ID: <{message_id}>\r\nDate: {date}\r\n\r\nhello\r\n.\r\n"
        );
        self.expect(&message, "250");
    }
}

/// A raw TCP peer that accepts and never writes a byte, counting how many
/// connections are open at once (one closes when the client gives up).
struct SilentPeer {
    addr: SocketAddr,
    most: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentPeer {
    fn start() -> SilentPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, most, accepted) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (o, m, a, stopped) = (open.clone(), most.clone(), accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(now, Ordering::SeqCst);
                        let (o, stopped) = (o.clone(), stopped.clone());
                        held.push(std::thread::spawn(move || {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_millis(100)))
                                .unwrap();
                            let mut buf = [0u8; 512];
                            // Never a byte back; the client closing ends it.
                            while !stopped.load(Ordering::Relaxed) {
                                match stream.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(_) => {}
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                            o.fetch_sub(1, Ordering::SeqCst);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for h in held {
                let _ = h.join();
            }
        });
        SilentPeer {
            addr,
            most,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The recipient addresses of a `queue list --json` entry.
fn recipients_of(entry: &Value) -> Vec<String> {
    entry["recipients"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| r["address"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn is_for(entry: &Value, domain: &str) -> bool {
    recipients_of(entry)
        .iter()
        .any(|r| r.ends_with(&format!("@{domain}")))
}

fn time_of(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

#[test]
fn a_destination_that_never_answers_holds_only_its_own_slots_issue_13() {
    let (a, b) = two_sites(peers);
    host_at_b(&b, "c.example");
    let silent = SilentPeer::start();
    // The greeting is waited for 3 s; then the attempt is a temporary
    // failure, retried a second later.
    a.write_config_with_smtp(peers(&a, &b), "relay_command_timeout_secs = 3\n");
    append_config(
        &a,
        &format!(
            "[[route]]\ndomain = \"c.example\"\nto = \"{}\"\n\
             [queue]\nconcurrency = 8\nper_destination = 2\nretry_base_secs = 1\nretry_max_secs = 2\n",
            silent.addr
        ),
    );
    let serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");

    let mut portal = Submitter::connect(a.submission);
    for n in 0..16 {
        portal.send(
            "doc@c.example",
            "to a silent peer",
            &format!("c-{n}@a.example"),
        );
    }
    eventually(
        Duration::from_secs(20),
        || (silent.accepted.load(Ordering::SeqCst) > 0).then_some(()),
        || format!("A never connected to the silent peer:\n{}", serve_a.log()),
    );
    for n in 0..100 {
        portal.send(
            "doc@b.example",
            "to a healthy peer",
            &format!("b-{n}@a.example"),
        );
    }
    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        100,
        Duration::from_secs(90),
        &[&serve_a, &serve_b],
    );
    assert_eq!(entries.len(), 100);
    // The silent peer never held more than its share of A's slots.
    let most = silent.most.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&most),
        "the silent peer held {most} connections at once; [queue] per_destination is 2"
    );
    // Its messages wait, and are tried again later.
    let retried = eventually(
        Duration::from_secs(30),
        || {
            let c: Vec<Value> = a
                .queue_entries()
                .into_iter()
                .filter(|e| is_for(e, "c.example"))
                .collect();
            c.iter()
                .any(|e| e["attempts"].as_u64().unwrap_or(0) >= 2)
                .then_some(c)
        },
        || format!("no retry at the silent peer:\n{}", a.queue()),
    );
    assert_eq!(retried.len(), 16);
    for e in &retried {
        assert_eq!(e["state"], "pending", "{e}");
        assert_eq!(e["recipients"][0]["state"], "queued", "{e}");
    }
    let why = retried
        .iter()
        .find_map(|e| e["last_error"].as_str())
        .expect("a deferred entry says why");
    assert!(why.contains("did not answer in time"), "{why}");
    assert!(silent.most.load(Ordering::SeqCst) <= 2);
}

#[test]
fn every_message_arrives_exactly_once_after_the_sender_is_killed_mid_flight_issue_13() {
    const TOTAL: usize = 500;
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let mut serve_a = Serve::start(&a, "a");

    let ids: Vec<String> = (0..TOTAL).map(|n| format!("kill-{n}@a.example")).collect();
    let senders: Vec<JoinHandle<()>> = ids
        .chunks(TOTAL / 4)
        .map(|chunk| {
            let (server, chunk) = (a.submission, chunk.to_vec());
            std::thread::spawn(move || {
                let mut portal = Submitter::connect(server);
                for id in chunk {
                    portal.send("doc@b.example", "in flight", &id);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("every message is queued at A");
    }
    // Some have arrived, not all: kill A in the middle of the flow.
    let arrived = eventually(
        Duration::from_secs(60),
        || Some(b.mailbox("doc@b.example").len()).filter(|n| *n >= 20),
        || format!("nothing arrives at B:\n{}", serve_a.log()),
    );
    serve_a.kill_9();
    let at_kill = b.mailbox("doc@b.example").len();
    assert!(
        at_kill < TOTAL,
        "all {at_kill} had arrived before the kill ({arrived} when seen): nothing was in flight"
    );

    let serve_a = Serve::start(&a, "a-again");
    wait_for_inbox(
        &b,
        "doc@b.example",
        TOTAL,
        Duration::from_secs(240),
        &[&serve_a, &serve_b],
    );
    // A has nothing left to send, so nothing more can arrive.
    eventually(
        Duration::from_secs(60),
        || {
            a.queue_entries()
                .iter()
                .filter(|e| e["direction"] == "outbound" && is_for(e, "b.example"))
                .all(|e| e["state"] == "done")
                .then_some(())
        },
        || format!("A's queue:\n{}", a.queue()),
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in b.mailbox("doc@b.example") {
        let id = entry["message_id"].as_str().unwrap_or_default().to_string();
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "filed more than once: {twice:?}");
    let expected: Vec<String> = {
        let mut v: Vec<String> = ids.iter().map(|id| format!("<{id}>")).collect();
        v.sort();
        v
    };
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), expected);
}

#[test]
fn a_message_between_idle_instances_waits_for_no_poll_of_the_queue_issue_13() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");
    // Both are idle: nothing queued, nothing due.
    std::thread::sleep(Duration::from_millis(1500));
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: one message"])
        .run();
    assert!(out.queued(), "{}", out.text);
    wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(30),
        &[&serve_a, &serve_b],
    );
    // The MDNs come back: A's tracking completes.
    eventually(
        Duration::from_secs(30),
        || {
            let list = a.run(&["message", "list", "--json"], b"").ok();
            let json: Value = serde_json::from_slice(&list.stdout).unwrap();
            (json[0]["recipients"][0]["state"] == "delivered").then_some(())
        },
        || format!("A's queue:\n{}\nlog:\n{}", a.queue(), serve_a.log()),
    );
    // Every hop (A's relay, B's filing, B's MDNs, A's reading of them) was
    // taken up as soon as it was queued: no poll interval in between.
    let mut hops = 0;
    for (site, name) in [(&a, "A"), (&b, "B")] {
        for e in site.queue_entries() {
            let queued = time_of(&e["queued_at"]).expect("queued_at");
            let first = time_of(&e["first_attempt_at"]).expect("first_attempt_at");
            let waited = first - queued;
            assert!(
                waited < time::Duration::milliseconds(500),
                "{name}'s queue entry {} waited {waited} before its first attempt: {e}",
                e["id"]
            );
            hops += 1;
        }
    }
    assert!(hops >= 4, "the message, its MDNs at B and at A: {hops}");
}

#[test]
fn queue_retry_makes_a_deferred_message_due_at_once_on_a_running_server_issue_13() {
    let (a, b) = two_sites(peers);
    // A routes b.example to a port where nothing listens yet, and would
    // wait an hour before trying again.
    let port = free_ports(1)[0];
    a.write_config(Settings {
        route_to: loopback(port),
        ..peers(&a, &b)
    });
    append_config(&a, "[queue]\nretry_base_secs = 3600\n");
    let _serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: retried by hand"])
        .run();
    assert!(out.queued(), "{}", out.text);
    let deferred = eventually(
        Duration::from_secs(30),
        || {
            a.queue_entries().into_iter().find(|e| {
                e["state"] == "pending" && e["attempts"] == 1 && e["last_error"].is_string()
            })
        },
        || format!("A's queue:\n{}\nlog:\n{}", a.queue(), serve_a.log()),
    );
    let next = time_of(&deferred["next_attempt_at"]).unwrap();
    assert!(next > OffsetDateTime::now_utc() + time::Duration::minutes(50));

    // The peer is back; the administrator asks for a retry.
    let sink = Sink::start_on(loopback(port));
    let id = deferred["id"].to_string();
    let run = a.run(&["queue", "retry", &id], b"").ok();
    assert_eq!(
        run.stdout_text(),
        format!("due now: 1 queue entry ({id})\n")
    );
    let sent = sink
        .message(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("A did not retry at once:\n{}", serve_a.log()));
    assert!(
        String::from_utf8_lossy(&sent).contains("application/pkcs7-mime"),
        "sealed"
    );
    let done = eventually(
        Duration::from_secs(20),
        || {
            a.queue_entries()
                .into_iter()
                .find(|e| e["id"] == deferred["id"] && e["state"] == "done")
        },
        || format!("A's queue:\n{}", a.queue()),
    );
    assert_eq!(done["attempts"], 2);

    // A finished entry is not retried; --all finds nothing left waiting.
    let run = a.run(&["queue", "retry", &id], b"");
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("it is done: only pending entries are retried"),
        "{}",
        run.stderr
    );
    let run = a.run(&["queue", "retry", "--all", "--json"], b"").ok();
    let json: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json, serde_json::json!({ "due_now": [] }));
    let run = a.run(&["queue", "retry"], b"");
    assert_eq!(run.code, 2, "ID or --all: {}", run.stderr);
}
