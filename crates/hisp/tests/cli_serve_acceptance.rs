//! Acceptance of `hisp serve` (issue 5, "Acceptance"), through the real
//! binary on real loopback sockets: HISP A (a.example) and HISP B
//! (b.example) are `hisp serve` processes set up with the CLI, each
//! publishing its certificates with the built-in DNS responder; portals
//! submit with `swaks`. Each refusal is asserted as the exact reply swaks
//! saw; the backbone is tapped with a plain SMTP sink and the capture opened
//! with the `openssl` command; an attachment crosses byte for byte; a
//! `kill -9` after the 250 replies loses and duplicates nothing.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::time::Duration;

use base64::Engine;
use common::{openssl, s};
use serve::{free_ports, loopback, peers, two_sites, wait_for_inbox, Serve, Settings, Sink, Swaks};

/// Submission accepted from loopback without AUTH goes no further than MAIL
/// FROM (issue 5, Listeners: AUTH required on submission; RFC 4954 §6).
#[test]
fn unauthenticated_submission_is_refused_with_530_5_7_0_rfc4954_section_6() {
    let (a, _b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example").run();
    assert!(!out.success, "{}", out.text);
    assert_eq!(
        out.refusal(),
        Some("530 5.7.0 Authentication required"),
        "{}\n{}",
        out.text,
        serve_a.log()
    );
    assert!(a.queue_entries().is_empty(), "nothing queued");
}

/// The backbone takes mail for its own domains only: never an open relay
/// (issue 5, Listeners: backbone "for local domains only").
#[test]
fn backbone_refuses_to_relay_to_a_third_domain_with_550_5_7_1() {
    let (_a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let out = Swaks::to(b.backbone, "pat@a.example", "someone@c.example").run();
    assert!(!out.success, "{}", out.text);
    assert_eq!(
        out.refusal(),
        Some(
            "550 5.7.1 <someone@c.example>: relaying denied: \
             this server accepts mail for its own domains only"
        ),
        "{}\n{}",
        out.text,
        serve_b.log()
    );
    assert!(b.queue_entries().is_empty(), "nothing queued");
}

/// At MAIL FROM on submission the sender must be an address the
/// authenticated account may use (issue 5, Listeners).
#[test]
fn mail_from_not_granted_to_the_account_is_refused_with_550_5_7_1() {
    let (a, _b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let out = Swaks::to(a.submission, "other@a.example", "doc@b.example")
        .auth("portal-a")
        .run();
    assert!(!out.success, "{}", out.text);
    assert_eq!(
        out.refusal(),
        Some("550 5.7.1 <other@a.example>: sender address not owned by the authenticated account"),
        "{}\n{}",
        out.text,
        serve_a.log()
    );
    assert!(a.queue_entries().is_empty(), "nothing queued");
}

/// DATA larger than `[smtp] max_message_size` is refused after the final
/// dot, and nothing is queued (issue 5, Listeners: DATA size limit; RFC 1870 §6).
#[test]
fn message_over_max_message_size_is_refused_with_552_5_3_4_rfc1870_section_6() {
    let (a, b) = two_sites(|a, b| Settings {
        max_message_size: Some(2000),
        ..peers(a, b)
    });
    let serve_a = Serve::start(&a, "a");
    let _serve_b = Serve::start(&b, "b");
    let body = "An oversize referral letter line.\n".repeat(150);
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--body", &body])
        .run();
    assert!(!out.success, "{}", out.text);
    assert_eq!(
        out.refusal(),
        Some("552 5.3.4 Message size exceeds fixed maximum message size of 2000 octets"),
        "{}\n{}",
        out.text,
        serve_a.log()
    );
    assert!(a.queue_entries().is_empty(), "nothing queued");
}

/// A recipient whose certificates cannot be looked up now (the name server
/// does not answer) is a temporary refusal at RCPT, so the portal tries
/// again later (issue 5, Listeners: "a temporary discovery failure -> 451 4.4.3").
#[test]
fn recipient_domain_with_dns_down_is_refused_at_rcpt_with_451_4_4_3() {
    // Nothing listens on this port, UDP or TCP.
    let dead_dns = loopback(free_ports(1)[0]);
    let (a, _b) = two_sites(|a, b| Settings {
        nameserver: dead_dns,
        ..peers(a, b)
    });
    let serve_a = Serve::start(&a, "a");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .run();
    assert!(!out.success, "{}", out.text);
    let refusal = out.refusal().unwrap_or_default();
    assert!(
        refusal.starts_with(
            "451 4.4.3 <doc@b.example>: certificate discovery failed temporarily, try again later: "
        ),
        "{}\n{}",
        out.text,
        serve_a.log()
    );
    // The RCPT was the refused command: AUTH and MAIL FROM went through.
    assert!(
        out.text.contains("-> RCPT TO:<doc@b.example>"),
        "{}",
        out.text
    );
    assert!(a.queue_entries().is_empty(), "nothing queued");
}

/// What A puts on the backbone opens with the independent `openssl cms`:
/// decrypted with B's address key, verified against A's CA, it carries the
/// portal's body (issue 5, Acceptance: "The message captured on the
/// backbone ... opens with openssl cms -decrypt + -verify using B's key and A's CA").
#[test]
fn message_captured_on_the_backbone_opens_with_openssl_cms_decrypt_and_verify() {
    let sink = Sink::start();
    let (a, b) = two_sites(|a, b| Settings {
        route_to: sink.addr,
        ..peers(a, b)
    });
    let serve_a = Serve::start(&a, "a");
    let _serve_b = Serve::start(&b, "b");
    let body = "Discharge summary for the patient, as agreed.";
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: discharge summary", "--body", body])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());

    let captured = sink
        .message(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("nothing reached the sink in 60 s:\n{}", serve_a.log()));
    let captured_text = String::from_utf8_lossy(&captured);
    assert!(
        captured_text.contains("application/pkcs7-mime") && !captured_text.contains(body),
        "the backbone carries only the S/MIME envelope:\n{captured_text}"
    );
    let file = a.path("captured.eml");
    std::fs::write(&file, &captured).unwrap();
    let keys = b.cert_dir("doc@b.example");
    let decrypted = openssl(
        [
            "cms",
            "-decrypt",
            "-in",
            &s(&file),
            "-recip",
            &s(&keys.join("cert.pem")),
            "-inkey",
            &s(&keys.join("key.pem")),
        ],
        b"",
    )
    .ok();
    let verified = openssl(
        ["cms", "-verify", "-CAfile", &s(&a.ca_pem())],
        &decrypted.stdout,
    );
    assert_eq!(
        verified.code,
        0,
        "openssl cms -verify failed:\n{}\n{}",
        verified.stderr,
        String::from_utf8_lossy(&decrypted.stdout)
    );
    assert!(
        verified.stderr.contains("Verification successful"),
        "{}",
        verified.stderr
    );
    let content = verified.stdout_text();
    assert!(content.contains(body), "{content}");
    assert!(content.contains("Subject: discharge summary"), "{content}");
}

/// A PDF-like file attached by swaks (multipart/mixed, base64) comes out of
/// B's mailbox byte for byte (issue 5, Acceptance: "body and attachments byte-equal").
#[test]
fn attachment_submitted_with_swaks_arrives_byte_equal_in_the_peers_mailbox() {
    let (a, b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    // Every byte value, with the shape of a PDF around it.
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nstream\n".to_vec();
    for i in 0..12_000u32 {
        pdf.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
    }
    pdf.extend((0..=255u8).chain((0..=255u8).rev()));
    pdf.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
    let file = a.path("lab-results.pdf");
    std::fs::write(&file, &pdf).unwrap();

    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: lab results attached"])
        .args(["--body", "The lab results are attached."])
        .args(["--attach-type", "application/pdf"])
        .args(["--attach", &format!("@{}", s(&file))])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());

    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );
    let stored = b.mailbox_show(&entries[0]);
    let stored_text = String::from_utf8_lossy(&stored);
    assert!(
        stored_text.contains("The lab results are attached."),
        "{stored_text}"
    );
    let attachment = base64_part(&stored, "application/pdf")
        .unwrap_or_else(|| panic!("no base64 application/pdf part in:\n{stored_text}"));
    assert_eq!(attachment.len(), pdf.len(), "attachment length");
    assert!(attachment == pdf, "the attachment's bytes differ");
}

/// A without any `[[route]]` finds B's backbone through the MX record of
/// b.example (served by B's DNS responder) and delivers there (issue 5,
/// Workers: "route by MX"; RFC 5321 §5.1).
#[test]
fn mail_for_a_domain_without_a_route_goes_to_its_mx_host() {
    let (a, b) = two_sites(|a, b| Settings {
        by_mx: true,
        ..peers(a, b)
    });
    let config = std::fs::read_to_string(a.config()).unwrap();
    assert!(!config.contains("[[route]]"), "{config}");
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: routed by MX"])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );
    assert_eq!(entries[0]["subject"], "routed by MX", "{entries:?}");
}

/// Delivery notification between two running HISPs (issue 6, Acceptance:
/// "A's tracking shows processed and then dispatched"): B answers with
/// processed and dispatched MDNs through its outbound path, and `hisp
/// message status` on A shows each step with its time; the MDNs stay out of
/// the patient's Inbox. The two MDNs travel as separate messages and may
/// arrive in either order: a `processed` MDN overtaken by the `dispatched`
/// one still gets its step, when it arrives.
#[test]
fn hisp_message_status_shows_processed_then_dispatched_from_the_peer() {
    let (a, b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Message-Id: <track-1@a.example>"])
        .args(["--header", "Subject: tracked"])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let run = a.run(&["message", "status", "<track-1@a.example>", "--json"], b"");
        let json: serde_json::Value = serde_json::from_slice(&run.ok().stdout).unwrap();
        let recipient = json[0]["recipients"][0].clone();
        if recipient["state"] == "delivered" && recipient["steps"]["processed"].is_string() {
            break json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered and processed after 60 s: {json:#}\n{}\n{}",
            serve_a.log(),
            serve_b.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let message = &status[0];
    assert_eq!(message["message_id"], "<track-1@a.example>");
    assert_eq!(message["final_delivery"], true);
    let recipient = &message["recipients"][0];
    assert_eq!(recipient["address"], "doc@b.example");
    let steps = &recipient["steps"];
    for step in ["queued", "relayed", "processed", "dispatched", "delivered"] {
        assert!(steps[step].is_string(), "no {step} step: {status:#}");
    }
    assert!(steps.get("failed").is_none(), "{status:#}");
    // Each MDN answers the relayed message; in which order they came is
    // up to the network.
    for step in ["processed", "dispatched"] {
        assert!(
            steps["relayed"].as_str().unwrap() <= steps[step].as_str().unwrap(),
            "{status:#}"
        );
    }
    // The MDNs were consumed by tracking: nothing in the patient's Inbox,
    // and B lists its two MDNs as notifications.
    assert!(a.mailbox("pat@a.example").is_empty());
    let sent = b
        .run(&["message", "list", "--notifications", "--json"], b"")
        .ok();
    let sent: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
    let kinds: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["notification", "notification"], "{sent:#}");
}

/// The decoded body of the first base64 part of type `content_type` in a
/// multipart message: the top-level boundary, then each part's headers and body.
fn base64_part(message: &[u8], content_type: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(message).ok()?;
    let after = &text[text.find("boundary=")? + "boundary=".len()..];
    let boundary = match after.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => after.split([';', '\r', '\n', ' ']).next()?,
    };
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str()).skip(1).find_map(|part| {
        let (headers, body) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))?;
        let headers = headers.to_ascii_lowercase();
        if !headers.contains(content_type) || !headers.contains("base64") {
            return None;
        }
        let encoded: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
    })
}

