//! Inbound Direct mail and SMTP dialogues against a running `hisp serve`
//! (issue 5, Acceptance), over real loopback sockets.
//!
//! Inbound: messages sealed by the real `hisp smime seal` (and, for a
//! tampered one, re-encrypted by the `openssl cms` command) are delivered to
//! B's backbone listener with `swaks --data`. Untrusted and tampered ones
//! must land in quarantine with a reason naming the failure and leave the
//! recipient's mailbox empty; a correctly signed one from a trusted signer
//! lands in the mailbox.
//!
//! Dialogues: the files under `tests/dialogues/` are SMTP sessions kept as
//! data (a line sent, the reply lines expected) and are played here over a
//! TCP socket against the real submission and backbone listeners.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{hisp, openssl, s, Pki};
use serde_json::Value;
use serve::{eventually, peers, two_sites, wait_for_inbox, Serve, Site, Swaks, PASSWORD};

const SENDER: &str = "pat@a.example";
const RECIPIENT: &str = "doc@b.example";

/// The inner message a portal at A would have sent to B's doctor.
fn referral(message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {SENDER}\r\n\
         To: {RECIPIENT}\r\n\
         Subject: referral {message_id}\r\n\
         Message-ID: <{message_id}@a.example>\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         {body}\r\n"
    )
    .into_bytes()
}

/// `hisp smime seal` of `message`, signed with the certificate and key in
/// `signer` and encrypted to B's doctor's certificate.
fn seal(b: &Site, signer: &Path, message: &[u8]) -> Vec<u8> {
    let recipient = b.cert_dir(RECIPIENT).join("cert.pem");
    hisp(
        [
            "smime",
            "seal",
            "--signer-cert",
            &s(&signer.join("cert.pem")),
            "--signer-key",
            &s(&signer.join("key.pem")),
            "--recipient-cert",
            &s(&recipient),
        ],
        message,
    )
    .ok()
    .stdout
}

/// Delivers `message` from A's patient to B's doctor on B's backbone
/// listener, as a peer HISP would, and asserts B accepted it with 250
/// (the checks come after the 250: the verdict is quarantine or mailbox).
fn deliver_on_backbone(b: &Site, name: &str, message: &[u8], serve_b: &Serve) {
    let file = b.path(name);
    std::fs::write(&file, message).unwrap();
    let out = Swaks::to(b.backbone, SENDER, RECIPIENT)
        .args(["--data", &s(&file)])
        .run();
    assert!(
        out.success && out.text.contains("<-  250 "),
        "{}\n{}",
        out.text,
        serve_b.log()
    );
}

fn quarantine(b: &Site) -> Vec<Value> {
    let run = b.run(&["quarantine", "list", "--json"], b"").ok();
    let json: Value = serde_json::from_slice(&run.stdout).expect("quarantine list --json");
    json.as_array().expect("an array").clone()
}

