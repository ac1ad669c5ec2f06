//! A running `hisp serve` keeps private keys parsed and anchor stores built
//! between messages (issue 13: what is computed once stays computed), and a
//! change the administrator makes with the CLI, in another process, is in
//! force for the next message all the same: a certificate replaced with
//! `hisp address`, an anchor removed with `hisp anchor remove`.
//!
//! Each test first lets the server use what it keeps (a message judged or a
//! recipient discovered), then changes it with the CLI, then checks the next
//! message against the change, through real processes and sockets.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::path::Path;
use std::time::Duration;

use common::{hisp, s};
use serde_json::Value;
use serve::{eventually, peers, two_sites, wait_for_inbox, Serve, Site, Swaks};

const SENDER: &str = "pat@a.example";
const RECIPIENT: &str = "doc@b.example";

fn referral(message_id: &str) -> Vec<u8> {
    format!(
        "From: {SENDER}\r\n\
         To: {RECIPIENT}\r\n\
         Subject: referral {message_id}\r\n\
         Message-ID: <{message_id}@a.example>\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         About {message_id}.\r\n"
    )
    .into_bytes()
}

/// `hisp smime seal` of a referral, signed by A's patient and encrypted to
/// the certificate at `recipient_cert`.
fn sealed(a: &Site, recipient_cert: &Path, message_id: &str) -> Vec<u8> {
    let signer = a.cert_dir(SENDER);
    hisp(
        [
            "smime",
            "seal",
            "--signer-cert",
            &s(&signer.join("cert.pem")),
            "--signer-key",
            &s(&signer.join("key.pem")),
            "--recipient-cert",
            &s(recipient_cert),
        ],
        &referral(message_id),
    )
    .ok()
    .stdout
}

/// Hands `message` to B's backbone listener as a peer HISP would.
fn deliver(b: &Site, name: &str, message: &[u8], serve_b: &Serve) {
    let file = b.path(name);
    std::fs::write(&file, message).unwrap();
    let out = Swaks::to(b.backbone, SENDER, RECIPIENT)
        .args(["--data", &s(&file)])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_b.log());
}

/// The inbox entry of `message_id` at B, waiting for it.
fn in_inbox(b: &Site, message_id: &str, serve_b: &Serve) -> Value {
    let id = format!("<{message_id}@a.example>");
    eventually(
        Duration::from_secs(30),
        || {
            b.mailbox(RECIPIENT)
                .into_iter()
                .find(|e| e["message_id"] == id.as_str())
        },
        || {
            format!(
                "{id} not in the inbox; quarantine: {}\nqueue:\n{}\nlog:\n{}",
                quarantine_list(b),
                b.queue(),
                serve_b.log()
            )
        },
    )
}

fn quarantine_list(b: &Site) -> String {
    String::from_utf8_lossy(&b.run(&["quarantine", "list", "--json"], b"").ok().stdout).into_owned()
}

/// The fingerprint of the one anchor of `site`'s domain.
fn only_anchor(site: &Site) -> String {
    let list = site.run(&["anchor", "list", "--json"], b"").ok();
    let anchors: Value = serde_json::from_slice(&list.stdout).unwrap();
    let anchors = anchors.as_array().unwrap();
    assert_eq!(anchors.len(), 1, "{anchors:?}");
    anchors[0]["fingerprint"].as_str().unwrap().to_string()
}

/// Applicability Statement 1.3 §4 (the recipient decrypts with its own
/// private key): the doctor's certificate and key replaced with `hisp
/// address` while B runs, the next message, sealed to the new certificate,
/// is opened with the new key, not the one B had parsed before.
#[test]
fn a_certificate_replaced_with_hisp_address_decrypts_the_next_message() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let old_cert = b.cert_dir(RECIPIENT).join("cert.pem");
    deliver(&b, "before.eml", &sealed(&a, &old_cert, "before"), &serve_b);
    in_inbox(&b, "before", &serve_b);

    let new_dir = b.path("certs/replaced");
    b.run(
        &[
            "cert",
            "issue",
            "--address",
            RECIPIENT,
            "--out",
            &s(&new_dir),
        ],
        b"",
    )
    .ok();
    b.run(&["address", "remove", RECIPIENT], b"").ok();
    let (cert, key) = (s(&new_dir.join("cert.pem")), s(&new_dir.join("key.pem")));
    b.run(
        &["address", "add", RECIPIENT, "--cert", &cert, "--key", &key],
        b"",
    )
    .ok();

    let new_cert = new_dir.join("cert.pem");
    deliver(&b, "after.eml", &sealed(&a, &new_cert, "after"), &serve_b);
    let entry = in_inbox(&b, "after", &serve_b);
    assert!(b.mailbox_text(&entry).contains("About after."));
    assert_eq!(quarantine_list(&b).trim(), "[]", "{}", serve_b.log());
}

/// Applicability Statement 1.3 §2.3 (trust anchors per domain): the anchor
/// B trusted A's signer through, removed with `hisp anchor remove` while B
/// runs, no longer makes the next inbound message trusted.
#[test]
fn an_anchor_removed_with_the_cli_no_longer_trusts_the_next_inbound_signer() {
    let (a, b) = two_sites(peers);
    let serve_b = Serve::start(&b, "b");
    let cert = b.cert_dir(RECIPIENT).join("cert.pem");
    deliver(&b, "trusted.eml", &sealed(&a, &cert, "trusted"), &serve_b);
    in_inbox(&b, "trusted", &serve_b);

    b.run(&["anchor", "remove", "b.example", &only_anchor(&b)], b"")
        .ok();
    deliver(
        &b,
        "untrusted.eml",
        &sealed(&a, &cert, "untrusted"),
        &serve_b,
    );
    let entry = eventually(
        Duration::from_secs(30),
        || {
            let list = b.run(&["quarantine", "list", "--json"], b"").ok();
            let entries: Value = serde_json::from_slice(&list.stdout).unwrap();
            entries
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["message_id"] == "<untrusted@a.example>")
                .cloned()
        },
        || format!("not quarantined; queue:\n{}\n{}", b.queue(), serve_b.log()),
    );
    assert_eq!(entry["reason"], "untrusted", "{entry}");
    assert_eq!(
        wait_for_inbox(&b, RECIPIENT, 1, Duration::from_secs(1), &[&serve_b]).len(),
        1,
        "only the message from before the removal"
    );
}

/// Applicability Statement 1.3 §5 (a recipient's certificate must chain to
/// the sender domain's anchors): A's anchor for B's CA, removed with `hisp
/// anchor remove` while A runs, makes the next RCPT to B's doctor a refusal
/// (550 5.1.1), where the same RCPT was accepted before.
#[test]
fn an_anchor_removed_with_the_cli_refuses_the_next_recipient_at_rcpt() {
    let (a, b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let _serve_b = Serve::start(&b, "b");
    let rcpt = || {
        Swaks::to(a.submission, SENDER, RECIPIENT)
            .auth("portal-a")
            .args(["--quit-after", "RCPT"])
            .run()
    };
    let before = rcpt();
    assert!(before.success, "{}\n{}", before.text, serve_a.log());

    a.run(&["anchor", "remove", "a.example", &only_anchor(&a)], b"")
        .ok();
    let after = rcpt();
    let refusal = after.refusal().unwrap_or_default().to_string();
    assert!(
        refusal.starts_with("550 5.1.1 <doc@b.example>: not a Direct address: "),
        "{}\n{}",
        after.text,
        serve_a.log()
    );
}