/// Every message acknowledged with 250 survives `kill -9` and is delivered
/// once after restart (issue 5, Acceptance: "Kill -9 of A after a batch of
/// 250 replies and before delivery: after restart every one of those
/// messages reaches B exactly once"; Listeners: committed durably before the 250).
#[test]
fn messages_acknowledged_before_kill_9_reach_the_peer_exactly_once_after_restart() {
    const N: usize = 5;
    // Nothing listens here: A accepts but cannot deliver.
    let closed = loopback(free_ports(1)[0]);
    let (a, b) = two_sites(|a, b| Settings {
        route_to: closed,
        ..peers(a, b)
    });
    let mut serve_a = Serve::start(&a, "a-first");
    let serve_b = Serve::start(&b, "b");
    for i in 1..=N {
        let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
            .auth("portal-a")
            .args(["--header", &format!("Subject: batch message {i}")])
            .args(["--body", &format!("Body of batch message {i}.")])
            .run();
        assert!(
            out.queued(),
            "message {i}:\n{}\n{}",
            out.text,
            serve_a.log()
        );
    }
    // Each message has had its failed attempt (connection refused) and waits
    // for its retry: no claim is held when A dies.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while serve_a.log().matches("deferred").count() < N {
        assert!(
            std::time::Instant::now() < deadline,
            "A did not try the {N} messages:\n{}",
            serve_a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    serve_a.kill_9();
    assert_eq!(b.mailbox("doc@b.example").len(), 0, "nothing left A");

    a.write_config(peers(&a, &b));
    let serve_a = Serve::start(&a, "a-restarted");
    // The first retry comes 60 s after the failed attempt (the default
    // backoff); allow for a slow machine.
    let wait = Duration::from_secs(150);
    wait_for_inbox(&b, "doc@b.example", N, wait, &[&serve_a, &serve_b]);
    // A duplicate would come in the same pass or the next poll.
    std::thread::sleep(Duration::from_secs(3));
    let entries = b.mailbox("doc@b.example");
    let mut subjects: Vec<String> = entries
        .iter()
        .map(|e| e["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    subjects.sort();
    let expected: Vec<String> = (1..=N).map(|i| format!("batch message {i}")).collect();
    assert_eq!(subjects, expected, "{}\n{}", a.queue(), serve_a.log());
}