/// Polls B's quarantine until it holds an entry for `message_id`, for at
/// most 60 s; that entry, or a panic with the queue and the log.
fn wait_for_quarantine(b: &Site, message_id: &str, serve_b: &Serve) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let entries = quarantine(b);
        if let Some(entry) = entries.iter().find(|e| e["message_id"] == message_id) {
            return entry.clone();
        }
        if Instant::now() >= deadline {
            panic!(
                "{message_id} not quarantined after 60 s; quarantine: {entries:?}\n\
                 mailbox: {:?}\nqueue:\n{}\nlog:\n{}",
                b.mailbox(RECIPIENT),
                b.queue(),
                serve_b.log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Nothing from the quarantined message reached the recipient's mailbox.
fn assert_nothing_delivered(b: &Site, serve_b: &Serve) {
    assert_eq!(
        b.mailbox(RECIPIENT),
        Vec::<Value>::new(),
        "the mailbox must stay empty\n{}",
        serve_b.log()
    );
    // No MDN answers a quarantined message (issue 6): B queued nothing to send.
    let sent = b
        .run(&["message", "list", "--notifications", "--json"], b"")
        .ok();
    let sent: Value = serde_json::from_slice(&sent.stdout).expect("message list --json");
    assert_eq!(sent, serde_json::json!([]), "no MDN\n{}", serve_b.log());
}

/// A signer whose certificate chains to a CA B does not trust as an
/// incoming anchor for b.example is untrusted: quarantined, not delivered
/// (issue 5, Workers: "untrusted ... -> quarantine with the reason";
/// Applicability Statement §2.3, trust anchors).
#[test]
fn message_signed_by_a_ca_b_does_not_trust_is_quarantined_as_untrusted() {
    let (_a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    // The same address as A's patient, but from a CA no anchor names.
    let stranger = Pki::new();
    let signer = stranger.issue("pat", &["--address", SENDER]);

    let sealed = seal(
        &b,
        &signer,
        &referral("untrusted", "Signed by a CA you do not trust."),
    );
    deliver_on_backbone(&b, "untrusted.eml", &sealed, &serve_b);

    let entry = wait_for_quarantine(&b, "<untrusted@a.example>", &serve_b);
    assert_eq!(entry["reason"], "untrusted", "{entry}");
    assert_eq!(entry["from"], SENDER, "{entry}");
    assert_eq!(
        entry["recipients"],
        serde_json::json!([RECIPIENT]),
        "{entry}"
    );
    // The detail names the signer and the anchors it was checked against.
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("untrusted signer 'CN=pat@a.example'")
            && detail.contains("anchors: 'CN=a.example CA'"),
        "{entry}"
    );
    assert_nothing_delivered(&b, &serve_b);
}

/// A message whose signed content was changed after signing (decrypted,
/// one word altered, re-encrypted to B with the `openssl cms` command) is
/// tampered: the signature does not verify (issue 5, Workers: "tampered
/// ... -> quarantine with the reason"; RFC 8551 §2.5, RFC 5652 §5.6).
#[test]
fn message_altered_after_signing_is_quarantined_as_tampered() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let sealed = seal(
        &b,
        &a.cert_dir(SENDER),
        &referral("tampered", "Please see the patient on Monday."),
    );

    // Open the envelope with B's key, change the signed content, and seal
    // the altered entity again for B: the encryption is sound, the
    // signature is not.
    let keys = b.cert_dir(RECIPIENT);
    let envelope = b.path("sealed.eml");
    std::fs::write(&envelope, &sealed).unwrap();
    let signed = openssl(
        [
            "cms",
            "-decrypt",
            "-in",
            &s(&envelope),
            "-recip",
            &s(&keys.join("cert.pem")),
            "-inkey",
            &s(&keys.join("key.pem")),
        ],
        b"",
    )
    .ok()
    .stdout;
    let signed = String::from_utf8(signed).expect("the signed entity is text");
    assert!(signed.contains("on Monday."), "{signed}");
    let altered = b.path("altered.eml");
    std::fs::write(&altered, signed.replace("on Monday.", "on Friday.")).unwrap();
    let encrypted = openssl(
        [
            "cms",
            "-encrypt",
            "-binary",
            "-aes256",
            "-in",
            &s(&altered),
            "-from",
            SENDER,
            "-to",
            RECIPIENT,
            &s(&keys.join("cert.pem")),
        ],
        b"",
    )
    .ok()
    .stdout;
    let mut message = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <tampered@a.example>\r\n"
        .to_vec();
    message.extend_from_slice(&encrypted);
    deliver_on_backbone(&b, "tampered.eml", &message, &serve_b);

    let entry = wait_for_quarantine(&b, "<tampered@a.example>", &serve_b);
    assert_eq!(entry["reason"], "tampered", "{entry}");
    assert_eq!(
        entry["recipients"],
        serde_json::json!([RECIPIENT]),
        "{entry}"
    );
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("digest mismatch") && detail.contains("'CN=pat@a.example'"),
        "the detail names the failed check and the signer: {entry}"
    );
    assert_nothing_delivered(&b, &serve_b);
}

/// A sealed message with one bit of its ciphertext flipped in transit
/// cannot be opened: the bit is the top bit of the last byte of the
/// next-to-last AES-CBC block, so the last decrypted block ends in a
/// padding byte above 16, which PKCS #7 padding never has (RFC 5652 §6.3).
/// Quarantined, not delivered (issue 5, Workers: "undecryptable, tampered
/// ... -> quarantine with the reason").
#[test]
fn message_with_a_ciphertext_bit_flipped_in_transit_is_quarantined() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let sealed = seal(
        &b,
        &a.cert_dir(SENDER),
        &referral("flipped", "Please see the patient on Monday."),
    );
    let text = String::from_utf8(sealed).expect("a sealed message is text");
    let (headers, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .expect("headers and a body");
    let encoded: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("the body is base64");
    // The encrypted content is the last field of the EnvelopedData, a
    // primitive [0] (checked with `openssl asn1parse` when this was
    // written), so the DER ends with the last cipher block.
    let at = der.len() - 17;
    der[at] ^= 0x80;
    let reencoded = base64::engine::general_purpose::STANDARD.encode(&der);
    let lines: Vec<&str> = reencoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    let message = format!("{headers}\r\n\r\n{}\r\n", lines.join("\r\n"));
    deliver_on_backbone(&b, "flipped.eml", message.as_bytes(), &serve_b);

    let entry = wait_for_quarantine(&b, "<flipped@a.example>", &serve_b);
    assert_eq!(entry["reason"], "undecryptable", "{entry}");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("does not decrypt"), "{entry}");
    assert_eq!(
        entry["recipients"],
        serde_json::json!([RECIPIENT]),
        "{entry}"
    );
    assert_nothing_delivered(&b, &serve_b);
}

