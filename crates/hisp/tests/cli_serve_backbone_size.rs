//! The backbone's size limit against the submission's (issue 13: "the largest message a
//! portal may submit must also pass between two hisp instances once sealed"), through
//! two real `hisp serve` processes on loopback. Sealing makes a message about 1.375
//! times larger (base64 of the enveloped data), so the backbone listener advertises and
//! enforces `[smtp] backbone_max_message_size`, by default what a message of
//! `max_message_size` reaches once sealed (RFC 1870 §4, §6).
//!
//! The limits are 2 MiB here instead of the default 25 MiB to keep the tests fast.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::time::Duration;

use common::s;
use serve::{peers, two_sites, wait_for_inbox, Serve, Settings, Site, Swaks};

/// `[smtp] max_message_size` of both sites.
const LIMIT: usize = 2 * 1024 * 1024;
/// The backbone limit that follows from [`LIMIT`]: (2 MiB + 192 KiB) × 11/8.
const BACKBONE_LIMIT: usize = 3_153_920;

/// A message of exactly `size` octets as DATA carries it (CRLF lines), from
/// pat@a.example to doc@b.example, its body base64 lines like an attachment's.
fn message_of(size: usize, message_id: &str) -> Vec<u8> {
    let mut message = format!(
        "From: pat@a.example\r\nTo: doc@b.example\r\nSubject: imaging study\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{message_id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: application/dicom\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    assert!(size >= message.len() + 2, "room for a body line");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut next = (0..).map(|i: usize| alphabet[(i * 7 + i / 64) % 64]);
    // Lines of 76 characters and CRLF; the last one as long as what is left.
    while size - message.len() > 80 {
        message.extend(next.by_ref().take(76));
        message.extend_from_slice(b"\r\n");
    }
    let last = size - message.len() - 2;
    message.extend(next.by_ref().take(last));
    message.extend_from_slice(b"\r\n");
    assert_eq!(message.len(), size);
    message
}

/// Sends `message` (ending in CRLF) with swaks to `server` from pat@a.example to
/// doc@b.example, authenticated as A's portal when `auth`. swaks ends the data with
/// CRLF `.` CRLF, so the file holds the message without its last CRLF.
fn send(
    site: &Site,
    server: std::net::SocketAddr,
    message: &[u8],
    auth: bool,
) -> serve::Transcript {
    let file = site.path("message.eml");
    let text = message
        .strip_suffix(b"\r\n")
        .expect("a message ends in CRLF");
    std::fs::write(&file, text).unwrap();
    let swaks = Swaks::to(server, "pat@a.example", "doc@b.example").args([
        "--data",
        &format!("@{}", s(&file)),
        "--suppress-data",
    ]);
    if auth { swaks.auth("portal-a") } else { swaks }.run()
}

/// The SIZE a listener advertises in its EHLO reply (RFC 1870 §4).
fn advertised_size(server: std::net::SocketAddr) -> Option<usize> {
    let out = Swaks::at(server).args(["--quit-after", "EHLO"]).run();
    out.text
        .lines()
        .find_map(|l| l.trim().strip_prefix("<-  250-SIZE "))
        .map(|n| n.trim().parse().expect("a number after SIZE"))
}

/// A and B, both with `max_message_size` = [`LIMIT`].
fn sites() -> (Site, Site) {
    let (a, b) = two_sites(|a, b| Settings {
        max_message_size: Some(LIMIT),
        ..peers(a, b)
    });
    b.write_config(Settings {
        max_message_size: Some(LIMIT),
        ..peers(&b, &a)
    });
    (a, b)
}

/// The largest message A's submission takes arrives in B's mailbox: B's backbone
/// takes its sealed form, which is larger than B's own submission limit.
#[test]
fn message_of_the_submission_limit_sealed_at_a_passes_the_backbone_of_b() {
    let (a, b) = sites();
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    assert_eq!(advertised_size(a.submission), Some(LIMIT));
    assert_eq!(advertised_size(b.backbone), Some(BACKBONE_LIMIT));

    // One octet more than the limit is refused at A: the message below is the
    // largest a portal may submit.
    let over = send(
        &a,
        a.submission,
        &message_of(LIMIT + 1, "over@a.example"),
        true,
    );
    assert_eq!(
        over.refusal(),
        Some("552 5.3.4 Message size exceeds fixed maximum message size of 2097152 octets"),
        "{}",
        over.text
    );

    let message = message_of(LIMIT, "largest@a.example");
    let out = send(&a, a.submission, &message, true);
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(90),
        &[&serve_a, &serve_b],
    );
    let stored = b.mailbox_show(&entries[0]);
    let body_at = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &message[body_at..];
    assert!(
        stored.windows(body.len()).any(|w| w == body),
        "the body arrived whole ({} octets stored)",
        stored.len()
    );
}

/// B's backbone refuses what is over its limit, computed from `max_message_size`,
/// with 552 5.3.4 after the final dot (RFC 1870 §6), and queues nothing.
#[test]
fn message_over_the_backbone_limit_is_refused_with_552_5_3_4_rfc1870_section_6() {
    let (a, b) = sites();
    let serve_b = Serve::start(&b, "b");
    let message = message_of(BACKBONE_LIMIT + 1, "too-big@a.example");
    let out = send(&a, b.backbone, &message, false);
    assert!(!out.success, "{}", out.text);
    assert_eq!(
        out.refusal(),
        Some("552 5.3.4 Message size exceeds fixed maximum message size of 3153920 octets"),
        "{}\n{}",
        out.text,
        serve_b.log()
    );
    assert!(b.queue_entries().is_empty(), "nothing queued");
}

/// `[smtp] backbone_max_message_size` set explicitly is the backbone's limit, advertised
/// and enforced; the submission listener keeps `max_message_size`.
#[test]
fn backbone_max_message_size_sets_the_backbone_limit_alone() {
    let (a, b) = two_sites(peers);
    b.write_config_with_smtp(peers(&b, &a), "backbone_max_message_size = 4000\n");
    let serve_b = Serve::start(&b, "b");
    assert_eq!(advertised_size(b.backbone), Some(4000));
    assert_eq!(advertised_size(b.submission), Some(25 * 1024 * 1024));
    let out = send(&a, b.backbone, &message_of(4001, "x@a.example"), false);
    assert_eq!(
        out.refusal(),
        Some("552 5.3.4 Message size exceeds fixed maximum message size of 4000 octets"),
        "{}\n{}",
        out.text,
        serve_b.log()
    );
    assert!(b.queue_entries().is_empty(), "nothing queued");
}
