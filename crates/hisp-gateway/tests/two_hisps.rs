//! Two HISPs over real sockets on loopback: a portal's message submitted to
//! A arrives, decrypted and byte-equal, in B's inbox; every refusal of the
//! issue gives its exact reply; an untrusted inbound message is quarantined.

mod common;

use common::smtp::Client;
use common::{leaf, World, PASSWORD};
use hisp_ca::{CaOptions, CertificateAuthority};
use hisp_smime::{seal, KeyPair, SealOptions, Signer};

use hisp_gateway::server::{ServerBuilder, ServerSettings};
use hisp_smtp::{deliver, ClientConfig, OutboundEnvelope, RecipientOutcome};
use hisp_store::{DirectAddress, Folder, QuarantineReason, QueueState, Store, TrackingState};
use time::OffsetDateTime;

const MESSAGE: &str = "From: Alice <alice@a.example>\r\n\
To: Bob <bob@b.example>\r\n\
Subject: lab results\r\n\
Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <lab-1@a.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Dear Bob,\r\n\
.a line that starts with a dot\r\n\
the results are attached.\r\n";

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

/// The message without the trace fields the listeners prepend.
fn without_trace(bytes: &[u8]) -> &[u8] {
    let mut rest = bytes;
    while rest.starts_with(b"Received:") {
        let mut end = 0;
        // A header field ends at a CRLF not followed by folding white space.
        while let Some(i) = rest[end..].windows(2).position(|w| w == b"\r\n") {
            end += i + 2;
            if !matches!(rest.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        rest = &rest[end..];
    }
    rest
}

/// The requests for notification that A adds below the trace fields of a
/// portal account's message: processed MDNs to the sender, and final
/// delivery (the test accounts keep the default: on).
const NOTIFICATION_REQUEST: &[u8] = b"Disposition-Notification-To: <alice@a.example>\r\n\
Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n";

/// The message as the portal wrote it: trace fields and A's requests gone.
fn as_submitted(bytes: &[u8]) -> &[u8] {
    without_trace(bytes)
        .strip_prefix(NOTIFICATION_REQUEST)
        .unwrap_or_else(|| {
            panic!(
                "no notification request below the trace fields:\n{}",
                String::from_utf8_lossy(bytes)
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_message_arrives_decrypted_and_byte_equal_in_the_peers_inbox() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    let queued = c.message(MESSAGE.as_bytes()).await;
    assert_eq!(queued.code, 250, "{queued}");
    assert!(queued.text.starts_with("Ok: queued as "), "{queued}");
    c.command("QUIT").await;

    let now = OffsetDateTime::now_utc();
    assert_eq!(world.a.worker(&world.b).run_once(now).await.unwrap(), 1);
    let a_queue = world.a.store.queue(None).unwrap();
    assert_eq!(a_queue[0].state, QueueState::Done);
    assert_eq!(a_queue[0].recipients[0].state, TrackingState::Relayed);

    assert_eq!(
        world
            .b
            .worker(&world.a)
            .run_once(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    let inbox = world
        .b
        .store
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1);
    let received = world.b.store.read_message(inbox[0].id).unwrap();
    let sent = world
        .a
        .store
        .mailbox(&addr("alice@a.example"), Folder::Sent)
        .unwrap();
    assert_eq!(sent.len(), 1);
    let sent = world.a.store.read_message(sent[0].id).unwrap();
    assert_eq!(received.bytes, sent.bytes, "B reads what A queued");
    assert_eq!(as_submitted(&received.bytes), MESSAGE.as_bytes());
    assert!(world.b.store.quarantined().unwrap().is_empty());
    world.stop().await;
}

/// `seal_local`: with b.example also local to A (bob's key and A's CA as its
/// anchor in A's store), mail from alice to bob is not put straight into
/// bob's Inbox: it is sealed, relayed by the route to A's own backbone
/// listener, queued there as inbound, opened and judged, and only then filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_local_sends_mail_between_local_domains_through_smime_and_the_backbone() {
    let world = World::start().await;
    let a = &world.a;
    let b_domain = hisp_store::Domain::parse("b.example").unwrap();
    a.store.add_domain(&b_domain, &[]).unwrap();
    let bob = &world.b.issued;
    let cert = hisp_store::NewCertificate::new(
        &bob.cert.to_der().unwrap(),
        Some(&bob.key.private_key_to_pem_pkcs8().unwrap()),
    )
    .unwrap();
    a.store
        .add_address(&addr("bob@b.example"), &[cert])
        .unwrap();
    a.store
        .add_anchors(
            &b_domain,
            hisp_store::Direction::Both,
            &[hisp_store::NewAnchor::from_der(&a.ca.cert().to_der().unwrap()).unwrap()],
        )
        .unwrap();

    let mut c = Client::login(a.submission, Some(&a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    assert_eq!(c.message(MESSAGE.as_bytes()).await.code, 250);
    c.command("QUIT").await;

    let mut routes = hisp_gateway::Routes::new();
    routes.insert("b.example", a.backbone);
    let mut settings = hisp_gateway::WorkerSettings::new("hisp.a.example");
    settings.seal_local = true;
    let worker = hisp_gateway::Worker::new(a.ctx.clone(), routes, settings);
    let now = OffsetDateTime::now_utc();
    assert_eq!(worker.run_once(now).await.unwrap(), 1, "the outbound one");
    let bob_inbox = || {
        a.store
            .mailbox(&addr("bob@b.example"), Folder::Inbox)
            .unwrap()
    };
    assert!(bob_inbox().is_empty(), "not delivered locally");
    assert_eq!(
        worker.run_once(OffsetDateTime::now_utc()).await.unwrap(),
        1,
        "the inbound one"
    );

    let queue = a.store.queue(None).unwrap();
    // The message out, the message in, and bob's processed and dispatched MDNs to alice.
    assert_eq!(queue.len(), 4, "{queue:?}");
    let mdns = queue
        .iter()
        .filter(|e| e.expect == hisp_store::Expectation::Notification)
        .count();
    assert_eq!(mdns, 2, "{queue:?}");
    let outbound = queue
        .iter()
        .find(|e| e.direction == hisp_store::MessageDirection::Outbound)
        .unwrap();
    assert_eq!(outbound.recipients[0].state, TrackingState::Relayed);
    let inbound = queue
        .iter()
        .find(|e| e.direction == hisp_store::MessageDirection::Inbound)
        .unwrap();
    assert_eq!(inbound.state, QueueState::Done);
    assert_eq!(inbound.recipients[0].state, TrackingState::Delivered);
    let inbox = bob_inbox();
    assert_eq!(inbox.len(), 1);
    let received = a.store.read_message(inbox[0].id).unwrap();
    assert_eq!(as_submitted(&received.bytes), MESSAGE.as_bytes());
    assert!(a.store.quarantined().unwrap().is_empty());
    world.stop().await;
}

/// With local mail sealed, a local address whose certificate cannot be
/// discovered is refused at RCPT like a remote non-Direct address; with it
/// off the same address is accepted (delivered straight to the Inbox).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_local_refuses_a_local_recipient_without_a_certificate_at_rcpt() {
    let world = World::start().await;
    let a = &world.a;
    // carol@a.example exists but no certificate of hers is published.
    let carol = leaf(&a.ca, "carol@a.example");
    let cert = hisp_store::NewCertificate::new(
        &carol.cert.to_der().unwrap(),
        Some(&carol.key.private_key_to_pem_pkcs8().unwrap()),
    )
    .unwrap();
    a.store
        .add_address(&addr("carol@a.example"), &[cert])
        .unwrap();
    // A second server on A's store with local mail sealed.
    let dns = world.responder.as_ref().unwrap().local_addr();
    let mut settings = ServerSettings::new("hisp.a.example", common::discoverer(dns));
    settings.queue_engine = false;
    settings.seal_local_mail = true;
    let sealing_server = ServerBuilder::new(a.store.clone(), settings)
        .start()
        .await
        .unwrap();
    let sealing = sealing_server.addresses().submission;

    let mut c = Client::login(sealing, Some(&a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    let r = c.command("RCPT TO:<carol@a.example>").await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 1, 1))), "{r}");
    assert!(
        r.text.contains("carol@a.example") && r.text.contains("not a Direct address"),
        "{r}"
    );
    c.command("QUIT").await;

    let mut plain = Client::login(a.submission, Some(&a.user), PASSWORD).await;
    assert_eq!(plain.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(plain.command("RCPT TO:<carol@a.example>").await.code, 250);
    plain.command("QUIT").await;
    sealing_server.stop().await.unwrap();
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_email_address_is_refused_at_rcpt_with_the_reason() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    let r = c.command("RCPT TO:<someone@plain.example>").await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 1, 1))), "{r}");
    assert!(
        r.text
            .starts_with("<someone@plain.example>: not a Direct address: no certificate"),
        "{r}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_down_is_a_temporary_refusal_451_4_4_3() {
    let mut world = World::start().await;
    if let Some(r) = world.responder.take() {
        r.shutdown().await.unwrap();
    }
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    let r = c.command("RCPT TO:<carol@b.example>").await;
    assert_eq!((r.code, r.enhanced), (451, Some((4, 4, 3))), "{r}");
    assert!(r.text.starts_with("<carol@b.example>: "), "{r}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_from_not_owned_by_the_account_is_refused_550_5_7_1() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    for from in ["bob@b.example", "mallory@a.example"] {
        let r = c.command(&format!("MAIL FROM:<{from}>")).await;
        assert_eq!(
            r.to_string(),
            format!("550 5.7.1 <{from}>: sender address not owned by the authenticated account")
        );
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_no_auth_are_refused() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, None, PASSWORD).await;
    let r = c.command("AUTH PLAIN AHBvcnRhbC1hbGljZQB3cm9uZw==").await;
    assert_eq!((r.code, r.enhanced), (535, Some((5, 7, 8))), "{r}");
    let r = c.command("MAIL FROM:<alice@a.example>").await;
    assert_eq!(r.to_string(), "530 5.7.0 Authentication required");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_through_the_backbone_is_refused_550_5_7_1() {
    let world = World::start().await;
    let mut c = Client::login(world.a.backbone, None, PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<someone@c.example>").await.code, 250);
    let r = c.command("RCPT TO:<bob@b.example>").await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 7, 1))), "{r}");
    assert!(r.text.contains("relaying denied"), "{r}");
    let r = c.command("RCPT TO:<nobody@a.example>").await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 1, 1))), "{r}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcc_recipient_is_refused_after_data_direct_allows_no_bcc() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    let r = c.message(MESSAGE.as_bytes()).await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 7, 1))), "{r}");
    assert!(
        r.text.contains("alice@a.example is not named in To or Cc"),
        "{r}"
    );
    assert!(
        world.a.store.queue(None).unwrap().is_empty(),
        "nothing queued"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_signed_under_an_untrusted_ca_lands_in_quarantine_not_the_inbox() {
    let world = World::start().await;
    let rogue_ca = CertificateAuthority::create("Rogue CA", &CaOptions::default()).unwrap();
    let rogue = leaf(&rogue_ca, "alice@a.example");
    let sealed = seal(
        MESSAGE.as_bytes(),
        &Signer::new(KeyPair::new(rogue.cert, rogue.key).unwrap()),
        std::slice::from_ref(&world.b.issued.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let report = deliver(
        &ClientConfig::new("rogue.test", None),
        "127.0.0.1",
        world.b.backbone.port(),
        &OutboundEnvelope {
            id: "rogue-1".into(),
            mail_from: "alice@a.example".into(),
            rcpt_to: vec!["bob@b.example".into()],
        },
        &sealed,
    )
    .await
    .unwrap();
    assert!(matches!(
        report.recipients[0].1,
        RecipientOutcome::Delivered(_)
    ));

    let now = OffsetDateTime::now_utc();
    assert_eq!(world.b.worker(&world.a).run_once(now).await.unwrap(), 1);
    assert!(world
        .b
        .store
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap()
        .is_empty());
    let quarantined = world.b.store.quarantined().unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].reason, QuarantineReason::Untrusted);
    let queue = world.b.store.queue(None).unwrap();
    // No MDN answers a quarantined message (issue 6): the one inbound entry only.
    assert_eq!(queue.len(), 1, "{queue:?}");
    let entry = &queue[0];
    assert_eq!(entry.state, QueueState::Done);
    assert_eq!(entry.recipients[0].state, TrackingState::Failed);
    assert_eq!(world.b.worker(&world.a).run_once(now).await.unwrap(), 0);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_is_retried_with_backoff_then_failed_after_the_lifetime() {
    let World { a, b, responder } = World::start().await;
    let mut c = Client::login(a.submission, Some(&a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    assert_eq!(c.message(MESSAGE.as_bytes()).await.code, 250);
    let worker = a.worker(&b);
    b.stop().await;

    let now = OffsetDateTime::now_utc();
    assert_eq!(worker.run_once(now).await.unwrap(), 1);
    let entry = &a.store.queue(None).unwrap()[0];
    assert_eq!(entry.state, QueueState::Pending);
    assert_eq!(entry.recipients[0].state, TrackingState::Queued);
    assert_eq!(
        entry.next_attempt_at.unix_timestamp(),
        now.unix_timestamp() + 60,
        "first retry after retry_base"
    );
    assert!(entry
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("b.example"));
    assert_eq!(worker.run_once(now).await.unwrap(), 0, "not due yet");

    let later = now + std::time::Duration::from_secs(25 * 3600);
    assert_eq!(worker.run_once(later).await.unwrap(), 1);
    let entry = &a.store.queue(None).unwrap()[0];
    assert_eq!(entry.state, QueueState::Failed);
    assert_eq!(entry.recipients[0].state, TrackingState::Failed);
    // The sender's Inbox gets a DSN (RFC 3464, action failed) naming bob
    // and why (issue 5: "then a DSN to the sender's mailbox").
    let inbox = a
        .store
        .mailbox(&addr("alice@a.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let dsn = a.store.read_message(inbox[0].id).unwrap();
    let parsed = hisp_mdn::parse_dsn(&dsn.bytes).unwrap();
    assert_eq!(parsed.recipients[0].final_recipient, "bob@b.example");
    assert_eq!(parsed.recipients[0].action, hisp_mdn::DsnAction::Failed);
    let diagnostic = parsed.recipients[0].diagnostic.clone().unwrap_or_default();
    assert!(diagnostic.contains("lifetime"), "{diagnostic}");
    a.stop().await;
    if let Some(r) = responder {
        r.shutdown().await.unwrap();
    }
}

/// Issue 4: an anchor change is in force for the next message, without a
/// restart. The running HISP reads its anchors from the store on every RCPT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchor_removed_from_the_store_is_out_of_force_at_the_next_rcpt() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("RSET").await.code, 250);
    // A's administrator removes the anchor that trusts B's CA (another
    // connection to the same database, as the CLI would).
    let other = hisp_store::SqliteStore::open(world.a.store.path()).unwrap();
    let anchors = other
        .anchors(Some(&hisp_store::Domain::parse("a.example").unwrap()))
        .unwrap();
    assert_eq!(anchors.len(), 1);
    other
        .remove_anchor(
            &anchors[0].domain,
            &hisp_store::AnchorSelector::parse(&anchors[0].info.fingerprint.to_string()).unwrap(),
        )
        .unwrap();
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    let r = c.command("RCPT TO:<bob@b.example>").await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 1, 1))), "{r}");
    assert!(r.text.contains("no path to anchors"), "{r}");
    world.stop().await;
}