/// The control case: the same path with a trusted signer (A's patient,
/// certified by A's CA, which B takes as an anchor) ends in the mailbox,
/// decrypted, and nothing is quarantined (issue 5, Workers: inbound).
#[test]
fn message_sealed_by_a_trusted_signer_lands_in_the_mailbox_not_in_quarantine() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let body = "Signed by a signer you trust.";
    let sealed = seal(&b, &a.cert_dir(SENDER), &referral("trusted", body));
    deliver_on_backbone(&b, "trusted.eml", &sealed, &serve_b);

    let entries = wait_for_inbox(&b, RECIPIENT, 1, Duration::from_secs(60), &[&serve_b]);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["message_id"], "<trusted@a.example>");
    let stored = String::from_utf8_lossy(&b.mailbox_show(&entries[0])).into_owned();
    assert!(stored.contains(body), "{stored}");
    assert_eq!(quarantine(&b), Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// SMTP dialogues kept as files.

/// One step of a dialogue file.
#[derive(Debug)]
enum Step {
    /// `C: line`: sent with CRLF.
    Send(String),
    /// `S: pattern`: the next reply line matches it (`*` matches any run of
    /// characters).
    Expect(String),
    /// `S*: pattern`: a whole reply, its continuation lines (`250-...`)
    /// skipped, its last line matching the pattern; for replies whose
    /// middle lines another dialogue pins (EHLO keywords).
    ExpectReply(String),
    /// `S: <closed>`: the server has closed the connection.
    Closed,
}

/// A dialogue file: the listener it talks to and its steps, each with its
/// line number for failure messages.
struct Dialogue {
    path: PathBuf,
    listener: String,
    steps: Vec<(usize, Step)>,
}

impl Dialogue {
    /// Parses a file: `#` comments and blank lines are skipped; one
    /// `listener: submission|backbone` line; then `C:`, `S:` and `S*:` lines.
    fn load(path: &Path) -> Dialogue {
        let text = std::fs::read_to_string(path).unwrap();
        let mut listener = None;
        let mut steps = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let strip = |rest: &str| rest.strip_prefix(' ').unwrap_or(rest).to_string();
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            } else if let Some(rest) = line.strip_prefix("listener:") {
                listener = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("C:") {
                steps.push((number, Step::Send(strip(rest))));
            } else if let Some(rest) = line.strip_prefix("S*:") {
                steps.push((number, Step::ExpectReply(strip(rest))));
            } else if let Some(rest) = line.strip_prefix("S:") {
                let pattern = strip(rest);
                let step = if pattern == "<closed>" {
                    Step::Closed
                } else {
                    Step::Expect(pattern)
                };
                steps.push((number, step));
            } else {
                panic!(
                    "{}:{number}: not a C:, S: or listener: line",
                    path.display()
                );
            }
        }
        Dialogue {
            path: path.to_path_buf(),
            listener: listener.unwrap_or_else(|| panic!("{}: no `listener:` line", path.display())),
            steps,
        }
    }

    /// Plays the dialogue against `server`, with `${NAME}` placeholders
    /// replaced from `vars`; the transcript, or an error naming the file
    /// line that failed with the transcript so far.
    fn play(&self, server: SocketAddr, vars: &[(&str, String)]) -> Result<String, String> {
        let subst = |text: &str| {
            vars.iter().fold(text.to_string(), |t, (k, v)| {
                t.replace(&format!("${{{k}}}"), v)
            })
        };
        let stream = TcpStream::connect(server).map_err(|e| format!("connect {server}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut input = BufReader::new(stream);
        let mut transcript = String::new();
        for (number, step) in &self.steps {
            let fail = |what: String, transcript: &str| {
                format!(
                    "{}:{number}: {what}\ntranscript:\n{transcript}",
                    self.path.display()
                )
            };
            match step {
                Step::Send(line) => {
                    let line = subst(line);
                    transcript.push_str(&format!("C: {line}\n"));
                    out.write_all(format!("{line}\r\n").as_bytes())
                        .map_err(|e| fail(format!("send: {e}"), &transcript))?;
                }
                Step::Expect(pattern) => {
                    let pattern = subst(pattern);
                    let reply = read_reply_line(&mut input, &mut transcript)
                        .map_err(|e| fail(format!("{e}, expected `{pattern}`"), &transcript))?;
                    if !glob(&pattern, &reply) {
                        return Err(fail(
                            format!("expected `{pattern}`, got `{reply}`"),
                            &transcript,
                        ));
                    }
                }
                Step::ExpectReply(pattern) => {
                    let pattern = subst(pattern);
                    loop {
                        let reply = read_reply_line(&mut input, &mut transcript)
                            .map_err(|e| fail(format!("{e}, expected `{pattern}`"), &transcript))?;
                        // RFC 5321 §4.2.1: "250-" continues, "250 " ends the reply.
                        if reply.as_bytes().get(3) == Some(&b'-')
                            && pattern.get(..3) == reply.get(..3)
                        {
                            continue;
                        }
                        if !glob(&pattern, &reply) {
                            return Err(fail(
                                format!("expected a reply ending `{pattern}`, got `{reply}`"),
                                &transcript,
                            ));
                        }
                        break;
                    }
                }
                Step::Closed => {
                    let mut rest = String::new();
                    match input.read_line(&mut rest) {
                        Ok(0) => transcript.push_str("S: <closed>\n"),
                        Ok(_) => {
                            return Err(fail(
                                format!(
                                    "expected the connection closed, got `{}`",
                                    rest.trim_end()
                                ),
                                &transcript,
                            ))
                        }
                        Err(e) => {
                            return Err(fail(
                                format!("expected the connection closed: {e}"),
                                &transcript,
                            ))
                        }
                    }
                }
            }
        }
        Ok(transcript)
    }
}

/// One reply line, its line end removed, added to `transcript`.
fn read_reply_line(input: &mut impl BufRead, transcript: &mut String) -> Result<String, String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) => Err("connection closed".to_string()),
        Ok(_) => {
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            transcript.push_str(&format!("S: {line}\n"));
            Ok(line)
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (possibly empty) and everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[test]
fn glob_matches_star_as_any_run_of_characters() {
    assert!(glob("250 *", "250 2.0.0 Ok"));
    assert!(glob("250-SIZE *", "250-SIZE 10485760"));
    assert!(glob("*", ""));
    assert!(glob("550 5.1.1 <a@b>: *: *", "550 5.1.1 <a@b>: x: y"));
    assert!(!glob("250 *", "251 Ok"));
    assert!(!glob("250 Ok", "250 Ok then"));
    assert!(!glob("a*bc", "abc_"));
    assert!(!glob("ab*ba", "aba"));
}

/// Every file under `tests/dialogues/` played against the real listeners:
/// `listener: submission` against A's submission port, `listener: backbone`
/// against B's backbone port, each on a fresh connection (issue 5,
/// Acceptance: "SMTP dialogues kept as files ... run against the real listener").
#[test]
fn smtp_dialogues_under_tests_dialogues_hold_against_the_real_listeners() {
    let (a, b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    // B answers A's certificate discovery for b.example.
    let serve_b = Serve::start(&b, "b");
    let plain = |user: &str, password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
    };
    let vars = [
        ("AUTH_PLAIN", plain("portal-a", PASSWORD)),
        ("AUTH_PLAIN_WRONG", plain("portal-a", "not the password")),
        ("SUBMISSION_HOST", format!("hisp.{}", a.domain)),
        ("BACKBONE_HOST", format!("hisp.{}", b.domain)),
        ("SENDER", SENDER.to_string()),
        ("RECIPIENT", RECIPIENT.to_string()),
        ("NOT_DIRECT", format!("nobody@{}", b.domain)),
        ("THIRD_DOMAIN", "someone@c.example".to_string()),
    ];

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "dialogues in {}: {files:?}",
        dir.display()
    );

    let mut failures = Vec::new();
    for file in &files {
        let dialogue = Dialogue::load(file);
        let server = match dialogue.listener.as_str() {
            "submission" => a.submission,
            "backbone" => b.backbone,
            other => panic!("{}: unknown listener `{other}`", file.display()),
        };
        if let Err(e) = dialogue.play(server, &vars) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dialogues failed:\n{}\n---- A log:\n{}\n---- B log:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n"),
        serve_a.log(),
        serve_b.log()
    );
}

// ---------------------------------------------------------------------------
// Senders that do not wrap headers (issue 10): the signed entity is the whole
// message, with its own From, To, Subject, Date, Message-ID and MIME-Version,
// not a message/rfc822 wrapper; the same fields travel outside as well.

/// The inner message of the unwrapped tests, signed as it is: its own
/// header fields, with a Subject that differs from the outer one.
fn unwrapped_inner(message_id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {SENDER}\r\n\
         To: {RECIPIENT}\r\n\
         Subject: {subject}\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         Message-ID: <{message_id}@a.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         {body}\r\n"
    )
    .into_bytes()
}

