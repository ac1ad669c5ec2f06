//! What a portal's account may submit, and what either listener takes in
//! its header and envelope (issue 10, "Submission"), through a real `hisp
//! serve` on loopback. The dialogues are written byte for byte over a raw
//! TCP socket, so a bare CR or a NUL reaches the server as sent.
//!
//! Site A (a.example) has pat@a.example, granted to the account portal-a,
//! and, for these tests, nurse@a.example and desk@a.example; mail between
//! them is delivered locally (no `seal_local_mail`). Site B (b.example) has
//! doc@b.example and trusts A's CA.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use common::{hisp, s};
use serde_json::Value;
use serve::{peers, two_sites, wait_for_inbox, Serve, Site, PASSWORD};

const PAT: &str = "pat@a.example";
const NURSE: &str = "nurse@a.example";
const DESK: &str = "desk@a.example";
const DOC: &str = "doc@b.example";
const DATE: &str = "Date: Mon, 1 Jan 2024 00:00:00 +0000";

/// A raw SMTP client: every byte of a message goes out as given (only
/// dot-stuffed), unlike swaks, which mends line ends.
struct Client {
    out: TcpStream,
    input: BufReader<TcpStream>,
    transcript: String,
}

impl Client {
    /// Connects to `server`, reads the greeting and says EHLO.
    fn connect(server: SocketAddr) -> Client {
        let stream = TcpStream::connect(server).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let out = stream.try_clone().unwrap();
        let mut client = Client {
            out,
            input: BufReader::new(stream),
            transcript: String::new(),
        };
        let greeting = client.reply();
        assert!(greeting.starts_with("220 "), "{}", client.transcript);
        let ehlo = client.command("EHLO client.test");
        assert!(ehlo.starts_with("250 "), "{}", client.transcript);
        client
    }

    /// [`connect`](Self::connect) and AUTH PLAIN as `account` (loopback
    /// needs no TLS).
    fn submission(site: &Site, account: &str) -> Client {
        let mut client = Client::connect(site.submission);
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{account}\0{PASSWORD}"));
        let auth = client.command(&format!("AUTH PLAIN {token}"));
        assert!(auth.starts_with("235 "), "{}", client.transcript);
        client
    }

