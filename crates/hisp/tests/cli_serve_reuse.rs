//! Outbound connection reuse (issue 13): through real `hisp serve` processes over
//! loopback, A (a.example) sends many messages to one peer over a handful of SMTP
//! sessions (counted by a proxy in front of B that sees every connection and
//! every command A writes), a kept session that B closed by restarting costs no
//! failed attempt, and MAIL FROM and RCPT TO go in one write only to a server that
//! offers PIPELINING (RFC 2920), counted at recording peers.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use common::s;
use serde_json::Value;
use serve::{
    append_config, eventually, peers, reply, two_sites, wait_for_inbox, Serve, Settings, Site,
    PASSWORD,
};

/// Submits one message from pat@a.example to `to` for each of `ids` (Message-IDs
/// without angle brackets) over one AUTH session at `server`; asserts each 250.
fn submit(server: SocketAddr, to: &[&str], ids: &[String]) {
    let stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    let mut expect = |command: &str, code: &str| {
        if !command.is_empty() {
            out.write_all(command.as_bytes()).unwrap();
        }
        let answer = reply(&mut input);
        assert!(answer.starts_with(code), "{command:?} -> {answer}");
    };
    expect("", "220");
    expect("EHLO portal.a.example\r\n", "250");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0portal-a\0{PASSWORD}"));
    expect(&format!("AUTH PLAIN {token}\r\n"), "235");
    for id in ids {
        expect("MAIL FROM:<pat@a.example>\r\n", "250");
        for rcpt in to {
            expect(&format!("RCPT TO:<{rcpt}>\r\n"), "250");
        }
        expect("DATA\r\n", "354");
        let message = format!(
            "From: pat@a.example\r\nTo: {}\r\nSubject: reuse\r\nMessage-ID: <{id}>\r\n\
             Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhello\r\n.\r\n",
            to.join(", ")
        );
        expect(&message, "250");
    }
    expect("QUIT\r\n", "221");
}

/// `total` messages to `to`, submitted over `connections` sessions at once.
fn submit_in_parallel(
    server: SocketAddr,
    to: &'static [&'static str],
    prefix: &str,
    total: usize,
    connections: usize,
) {
    let ids: Vec<String> = (0..total)
        .map(|n| format!("{prefix}-{n}@a.example"))
        .collect();
    let threads: Vec<JoinHandle<()>> = ids
        .chunks(total.div_ceil(connections))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            std::thread::spawn(move || submit(server, to, &chunk))
        })
        .collect();
    for t in threads {
        t.join().expect("every message is queued at A");
    }
}

/// A's outbound queue entries for `domain`, once none is pending any more.
fn finished_entries(site: &Site, domain: &str, count: usize, log: &Serve) -> Vec<Value> {
    eventually(
        Duration::from_secs(60),
        || {
            let entries: Vec<Value> = site
                .queue_entries()
                .into_iter()
                .filter(|e| {
                    e["direction"] == "outbound"
                        && e["recipients"][0]["address"]
                            .as_str()
                            .is_some_and(|a| a.ends_with(&format!("@{domain}")))
                })
                .collect();
            (entries.len() == count && entries.iter().all(|e| e["state"] == "done"))
                .then_some(entries)
        },
        || format!("A's queue:\n{}\nlog:\n{}", site.queue(), log.log()),
    )
}

/// Every entry finished at its first attempt: no failed attempt anywhere.
fn assert_first_attempt_each(entries: &[Value]) {
    let retried: Vec<&Value> = entries.iter().filter(|e| e["attempts"] != 1).collect();
    assert!(
        retried.is_empty(),
        "entries that needed more than one attempt: {retried:#?}"
    );
}