/// What several HISPs send, made by the `openssl` command line alone:
/// `openssl cms -sign` of the whole `inner` message (no message/rfc822
/// wrapper) with the certificate and key in `signer`, then `openssl cms
/// -encrypt -from -to -subject` to B's doctor, with the Date and Message-ID
/// of `inner` put on the outer header too. Every RFC 5322 field of the
/// inner header is then also outside, the Subject with another text.
fn openssl_unwrapped(b: &Site, name: &str, signer: &Path, inner: &[u8]) -> Vec<u8> {
    let recipient = b.cert_dir(RECIPIENT).join("cert.pem");
    let whole = b.path(&format!("{name}.inner.eml"));
    std::fs::write(&whole, inner).unwrap();
    let signed = b.path(&format!("{name}.signed.eml"));
    openssl(
        [
            "cms",
            "-sign",
            "-md",
            "sha256",
            "-in",
            &s(&whole),
            "-signer",
            &s(&signer.join("cert.pem")),
            "-inkey",
            &s(&signer.join("key.pem")),
            "-out",
            &s(&signed),
        ],
        b"",
    )
    .ok();
    let encrypted = openssl(
        [
            "cms",
            "-encrypt",
            "-aes256",
            "-in",
            &s(&signed),
            "-from",
            SENDER,
            "-to",
            RECIPIENT,
            "-subject",
            "outer subject, not signed",
            &s(&recipient),
        ],
        b"",
    )
    .ok()
    .stdout;
    let inner = String::from_utf8_lossy(inner);
    let mut message = Vec::new();
    for line in inner.lines() {
        if line.starts_with("Date:") || line.starts_with("Message-ID:") {
            message.extend_from_slice(line.as_bytes());
            message.extend_from_slice(b"\r\n");
        }
    }
    message.extend_from_slice(&encrypted);
    message
}

