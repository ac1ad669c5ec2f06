//! STARTTLS in `hisp serve` (RFC 3207): with `[smtp] tls_cert` and
//! `tls_key` both listeners offer it and a portal authenticates over it;
//! `[smtp] relay_tls = "required"` relays only over TLS to a peer whose
//! certificate verifies against `relay_ca_file`, and toward a peer without
//! STARTTLS sends nothing, keeping the message queued with the reason.
//!
//! Each site's TLS certificates come from its own test CA made with the
//! `openssl` command; the server certificate names 127.0.0.1 (IP SAN), the
//! name the delivering client checks since `[[route]]` gives an address.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use common::{openssl, s};
use serve::{eventually, first_in_inbox, peers, two_sites_with, Certs, Serve, Site, Swaks};

/// How a site uses TLS.
#[derive(Clone, Copy)]
struct TlsSetup {
    /// `tls_cert` and `tls_key` set: the listeners offer STARTTLS.
    listeners: bool,
    /// `relay_tls`, and `relay_ca_file` naming the peer's TLS CA.
    relay: Option<&'static str>,
}

/// `tls/ca.pem` (a self-signed CA) and `tls/server.pem` with
/// `tls/server.key`, for 127.0.0.1 and localhost, issued by it.
fn make_tls_certificates(site: &Site) {
    let dir = site.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| s(&dir.join(name));
    openssl(
        [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={} TLS test CA", site.domain),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        b"",
    )
    .ok();
    openssl(
        [
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
            "-subj",
            &format!("/CN=hisp.{}", site.domain),
        ],
        b"",
    )
    .ok();
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        [
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("server.ext"),
            "-out",
            &p("server.pem"),
        ],
        b"",
    )
    .ok();
}

/// Makes `site`'s TLS certificates and rewrites its config (discovery
/// through the peer's responder, the peer's domain routed to the peer's
/// backbone listener) with the `[smtp]` TLS keys `tls` asks for.
fn set_up_tls(site: &Site, peer: &Site, tls: TlsSetup) {
    make_tls_certificates(site);
    let mut smtp = String::new();
    if tls.listeners {
        // Relative to the config file.
        smtp.push_str("tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"\n");
    }
    if let Some(mode) = tls.relay {
        smtp.push_str(&format!(
            "relay_tls = \"{mode}\"\nrelay_ca_file = \"{}\"\n",
            s(&peer.path("tls/ca.pem"))
        ));
    }
    site.write_config_with_smtp(peers(site, peer), &smtp);
}

/// Both sites configured and provisioned, both `hisp serve` running.
fn start_two(a_tls: TlsSetup, b_tls: TlsSetup) -> (Site, Site, Serve, Serve) {
    let (a, b) = two_sites_with(Certs::FromCa, peers);
    set_up_tls(&a, &b, a_tls);
    set_up_tls(&b, &a, b_tls);
    let serve_a = Serve::start(&a, "a");
    let serve_b = Serve::start(&b, "b");
    (a, b, serve_a, serve_b)
}

/// Submits to A with `swaks`, STARTTLS then AUTH PLAIN, checking the 250 at
/// the end of DATA; the transcript.
fn submit(a: &Site, serve_a: &Serve, body: &str) -> String {
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .args(["--tls"])
        .auth("portal-a")
        .args(["--header", "Subject: lab results", "--body", body])
        .run();
    assert!(
        out.success && out.text.contains("250 2.0.0 Ok: queued as"),
        "swaks failed:\n{}\n{}",
        out.text,
        serve_a.log()
    );
    out.text
}

/// `swaks` up to the EHLO reply, in clear text; the transcript.
fn ehlo(addr: SocketAddr) -> String {
    Swaks::at(addr).args(["--quit-after", "EHLO"]).run().text
}

/// Whether the EHLO reply in a swaks transcript lists STARTTLS.
fn offers_starttls(transcript: &str) -> bool {
    transcript.lines().any(|l| {
        l.strip_prefix("<-  250")
            .is_some_and(|rest| rest.get(1..) == Some("STARTTLS"))
    })
}

/// `text` without the terminal colour sequences of the log.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn listeners_offer_starttls_and_auth_over_tls_submits_rfc_3207() {
    let with_tls = TlsSetup {
        listeners: true,
        relay: None,
    };
    let plain = TlsSetup {
        listeners: false,
        relay: None,
    };
    let (a, b, serve_a, serve_b) = start_two(with_tls, plain);

    for addr in [a.submission, a.backbone] {
        let transcript = ehlo(addr);
        assert!(offers_starttls(&transcript), "{addr}:\n{transcript}");
    }
    let transcript = ehlo(b.backbone);
    assert!(
        !offers_starttls(&transcript),
        "B has no tls_cert:\n{transcript}"
    );
    assert!(serve_a.log().contains("listener on"), "{}", serve_a.log());

    let transcript = submit(&a, &serve_a, "Sent over STARTTLS.");
    // swaks marks what it read inside TLS with `<~`.
    assert!(
        transcript.contains("<~  235"),
        "AUTH over TLS:\n{transcript}"
    );
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as"),
        "{transcript}"
    );
    // A relays opportunistically: B offers no STARTTLS, so in clear.
    let entry = first_in_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["from"], "pat@a.example");
}

#[test]
fn relay_tls_required_delivers_over_starttls_to_a_peer_whose_ca_is_trusted() {
    let both = TlsSetup {
        listeners: true,
        relay: Some("required"),
    };
    let (a, b, serve_a, serve_b) = start_two(both, both);

    submit(&a, &serve_a, "Relayed over TLS only.");
    let entry = first_in_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert_eq!(entry["from"], "pat@a.example");
    let shown = b.mailbox_text(&entry);
    assert!(shown.contains("Relayed over TLS only."), "{shown}");
    let log = plain(&serve_a.log());
    assert!(
        log.lines()
            .any(|l| l.contains("message sent") && l.contains("tls=true")),
        "A's delivery went over TLS:\n{log}"
    );
}

#[test]
fn relay_tls_required_keeps_the_message_queued_when_the_peer_offers_no_starttls() {
    let a_tls = TlsSetup {
        listeners: true,
        relay: Some("required"),
    };
    let plain = TlsSetup {
        listeners: false,
        relay: None,
    };
    let (a, b, serve_a, _serve_b) = start_two(a_tls, plain);

    submit(&a, &serve_a, "Never in clear.");
    let reason = "does not offer STARTTLS and TLS is required: nothing sent";
    let entry = eventually(
        Duration::from_secs(30),
        || {
            a.queue_entries().into_iter().find(|e| {
                e["last_error"]
                    .as_str()
                    .is_some_and(|err| err.contains(reason))
            })
        },
        || {
            format!(
                "no queued message with the reason:\n{:#?}\n{}",
                a.queue_entries(),
                serve_a.log()
            )
        },
    );
    assert_eq!(entry["direction"], "outbound", "{entry:#}");
    assert_ne!(entry["state"], "done", "{entry:#}");
    assert!(
        b.mailbox("doc@b.example").is_empty(),
        "nothing reached B in clear"
    );
}