/// A TCP proxy in front of an SMTP server that counts the connections made
/// through it and reads what the client writes: each MAIL FROM, and each read
/// that carried MAIL FROM together with a RCPT TO (a pipelined group, RFC 2920).
struct Proxy {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    mails: Arc<AtomicUsize>,
    grouped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = [(); 3].map(|()| Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let [connections, mails, grouped] = counters.clone();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        connections.fetch_add(1, Ordering::SeqCst);
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        let (mails, grouped) = (mails.clone(), grouped.clone());
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || {
                            pipe(client, server, |chunk| {
                                let text = String::from_utf8_lossy(chunk).to_ascii_uppercase();
                                let n = text.matches("MAIL FROM:").count();
                                mails.fetch_add(n, Ordering::SeqCst);
                                if n > 0 && text.contains("RCPT TO:") {
                                    grouped.fetch_add(1, Ordering::SeqCst);
                                }
                            })
                        });
                        std::thread::spawn(move || pipe(s2, c2, |_| {}));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        let [connections, mails, grouped] = counters;
        Proxy {
            addr,
            connections,
            mails,
            grouped,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to`, showing each read to `inspect`; when `from` ends, ends
/// `to`'s writing side too (a closed server closes the client's connection).
fn pipe(mut from: TcpStream, mut to: TcpStream, mut inspect: impl FnMut(&[u8])) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                inspect(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[test]
fn two_hundred_messages_to_one_peer_travel_over_a_handful_of_sessions_issue_13() {
    const TOTAL: usize = 200;
    let (a, b) = two_sites(peers);
    let proxy = Proxy::start(b.backbone);
    a.write_config(Settings {
        route_to: proxy.addr,
        ..peers(&a, &b)
    });
    append_config(&a, "[queue]\nper_destination = 4\n");
    let serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");

    submit_in_parallel(a.submission, &["doc@b.example"], "many", TOTAL, 4);
    let inbox = wait_for_inbox(
        &b,
        "doc@b.example",
        TOTAL,
        Duration::from_secs(120),
        &[&serve_a, &serve_b],
    );
    assert_eq!(inbox.len(), TOTAL, "each message filed once");
    let entries = finished_entries(&a, "b.example", TOTAL, &serve_a);
    assert_first_attempt_each(&entries);

    let connections = proxy.connections.load(Ordering::SeqCst);
    assert!(
        (1..=8).contains(&connections),
        "{TOTAL} messages took {connections} SMTP sessions; [queue] per_destination is 4"
    );
    assert_eq!(
        proxy.mails.load(Ordering::SeqCst),
        TOTAL,
        "one transaction each"
    );
    // B offers PIPELINING: MAIL FROM and RCPT TO went in one write each time.
    assert_eq!(proxy.grouped.load(Ordering::SeqCst), TOTAL);
}

#[test]
fn a_peer_that_closes_the_kept_session_costs_no_failed_attempt_issue_13() {
    let (a, b) = two_sites(peers);
    // Sessions are kept long enough to outlive B's restart.
    a.write_config_with_smtp(peers(&a, &b), "relay_session_idle_secs = 120\n");
    let serve_a = Serve::start(&a, "a");
    let mut serve_b = Serve::start(&b, "b");
    submit_in_parallel(a.submission, &["doc@b.example"], "before", 10, 2);
    wait_for_inbox(
        &b,
        "doc@b.example",
        10,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );
    finished_entries(&a, "b.example", 10, &serve_a);

    // B restarts: its listener says 421 to the sessions A keeps and closes them.
    assert_eq!(serve_b.terminate(), Some(0));
    let serve_b = Serve::start(&b, "b-again");
    submit_in_parallel(a.submission, &["doc@b.example"], "after", 10, 2);
    wait_for_inbox(
        &b,
        "doc@b.example",
        20,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );
    let entries = finished_entries(&a, "b.example", 20, &serve_a);
    assert_first_attempt_each(&entries);
    assert!(
        serve_a
            .log()
            .contains("the kept session was closed by the peer; delivering on a new one"),
        "A met no closed session:\n{}",
        serve_a.log()
    );
}

/// What a [`Recorder`] saw of each transaction.
#[derive(Default)]
struct Seen {
    connections: usize,
    /// For each MAIL FROM: whether a RCPT TO had arrived before it was answered.
    rcpt_before_mail_answered: Vec<bool>,
    messages: usize,
}

/// A plain SMTP server that accepts every message except for recipients whose
/// local part is `nurse` (550 5.1.1), offers PIPELINING or not, and notes for each
/// MAIL FROM whether the client sent RCPT TO before it had the answer.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start(pipelining: bool) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        shared.lock().unwrap().connections += 1;
                        let shared = shared.clone();
                        std::thread::spawn(move || {
                            let _ = record_session(stream, pipelining, &shared);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Recorder {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn record_session(stream: TcpStream, pipelining: bool, seen: &Mutex<Seen>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 recorder.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") {
            if pipelining {
                b"250-recorder.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
            } else {
                b"250-recorder.test\r\n250 8BITMIME\r\n"
            }
        } else if verb.starts_with("MAIL") {
            // A client that waits for the answer sends nothing meanwhile; give
            // one that does not a moment to show it.
            let early = if input.buffer().is_empty() {
                input
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_millis(300)))?;
                let early = input
                    .fill_buf()
                    .map(|b| b.starts_with(b"RCPT"))
                    .unwrap_or(false);
                input
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_secs(30)))?;
                early
            } else {
                input.buffer().starts_with(b"RCPT")
            };
            seen.lock().unwrap().rcpt_before_mail_answered.push(early);
            b"250 2.1.0 ok\r\n"
        } else if verb.starts_with("RCPT TO:<NURSE@") {
            b"550 5.1.1 no such user here\r\n"
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
            }
            seen.lock().unwrap().messages += 1;
            b"250 2.0.0 taken\r\n"
        } else if verb.starts_with("QUIT") {
            out.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            b"250 2.0.0 ok\r\n"
        };
        out.write_all(reply)?;
    }
}

/// B also hosts `domain` with doc@ and nurse@ addresses (certificates from B's CA,
/// which A trusts), so that B's DNS responder publishes them.
fn host_at_b(b: &Site, domain: &str) {
    b.run(&["domain", "add", domain], b"").ok();
    let ca = s(&b.path("data/ca"));
    for local in ["doc", "nurse"] {
        let address = format!("{local}@{domain}");
        b.run(&["address", "add", &address, "--cert-from", &ca], b"")
            .ok();
    }
}

#[test]
fn mail_and_rcpt_are_pipelined_only_where_offered_and_each_rcpt_decides_its_recipient_rfc_2920() {
    let (a, b) = two_sites(peers);
    host_at_b(&b, "c.example");
    host_at_b(&b, "d.example");
    let with = Recorder::start(true);
    let without = Recorder::start(false);
    append_config(
        &a,
        &format!(
            "[[route]]\ndomain = \"c.example\"\nto = \"{}\"\n\
             [[route]]\ndomain = \"d.example\"\nto = \"{}\"\n\
             [queue]\nper_destination = 1\n",
            with.addr, without.addr
        ),
    );
    let _serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");
    const EACH: usize = 3;
    submit_in_parallel(
        a.submission,
        &["doc@c.example", "nurse@c.example"],
        "c",
        EACH,
        1,
    );
    submit_in_parallel(
        a.submission,
        &["doc@d.example", "nurse@d.example"],
        "d",
        EACH,
        1,
    );
    finished_entries(&a, "c.example", EACH, &serve_a);
    let entries = finished_entries(&a, "d.example", EACH, &serve_a);
    assert_first_attempt_each(&entries);

    for (recorder, pipelined) in [(&with, true), (&without, false)] {
        let seen = recorder.seen.lock().unwrap();
        assert_eq!(seen.messages, EACH);
        assert_eq!(
            seen.rcpt_before_mail_answered,
            vec![pipelined; EACH],
            "pipelining offered: {pipelined}"
        );
        // One destination, one session at a time: the kept one carried them all.
        assert_eq!(seen.connections, 1, "pipelining offered: {pipelined}");
    }
    // Partial acceptance: doc@ relayed, nurse@ failed with the peer's refusal.
    let list = a.run(&["message", "list", "--json"], b"").ok();
    let json: Value = serde_json::from_slice(&list.stdout).unwrap();
    let messages: Vec<&Value> = json
        .as_array()
        .expect("an array")
        .iter()
        .filter(|m| {
            m["recipients"][0]["address"]
                .as_str()
                .is_some_and(|a| !a.ends_with("@a.example"))
        })
        .collect();
    assert_eq!(messages.len(), 2 * EACH, "{json:#}");
    for m in messages {
        let states: Vec<(String, String)> = m["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let local = r["address"]
                    .as_str()
                    .unwrap()
                    .split('@')
                    .next()
                    .unwrap()
                    .to_string();
                (local, r["state"].as_str().unwrap().to_string())
            })
            .collect();
        assert!(states.contains(&("doc".into(), "relayed".into())), "{m}");
        assert!(states.contains(&("nurse".into(), "failed".into())), "{m}");
        let nurse = m["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"].as_str().unwrap().starts_with("nurse@"))
            .unwrap();
        assert!(
            nurse["reason"].as_str().unwrap().contains("550 5.1.1"),
            "{nurse}"
        );
    }
}