/// The header block of a stored message, unfolded: one entry per field.
fn header_fields(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in head.lines() {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => fields.push(line.to_string()),
        }
    }
    fields
}

/// How many fields of the header are named `name` (any letter case).
fn count_fields(fields: &[String], name: &str) -> usize {
    fields
        .iter()
        .filter(|f| {
            f.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .count()
}

/// An openssl-made unwrapped message from A's patient (certified by A's CA,
/// an incoming anchor of b.example, bound to the From address) is filed in
/// the Inbox: the signed inner fields win over the unsigned outer copies,
/// each field appears once, the envelope's MIME fields are gone, B's own
/// trace field stays, and the processed MDN answers it (Applicability
/// Statement 1.3: header wrapping is optional for senders; RFC 5322 §3.6
/// allows one From, To, Subject, Date and Message-ID; Implementation Guide
/// for Delivery Notification in Direct 1.0 §3.3).
#[test]
fn unwrapped_message_with_its_own_header_fields_is_filed_once_each_and_answered_applicability_statement_1_3(
) {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let body = "Signed whole, without a message/rfc822 wrapper.";
    let inner = unwrapped_inner("unwrapped", "inner subject, signed", body);
    let message = openssl_unwrapped(&b, "unwrapped", &a.cert_dir(SENDER), &inner);
    deliver_on_backbone(&b, "unwrapped.eml", &message, &serve_b);

    // Filed or quarantined, whichever comes first: a quarantine fails at once.
    let entries = eventually(
        Duration::from_secs(60),
        || {
            let filed = b.mailbox(RECIPIENT);
            let refused = quarantine(&b);
            (!filed.is_empty() || !refused.is_empty()).then_some((filed, refused))
        },
        || format!("neither filed nor quarantined\n{}", serve_b.log()),
    );
    let (entries, refused) = entries;
    assert_eq!(refused, Vec::<Value>::new(), "{}", serve_b.log());
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["message_id"], "<unwrapped@a.example>");
    assert_eq!(
        entries[0]["subject"], "inner subject, signed",
        "{entries:?}"
    );
    let stored = b.mailbox_show(&entries[0]);
    let text = String::from_utf8_lossy(&stored).into_owned();
    assert!(text.contains(body), "{text}");
    let fields = header_fields(&stored);
    for name in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    ] {
        assert_eq!(count_fields(&fields, name), 1, "{name} once in:\n{text}");
    }
    assert!(
        fields.contains(&"Subject: inner subject, signed".to_string()),
        "{text}"
    );
    assert!(
        fields.contains(&"Content-Type: text/plain".to_string()),
        "{text}"
    );
    assert_eq!(count_fields(&fields, "Content-Disposition"), 0, "{text}");
    assert_eq!(
        count_fields(&fields, "Content-Transfer-Encoding"),
        0,
        "{text}"
    );
    // B's backbone listener prepended its Received field to the outer
    // header; the inner header has none, so it stays, on top.
    assert_eq!(count_fields(&fields, "Received"), 1, "{text}");
    assert!(fields[0].starts_with("Received: "), "{text}");

    // The processed MDN to the patient is queued, about the inner Subject.
    let sent = b
        .run(&["message", "list", "--notifications", "--json"], b"")
        .ok();
    let sent: Value = serde_json::from_slice(&sent.stdout).expect("message list --json");
    let sent = sent.as_array().expect("an array");
    assert_eq!(sent.len(), 1, "{sent:?}\n{}", serve_b.log());
    assert_eq!(sent[0]["kind"], "notification", "{sent:?}");
    assert_eq!(sent[0]["from"], RECIPIENT, "{sent:?}");
    assert_eq!(
        sent[0]["subject"], "Processed: inner subject, signed",
        "{sent:?}"
    );
    assert_eq!(sent[0]["recipients"][0]["address"], SENDER, "{sent:?}");
}

/// The same openssl-made unwrapped message, signed by a certificate of A's
/// CA (trusted) that is bound to another address of a.example: the signer
/// is judged against the one From and found unbound, not malformed
/// (Applicability Statement 1.3 §4.1).
#[test]
fn unwrapped_message_from_a_signer_not_bound_to_from_is_quarantined_as_unbound_applicability_statement_4_1(
) {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let nurse = b.path("certs/nurse");
    a.run(
        &[
            "cert",
            "issue",
            "--address",
            "nurse@a.example",
            "--out",
            &s(&nurse),
        ],
        b"",
    )
    .ok();
    let inner = unwrapped_inner(
        "unbound",
        "inner subject",
        "Signed by the nurse's certificate.",
    );
    let message = openssl_unwrapped(&b, "unbound", &nurse, &inner);
    deliver_on_backbone(&b, "unbound.eml", &message, &serve_b);

    let entry = wait_for_quarantine(&b, "<unbound@a.example>", &serve_b);
    assert_eq!(entry["reason"], "unbound", "{entry}");
    assert_eq!(entry["from"], SENDER, "{entry}");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("nurse@a.example") && detail.contains(SENDER),
        "the detail names the certificate and the From address: {entry}"
    );
    assert_nothing_delivered(&b, &serve_b);
}

