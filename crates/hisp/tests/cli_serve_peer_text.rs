//! Text a peer sends, as hisp writes it back out, through the real binary on
//! loopback sockets (issue 10, "Logs and the store"): a value a peer sends
//! cannot forge a log line, a log file carries no colour codes, `[log]
//! format = "json"` gives one JSON object per line with the message id on
//! each line of a message's life, and control characters from mail are
//! escaped in CLI output.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use serve::{first_in_inbox, peers, two_sites, Serve, Site, Swaks};

/// A forged line as an attacker would put it in a user name.
const FORGED: &str = "INFO hisp_smtp::dialogue: authenticated user=admin";

/// One SMTP reply (the last line of a multi-line one).
fn reply(input: &mut impl BufRead) -> String {
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

/// `AUTH PLAIN` on the submission listener with `user` (CR LF and all) and
/// a wrong password; the server's reply.
fn auth_plain(server: SocketAddr, user: &str) -> String {
    let stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    reply(&mut input);
    out.write_all(b"EHLO attacker.test\r\n").unwrap();
    reply(&mut input);
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0wrong password"));
    out.write_all(format!("AUTH PLAIN {token}\r\n").as_bytes())
        .unwrap();
    let answer = reply(&mut input);
    out.write_all(b"QUIT\r\n").unwrap();
    reply(&mut input);
    answer
}

/// Every control character a peer sent (CR, LF, ESC) is escaped where it is
/// logged: the log has exactly the lines hisp wrote, so a user name with
/// CR LF cannot add a line that looks like hisp's own. The log is a file,
/// not a terminal: no ANSI colour codes.
#[test]
fn auth_user_name_with_crlf_cannot_forge_a_log_line_and_a_log_file_has_no_colour() {
    let (a, _b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let user = format!("portal-a\r\n{FORGED}\r\n\x1b[2Jx");
    let answer = auth_plain(a.submission, &user);
    assert!(answer.starts_with("535 5.7.8"), "{answer}");
    let log = serve::eventually(
        Duration::from_secs(10),
        || Some(serve_a.log()).filter(|l| l.contains("authentication failed")),
        || format!("no failed AUTH logged:\n{}", serve_a.log()),
    );
    for line in log.lines() {
        assert!(
            !line.starts_with("INFO") && !line.starts_with(FORGED),
            "a forged line:\n{log}"
        );
    }
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains(r"portal-a\r\nINFO hisp_smtp::dialogue: authenticated user=admin\r\n"),
        "the user name is on the one line, escaped: {}",
        failed[0]
    );
    assert!(
        !log.contains('\x1b'),
        "no escape character (colour codes or the peer's) in a log file:\n{log:?}"
    );
    assert!(!log.contains('\r'), "{log:?}");
}

/// Rewrites `site`'s `[log]` table to give JSON lines.
fn json_logs(site: &Site) {
    let config = std::fs::read_to_string(site.config()).unwrap();
    let config = config.replace("[log]\n", "[log]\nformat = \"json\"\n");
    assert!(config.contains("format = \"json\""), "{config}");
    std::fs::write(site.config(), config).unwrap();
}

/// The `msg_id` fields of a JSON log line: its spans' (innermost last).
fn msg_ids(line: &Value) -> Vec<String> {
    line["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|span| span["msg_id"].as_str().map(str::to_string))
        .collect()
}

/// `[log] format = "json"`: every line of the log is one JSON object; the
/// lines of a message's life (queued at submission, sealed and relayed by
/// A's worker, opened and filed by B's) carry its Message-ID, and a peer's
/// control characters are escaped by JSON.
#[test]
fn json_log_lines_carry_the_message_id_through_a_message_life() {
    let (a, b) = two_sites(peers);
    json_logs(&a);
    json_logs(&b);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args([
            "--header",
            "Message-Id: <json-life@a.example>",
            "--header",
            "Subject: json \x1b[31mred",
        ])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    first_in_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);

    for (name, serve) in [("a", &serve_a), ("b", &serve_b)] {
        let log = serve.log();
        assert!(!log.contains('\x1b'), "{name}: {log:?}");
        let lines: Vec<Value> = log
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{name}: not a JSON line ({e}): {l}\n{log}"))
            })
            .collect();
        for line in &lines {
            assert!(line["timestamp"].is_string(), "{line}");
            assert!(line["level"].is_string(), "{line}");
        }
        let of_message: Vec<&Value> = lines
            .iter()
            .filter(|l| msg_ids(l).iter().any(|m| m.contains("json-life@a.example")))
            .collect();
        let says = |text: &str| {
            of_message
                .iter()
                .any(|l| l["message"].as_str().is_some_and(|m| m.contains(text)))
        };
        if name == "a" {
            assert!(says("queued"), "a: no queued line with the id:\n{log}");
            assert!(says("relayed"), "a: no relayed line with the id:\n{log}");
        } else {
            assert!(says("opened"), "b: no opened line with the id:\n{log}");
        }
        // Each line the worker writes while it works on a queue entry names
        // the message.
        for line in &lines {
            let in_worker = line["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["name"] == "queue_item");
            if in_worker {
                assert!(!msg_ids(line).is_empty(), "{name}: no msg_id: {line}");
            }
        }
    }
}

/// A Subject with an ESC sequence (which would turn a terminal red and clear
/// it) and a CR: `hisp mailbox list` at the recipient's HISP and `hisp
/// message list` / `status` at the sender's print it escaped, on one line;
/// `--json` keeps the text exact (JSON escapes it itself).
#[test]
fn control_characters_from_mail_are_escaped_in_cli_output() {
    let (a, b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    let subject = "lab \x1b[31mred\x1b[2J\x07 results";
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args([
            "--header",
            &format!("Subject: {subject}"),
            "--header",
            "Message-Id: <escape-1@a.example>",
        ])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    let entry = first_in_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["subject"], subject, "JSON carries the exact text");

    let escaped = r"lab \x1b[31mred\x1b[2J\x07 results";
    let listing = b.run(&["mailbox", "list", "doc@b.example"], b"").ok();
    let text = listing.stdout_text();
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains(escaped), "{text}");
    assert_eq!(text.lines().count(), 2, "header and one row: {text}");

    for args in [
        &["message", "list"][..],
        &["message", "status", "escape-1@a.example"][..],
    ] {
        let run = a.run(args, b"").ok();
        let text = run.stdout_text();
        assert!(
            !text.contains('\x1b') && !text.contains('\x07'),
            "{args:?}: {text:?}"
        );
        assert!(text.contains(escaped), "{args:?}: {text}");
    }
}
