//! A portal that hands its mail to a local Postfix, which relays it to HISP
//! A's submission listener with SASL AUTH (issue 5, Acceptance: "Postfix ...
//! relays a portal's message to A ... and it arrives at B").

mod common;
#[path = "common/postfix.rs"]
mod postfix;
#[path = "common/serve.rs"]
mod serve;

use std::time::Duration;

use postfix::{Postfix, Relay};
use serve::{free_ports, peers, two_sites, wait_for_inbox, Serve, Swaks, PASSWORD};

#[test]
fn a_portals_postfix_relays_with_auth_to_a_and_the_message_reaches_b() {
    let (a, b) = two_sites(peers);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    let postfix = Postfix::start(
        free_ports(1)[0],
        &Relay {
            host: a.submission,
            user: "portal-a",
            password: PASSWORD,
        },
    );

    // The portal speaks to its Postfix without AUTH, as a local relay client.
    let out = Swaks::to(postfix.addr, "pat@a.example", "doc@b.example")
        .args(["--header", "Subject: relayed by the portal's Postfix"])
        .args(["--body", "Dear Dr. B, my blood pressure log is below."])
        .run();
    assert!(out.success, "{}\n{}", out.text, postfix.log());

    let entries = wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(90),
        &[&serve_a, &serve_b],
    );
    assert_eq!(
        entries[0]["subject"], "relayed by the portal's Postfix",
        "{entries:?}"
    );
    let stored = String::from_utf8_lossy(&b.mailbox_show(&entries[0])).into_owned();
    assert!(
        stored.contains("my blood pressure log is below"),
        "{stored}"
    );
    // Postfix's own trace field shows the path through it.
    assert!(stored.contains("by portal.test (Postfix)"), "{stored}");
    // Postfix logged in to A and A accepted the message.
    let log = postfix.log();
    assert!(
        log.contains("status=sent")
            && log.contains(&format!(
                "relay=127.0.0.1[127.0.0.1]:{}",
                a.submission.port()
            )),
        "{log}"
    );
    assert!(serve_a.log().contains("portal-a"), "{}", serve_a.log());
}