/// A CA made by the `openssl` command line whose leaf for A's patient names
/// a CRL distribution point on loopback, and the CRL that revokes it.
struct RevokingCa {
    /// The CA certificate (PEM), to be an anchor.
    ca: PathBuf,
    /// cert.pem and key.pem of the revoked signer.
    signer: PathBuf,
    /// The CRL (PEM).
    crl: PathBuf,
}

impl RevokingCa {
    fn make(dir: &Path, crl_url: &str) -> RevokingCa {
        let p = |name: &str| s(&dir.join(name));
        let signer = dir.join("revoked");
        std::fs::create_dir_all(&signer).unwrap();
        openssl(
            [
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-days",
                "3650",
                "-subj",
                "/CN=revoking test CA/O=a.example",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-addext",
                "subjectKeyIdentifier=hash",
            ],
            b"",
        )
        .ok();
        std::fs::write(
            dir.join("leaf.cnf"),
            format!(
                "[leaf]\n\
                 basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature, keyEncipherment\n\
                 extendedKeyUsage = emailProtection\n\
                 subjectAltName = email:{SENDER}\n\
                 crlDistributionPoints = URI:{crl_url}\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n"
            ),
        )
        .unwrap();
        openssl(
            [
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &s(&signer.join("key.pem")),
                "-out",
                &p("leaf.csr"),
                "-subj",
                &format!("/CN={SENDER}"),
            ],
            b"",
        )
        .ok();
        openssl(
            [
                "x509",
                "-req",
                "-in",
                &p("leaf.csr"),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca.key"),
                "-set_serial",
                "0x1001",
                "-days",
                "365",
                "-extfile",
                &p("leaf.cnf"),
                "-extensions",
                "leaf",
                "-out",
                &s(&signer.join("cert.pem")),
            ],
            b"",
        )
        .ok();
        // `openssl ca` keeps the revocation in its database and signs the CRL.
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = revoking\n\
                 [revoking]\ndatabase = {}\ncrlnumber = {}\n\
                 default_md = sha256\ndefault_crl_days = 1\n",
                p("index.txt"),
                p("crlnumber"),
            ),
        )
        .unwrap();
        std::fs::write(dir.join("index.txt"), b"").unwrap();
        std::fs::write(dir.join("crlnumber"), b"01\n").unwrap();
        let ca_args = |extra: &[&str]| {
            let mut args = vec![
                "ca".to_string(),
                "-config".into(),
                p("ca.cnf"),
                "-keyfile".into(),
                p("ca.key"),
                "-cert".into(),
                p("ca.pem"),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            args
        };
        let leaf = s(&signer.join("cert.pem"));
        openssl(
            ca_args(&["-revoke", &leaf, "-crl_reason", "keyCompromise"]),
            b"",
        )
        .ok();
        openssl(ca_args(&["-gencrl", "-out", &p("ca.crl")]), b"").ok();
        RevokingCa {
            ca: dir.join("ca.pem"),
            signer,
            crl: dir.join("ca.crl"),
        }
    }
}

/// A plain HTTP server on loopback that answers every GET with one body
/// (a CRL distribution point, a caIssuers URL). Stopped when dropped.
struct HttpFile {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpFile {
    /// Serves `body` on `listener` (bound by the caller, so the address can
    /// be known before the body is).
    fn start(listener: std::net::TcpListener, body: Vec<u8>) -> HttpFile {
        HttpFile::start_as(listener, "application/pkix-crl", body)
    }