    /// The last line of the next reply (RFC 5321 §4.2.1: `250-` goes on).
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.input.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "connection closed:\n{}", self.transcript);
            self.transcript.push_str(&format!("S: {line}"));
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    }

    fn command(&mut self, line: &str) -> String {
        self.transcript.push_str(&format!("C: {line}\n"));
        self.out
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    /// MAIL, each RCPT (each must get 250), DATA and `message` dot-stuffed
    /// and ended with CRLF.CRLF: the reply to the end of data.
    fn send(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> String {
        let mail = self.command(&format!("MAIL FROM:<{from}>"));
        assert!(mail.starts_with("250 "), "{}", self.transcript);
        for rcpt in rcpts {
            let reply = self.command(&format!("RCPT TO:<{rcpt}>"));
            assert!(reply.starts_with("250 "), "{}", self.transcript);
        }
        let data = self.command("DATA");
        assert!(data.starts_with("354 "), "{}", self.transcript);
        let mut wire = Vec::new();
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        self.transcript
            .push_str(&format!("C: {}", String::from_utf8_lossy(&wire)));
        self.out.write_all(&wire).unwrap();
        self.reply()
    }
}

/// A and B set up, with nurse@ and desk@ added at A; only A runs.
fn site_a() -> (Site, Site, Serve) {
    let (a, b) = two_sites(peers);
    for address in [NURSE, DESK] {
        a.run(&["address", "add", address], b"").ok();
    }
    let serve_a = Serve::start(&a, "a");
    (a, b, serve_a)
}

/// A message from `from` to `to` with `extra` header lines (each ending
/// in CRLF) after To, and a Message-ID of its own.
fn message(from: &str, to: &str, extra: &str) -> Vec<u8> {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    format!(
        "From: {from}\r\nTo: {to}\r\n{extra}{DATE}\r\n\
         Message-ID: <{n}.{}@a.example>\r\n\r\nThe results are in.\r\n",
        std::process::id()
    )
    .into_bytes()
}

/// Nothing was queued at `site` and nothing reached `addresses`' mailboxes.
fn assert_nothing_kept(site: &Site, addresses: &[&str], serve: &Serve) {
    assert_eq!(
        site.queue_entries(),
        Vec::<Value>::new(),
        "nothing queued\n{}",
        serve.log()
    );
    for address in addresses {
        assert_eq!(
            site.mailbox(address),
            Vec::<Value>::new(),
            "{address}'s mailbox stays empty\n{}",
            serve.log()
        );
    }
}

/// Applicability Statement 1.3 binds the signer to From: a portal's
/// account may only write a From it is granted, equal to MAIL FROM. A
/// Sender field naming the account's own address does not lend its
/// standing to a From naming someone else.
#[test]
fn from_must_be_the_envelope_sender_whatever_sender_says_550_5_7_1() {
    let (a, _b, serve_a) = site_a();
    let mut client = Client::submission(&a, "portal-a");
    let forged = message(
        "anyone@anywhere.example",
        NURSE,
        &format!("Sender: {PAT}\r\n"),
    );
    let reply = client.send(PAT, &[NURSE], &forged);
    assert_eq!(
        reply,
        "550 5.7.1 Message refused: the From address anyone@anywhere.example \
         is not the envelope sender pat@a.example",
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    assert_nothing_kept(&a, &[NURSE, PAT], &serve_a);
}

/// A Sender field is allowed only when it too names an address the account
/// is granted (RFC 5322 §3.6.2: the mailbox of the agent that transmitted
/// the message); one naming anybody else is refused, and so is a second
/// Sender field.
#[test]
fn sender_must_name_an_address_the_account_is_granted_550_5_7_1() {
    let (a, _b, serve_a) = site_a();
    let mut client = Client::submission(&a, "portal-a");
    let other = message(PAT, NURSE, "Sender: boss@anywhere.example\r\n");
    let reply = client.send(PAT, &[NURSE], &other);
    assert_eq!(
        reply,
        "550 5.7.1 Message refused: the Sender address boss@anywhere.example \
         is not an address the account portal-a may send as",
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    let two = message(PAT, NURSE, &format!("Sender: {PAT}\r\nSender: {PAT}\r\n"));
    let reply = client.send(PAT, &[NURSE], &two);
    assert_eq!(
        reply,
        "554 5.6.0 Message refused: the Sender header field may appear once \
         and must name one mailbox (RFC 5322 §3.6.2)",
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    assert_nothing_kept(&a, &[NURSE, PAT], &serve_a);

    // Granted desk@ as well, the account may name it as the Sender of pat's mail.
    a.run(&["user", "grant", "portal-a", DESK], b"").ok();
    let desk = message(PAT, NURSE, &format!("Sender: {DESK}\r\n"));
    let reply = client.send(PAT, &[NURSE], &desk);
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as"),
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    let entries = wait_for_inbox(&a, NURSE, 1, Duration::from_secs(30), &[&serve_a]);
    assert_eq!(entries[0]["from"], PAT);
}

/// RFC 5322 §2.2: CR and LF appear in a header only together, as CRLF.
/// hisp's checks read a bare CR as part of a field, sealing as a line end:
/// `Subject: x<CR>Bcc: ...` would pass the no-Bcc rule and become a Bcc
/// field once sealed. So a header with a bare CR or a NUL is refused on the
/// submission listener.
#[test]
fn header_field_with_a_bare_cr_or_nul_is_refused_on_submission_554_5_6_0() {
    let (a, _b, serve_a) = site_a();
    let mut client = Client::submission(&a, "portal-a");
    for (field, extra, what) in [
        (
            "Subject",
            "Subject: x\rBcc: desk@a.example\r\n",
            "a bare CR",
        ),
        (
            "Reply-To",
            "Reply-To: pat@a.example\rBcc: desk@a.example\r\n",
            "a bare CR",
        ),
        ("Comments", "Comments: a\0b\r\n", "a NUL"),
    ] {
        let reply = client.send(PAT, &[NURSE], &message(PAT, NURSE, extra));
        assert_eq!(
            reply,
            format!(
                "554 5.6.0 Message refused: the {field} header field contains {what}: \
                 header lines end in CRLF and hold no CR, LF or NUL of their own \
                 (RFC 5322 §2.2)"
            ),
            "{}\n{}",
            client.transcript,
            serve_a.log()
        );
    }
    assert_nothing_kept(&a, &[NURSE, PAT, DESK], &serve_a);
}

/// The same on the backbone listener, where peers deliver: a bare CR in the
/// header is refused before anything is queued.
#[test]
fn header_field_with_a_bare_cr_is_refused_on_the_backbone_554_5_6_0() {
    let (a, _b, serve_a) = site_a();
    let mut client = Client::connect(a.backbone);
    let reply = client.send(
        DOC,
        &[NURSE],
        &message(DOC, NURSE, "Subject: x\rBcc: desk@a.example\r\n"),
    );
    assert_eq!(
        reply,
        "554 5.6.0 Message refused: the Subject header field contains a bare CR: \
         header lines end in CRLF and hold no CR, LF or NUL of their own \
         (RFC 5322 §2.2)",
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    assert_nothing_kept(&a, &[NURSE, DESK], &serve_a);
}

/// A bare LF ends a header line for the checks as it does when the message
/// is canonicalised for signing (RFC 8551 §3.1.1): a Bcc after a bare LF is
/// a Bcc field, and refused as one.
#[test]
fn bare_lf_ends_a_header_line_for_the_checks_as_for_sealing() {
    let (a, _b, serve_a) = site_a();
    let mut client = Client::submission(&a, "portal-a");
    let reply = client.send(
        PAT,
        &[NURSE],
        &message(PAT, NURSE, "Subject: x\nBcc: desk@a.example\r\n"),
    );
    assert_eq!(
        reply,
        "550 5.7.1 Message refused: the message has a Bcc header field: \
         Direct messages may not have Bcc recipients",
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    assert_nothing_kept(&a, &[NURSE, PAT, DESK], &serve_a);
}

/// RFC 5321 §3.3 lets a client name a recipient more than once; a
/// recipient repeated in one transaction, also in another letter case, is
/// one recipient (Direct compares local parts without regard to case) and
/// gets the message once.
#[test]
fn recipient_given_twice_on_submission_gets_the_message_once() {
    let (a, _b, serve_a) = site_a();
    let mut client = Client::submission(&a, "portal-a");
    let reply = client.send(
        PAT,
        &[NURSE, NURSE, "Nurse@A.example"],
        &message(PAT, NURSE, ""),
    );
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as"),
        "{}\n{}",
        client.transcript,
        serve_a.log()
    );
    let entries = wait_for_inbox(&a, NURSE, 1, Duration::from_secs(30), &[&serve_a]);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let queue = a.queue_entries();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let recipients = queue[0]["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{queue:?}");
    assert_eq!(recipients[0]["address"], NURSE);
}

/// The same on the backbone: a peer naming a local recipient twice gets 250
/// (not a 451 that it would retry for days) and the recipient the message
/// once.
#[test]
fn recipient_given_twice_on_the_backbone_gets_the_message_once() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let inner = message(PAT, DOC, "");
    let signer = a.cert_dir(PAT);
    let sealed = hisp(
        [
            "smime",
            "seal",
            "--signer-cert",
            &s(&signer.join("cert.pem")),
            "--signer-key",
            &s(&signer.join("key.pem")),
            "--recipient-cert",
            &s(&b.cert_dir(DOC).join("cert.pem")),
        ],
        &inner,
    )
    .ok()
    .stdout;
    let mut client = Client::connect(b.backbone);
    let reply = client.send(PAT, &[DOC, "DOC@b.example", DOC], &sealed);
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as"),
        "{}\n{}",
        client.transcript,
        serve_b.log()
    );
    let entries = wait_for_inbox(&b, DOC, 1, Duration::from_secs(30), &[&serve_b]);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let shown = b.mailbox_text(&entries[0]);
    assert!(shown.contains("The results are in."), "{shown}");
    let inbound: Vec<Value> = b
        .queue_entries()
        .into_iter()
        .filter(|e| e["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(
        inbound[0]["recipients"].as_array().map(Vec::len),
        Some(1),
        "{inbound:?}"
    );
}
