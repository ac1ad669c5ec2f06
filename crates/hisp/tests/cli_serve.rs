//! `hisp serve` as a newcomer runs it: two HISPs (A serving a.example, B
//! serving b.example), each a real `hisp serve` process with its own data
//! dir set up through the CLI, each publishing its own certificates with the
//! built-in DNS responder and discovering the other's through it, relaying
//! by `[[route]]`. A portal's message submitted to A with `swaks` lands,
//! decrypted, in B's mailbox; SIGTERM stops both with exit 0.

mod common;
#[path = "common/serve.rs"]
mod serve;

use common::hisp;
use serve::{first_in_inbox, peers, two_sites_with, Certs, Serve, Site, Swaks, Transcript};

/// Both sites set up as a newcomer would (addresses certified with
/// `--cert-from`), both `hisp serve` running.
fn start_two() -> (Site, Site, Serve, Serve) {
    let (a, b) = two_sites_with(Certs::FromCa, peers);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    (a, b, serve_a, serve_b)
}

/// Submits a message with `swaks`, AUTH PLAIN over loopback.
fn swaks(site: &Site, account: &str, from: &str, to: &str, body: &str) -> Transcript {
    Swaks::to(site.submission, from, to)
        .auth(account)
        .args(["--header", "Subject: lab results", "--body", body])
        .run()
}

#[test]
fn message_submitted_with_swaks_lands_decrypted_in_the_peers_mailbox_both_ways() {
    let (a, b, mut serve_a, mut serve_b) = start_two();

    let out = swaks(
        &a,
        "portal-a",
        "pat@a.example",
        "doc@b.example",
        "Dear doctor, my lab results are attached.",
    );
    assert!(
        out.queued(),
        "swaks failed:\n{}\n{}",
        out.text,
        serve_a.log()
    );
    let entry = first_in_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["from"], "pat@a.example");
    assert_eq!(entry["subject"], "lab results");
    let shown = b.mailbox_text(&entry);
    assert!(
        shown.contains("Dear doctor, my lab results are attached."),
        "{shown}"
    );
    // Decrypted: the stored message is the portal's, not the S/MIME envelope.
    assert!(!shown.contains("application/pkcs7-mime"), "{shown}");
    assert_eq!(a.mailbox("pat@a.example").len(), 0, "A's inbox stays empty");

    let out = swaks(
        &b,
        "ehr-b",
        "doc@b.example",
        "pat@a.example",
        "The results look fine.",
    );
    assert!(
        out.success,
        "swaks failed:\n{}\n{}",
        out.text,
        serve_b.log()
    );
    let entry = first_in_inbox(&a, "pat@a.example", &[&serve_a, &serve_b]);
    let shown = a.mailbox_text(&entry);
    assert!(shown.contains("The results look fine."), "{shown}");

    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
    assert!(serve_a.log().contains("hisp: stopped"), "{}", serve_a.log());
}

#[test]
fn address_without_a_certificate_is_refused_at_rcpt_with_550_5_1_1() {
    let (a, _b, mut serve_a, _serve_b) = start_two();
    // b.example is a Direct domain, but nobody@b.example has no certificate
    // published (B's responder answers NXDOMAIN), so it is not a Direct address.
    let out = swaks(
        &a,
        "portal-a",
        "pat@a.example",
        "nobody@b.example",
        "never sent",
    );
    assert!(!out.success, "{}", out.text);
    assert!(
        out.text
            .contains("<** 550 5.1.1 <nobody@b.example>: not a Direct address"),
        "{}\n{}",
        out.text,
        serve_a.log()
    );
    let queue = a.queue_entries();
    assert!(queue.is_empty(), "nothing is queued: {queue:?}");
    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
}

#[test]
fn serve_without_a_data_dir_says_how_to_configure_one() {
    let run = hisp(["serve"], b"");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("hisp: no data_dir configured"),
        "{}",
        run.stderr
    );
}