    /// Serves `body` as `content_type` on `listener`.
    fn start_as(
        listener: std::net::TcpListener,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> HttpFile {
        use std::sync::atomic::Ordering;
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut out = match stream.try_clone() {
                    Ok(out) => out,
                    Err(_) => continue,
                };
                // Read the request up to its empty line, then answer.
                let mut input = BufReader::new(stream);
                let mut line = String::new();
                while input.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" || line == "\n" {
                        break;
                    }
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
            }
        });
        HttpFile {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpFile {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The same openssl-made unwrapped message, signed by a certificate that
/// chains to an incoming anchor of b.example and is bound to the From
/// address but revoked by its issuer's CRL (served on loopback): revoked,
/// not malformed (RFC 5280 §6.3; Applicability Statement 1.3 §4.1).
#[test]
fn unwrapped_message_from_a_revoked_signer_is_quarantined_as_revoked_rfc5280_6_3() {
    let (_a, b) = two_sites(peers);
    // The CRL's address is in the certificate the CRL revokes: bind the
    // listener first, then serve the CRL made for its address.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let crl_url = format!("http://{}/revoking.crl", listener.local_addr().unwrap());
    let dir = b.path("revoking");
    std::fs::create_dir_all(&dir).unwrap();
    let pki = RevokingCa::make(&dir, &crl_url);
    let crl_server = HttpFile::start(listener, std::fs::read(&pki.crl).unwrap());
    b.run(&["anchor", "add", b.domain, &s(&pki.ca)], b"").ok();
    let serve_b = Serve::start(&b, "b");

    let inner = unwrapped_inner("revoked", "inner subject", "Signed with a revoked key.");
    let message = openssl_unwrapped(&b, "revoked", &pki.signer, &inner);
    deliver_on_backbone(&b, "revoked.eml", &message, &serve_b);

    let entry = wait_for_quarantine(&b, "<revoked@a.example>", &serve_b);
    assert_eq!(entry["reason"], "revoked", "{entry}");
    assert_eq!(entry["from"], SENDER, "{entry}");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("was revoked on") && detail.contains(&crl_url),
        "the detail names the CRL: {entry}"
    );
    assert_nothing_delivered(&b, &serve_b);
    drop(crl_server);
}

/// Hex of `bytes`, lower case, as `sqlite3 .dump` writes a BLOB.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A quarantined message is kept once: the queue's copy of it is the one
/// `hisp quarantine show` prints, with no second copy of its bytes in the
/// database (issue 10, "Logs and the store"). Counted in `sqlite3 .dump`,
/// which writes every BLOB of every table.
#[test]
fn quarantined_message_is_stored_once() {
    let (_a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let stranger = Pki::new();
    let signer = stranger.issue("pat", &["--address", SENDER]);
    let sealed = seal(
        &b,
        &signer,
        &referral("stored-once", "Signed by a CA you do not trust."),
    );
    deliver_on_backbone(&b, "stored-once.eml", &sealed, &serve_b);
    let entry = wait_for_quarantine(&b, "<stored-once@a.example>", &serve_b);

    // A line of the ciphertext: it occurs nowhere else.
    let text = String::from_utf8_lossy(&sealed);
    let marker = text
        .lines()
        .filter(|l| l.len() >= 64 && !l.contains(':'))
        .nth(3)
        .expect("a base64 line")
        .to_string();
    let shown = b
        .run(&["quarantine", "show", &entry["id"].to_string()], b"")
        .ok()
        .stdout;
    assert!(
        String::from_utf8_lossy(&shown).contains(&marker),
        "quarantine show prints the message as received"
    );
    let dump = std::process::Command::new("sqlite3")
        .arg(b.path("data/hisp.db"))
        .arg(".dump")
        .output()
        .expect("the sqlite3 command line runs");
    assert!(dump.status.success(), "{dump:?}");
    let dump = String::from_utf8_lossy(&dump.stdout).to_ascii_lowercase();
    assert_eq!(
        dump.matches(&hex(marker.as_bytes())).count(),
        1,
        "the message's bytes are in the database once"
    );
}

/// A root CA, an intermediate under it and a leaf for A's patient under the
/// intermediate, made by the `openssl` command line. The leaf's Authority
/// Information Access names the intermediate's caIssuers URL; nothing else
/// hands the intermediate out.
struct AiaChain {
    /// The root (PEM), to be an anchor.
    root: PathBuf,
    /// The intermediate (DER), to be served at the caIssuers URL.
    intermediate_der: PathBuf,
    /// cert.pem and key.pem of the leaf.
    signer: PathBuf,
}

impl AiaChain {
    fn make(dir: &Path, ca_issuers_url: &str) -> AiaChain {
        let p = |name: &str| s(&dir.join(name));
        let signer = dir.join("leaf");
        std::fs::create_dir_all(&signer).unwrap();
        std::fs::write(
            dir.join("ext.cnf"),
            format!(
                "[intermediate]\n\
                 basicConstraints = critical, CA:TRUE, pathlen:0\n\
                 keyUsage = critical, keyCertSign, cRLSign\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n\
                 [leaf]\n\
                 basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature, keyEncipherment\n\
                 extendedKeyUsage = emailProtection\n\
                 subjectAltName = email:{SENDER}\n\
                 authorityInfoAccess = caIssuers;URI:{ca_issuers_url}\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n"
            ),
        )
        .unwrap();
        openssl(
            [
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &p("root.key"),
                "-out",
                &p("root.pem"),
                "-days",
                "3650",
                "-subj",
                "/CN=aia test root/O=a.example",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-addext",
                "subjectKeyIdentifier=hash",
            ],
            b"",
        )
        .ok();
        // The intermediate, signed by the root; then the leaf, signed by the intermediate.
        let issue = |key: &str,
                     csr: &str,
                     subject: &str,
                     ca: &str,
                     ca_key: &str,
                     serial: &str,
                     section: &str,
                     out: &str| {
            openssl(
                [
                    "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", subject,
                ],
                b"",
            )
            .ok();
            openssl(
                [
                    "x509",
                    "-req",
                    "-in",
                    csr,
                    "-CA",
                    ca,
                    "-CAkey",
                    ca_key,
                    "-set_serial",
                    serial,
                    "-days",
                    "365",
                    "-extfile",
                    &p("ext.cnf"),
                    "-extensions",
                    section,
                    "-out",
                    out,
                ],
                b"",
            )
            .ok();
        };
        issue(
            &p("intermediate.key"),
            &p("intermediate.csr"),
            "/CN=aia test intermediate/O=a.example",
            &p("root.pem"),
            &p("root.key"),
            "0x2001",
            "intermediate",
            &p("intermediate.pem"),
        );
        issue(
            &s(&signer.join("key.pem")),
            &p("leaf.csr"),
            &format!("/CN={SENDER}"),
            &p("intermediate.pem"),
            &p("intermediate.key"),
            "0x3001",
            "leaf",
            &s(&signer.join("cert.pem")),
        );
        openssl(
            [
                "x509",
                "-in",
                &p("intermediate.pem"),
                "-outform",
                "DER",
                "-out",
                &p("intermediate.cer"),
            ],
            b"",
        )
        .ok();
        AiaChain {
            root: dir.join("root.pem"),
            intermediate_der: dir.join("intermediate.cer"),
            signer,
        }
    }
}

/// A message signed by a certificate whose intermediate only its caIssuers
/// URL (served on loopback) hands out, the message carrying the leaf alone,
/// is accepted and filed: hisp-trust judges inbound signers as `hisp
/// discover` judges the same certificate, building the path through AIA
/// (RFC 5280 §4.2.2.1, §6.1; Applicability Statement 1.3 §4.1).
#[test]
fn signer_under_an_intermediate_reachable_only_by_aia_is_accepted_as_discover_accepts_it_rfc5280_4_2_2_1(
) {
    let (_a, b) = two_sites(peers);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let aia_url = format!(
        "http://{}/aia-intermediate.cer",
        listener.local_addr().unwrap()
    );
    let dir = b.path("aia");
    std::fs::create_dir_all(&dir).unwrap();
    let pki = AiaChain::make(&dir, &aia_url);
    let aia_server = HttpFile::start_as(
        listener,
        "application/pkix-cert",
        std::fs::read(&pki.intermediate_der).unwrap(),
    );
    b.run(&["anchor", "add", b.domain, &s(&pki.root)], b"").ok();

    // `hisp discover` accepts the leaf against the same root: published by
    // a built-in responder of a scratch store, found by DNS CERT.
    let scratch = dir.join("discover");
    std::fs::create_dir_all(&scratch).unwrap();
    let config = scratch.join("hisp.toml");
    std::fs::write(&config, "data_dir = \"data\"\n").unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["--config".to_string(), s(&config)];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, b"")
    };
    cli(&["domain", "add", "a.example"]).ok();
    let (leaf_cert, leaf_key) = (
        s(&pki.signer.join("cert.pem")),
        s(&pki.signer.join("key.pem")),
    );
    cli(&[
        "address", "add", SENDER, "--cert", &leaf_cert, "--key", &leaf_key,
    ])
    .ok();
    let dns = serve::loopback(serve::free_ports(1)[0]);
    let mut responder = common::hisp_cmd([
        "--config",
        &s(&config),
        "dns",
        "serve",
        "--listen",
        &dns.to_string(),
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("hisp dns serve starts");
    eventually(
        Duration::from_secs(20),
        || TcpStream::connect(dns).ok(),
        || format!("hisp dns serve did not listen on {dns}"),
    );
    let discovered = cli(&[
        "discover",
        SENDER,
        "--json",
        "--nameserver",
        &dns.to_string(),
        "--anchor",
        &s(&pki.root),
    ]);
    let _ = responder.kill();
    let _ = responder.wait();
    let json: Value = serde_json::from_slice(&discovered.stdout)
        .unwrap_or_else(|e| panic!("discover --json ({e}): {}", discovered.stderr));
    assert_eq!(discovered.code, 0, "{json}");
    assert!(
        json["certificates"][0]["note"]
            .as_str()
            .unwrap_or_default()
            .contains(&aia_url),
        "discover built the path through caIssuers: {json}"
    );

    let serve_b = Serve::start(&b, "b");
    let body = "Signed by a leaf whose issuer only AIA hands out.";
    let inner = unwrapped_inner("aia", "inner subject", body);
    let message = openssl_unwrapped(&b, "aia", &pki.signer, &inner);
    deliver_on_backbone(&b, "aia.eml", &message, &serve_b);

    // Filed or quarantined, whichever comes first: a quarantine fails at once.
    let (entries, refused) = eventually(
        Duration::from_secs(60),
        || {
            let filed = b.mailbox(RECIPIENT);
            let refused = quarantine(&b);
            (!filed.is_empty() || !refused.is_empty()).then_some((filed, refused))
        },
        || format!("neither filed nor quarantined\n{}", serve_b.log()),
    );
    assert_eq!(refused, Vec::<Value>::new(), "{}", serve_b.log());
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["message_id"], "<aia@a.example>");
    let stored = String::from_utf8_lossy(&b.mailbox_show(&entries[0])).into_owned();
    assert!(stored.contains(body), "{stored}");
    drop(aia_server);
}
