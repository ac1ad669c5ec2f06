//! Delivery notification between two HISPs on loopback (issue 6,
//! Acceptance): B answers A's mail with MDNs through its normal outbound
//! path, A's tracking follows them; a peer that never answers makes A fail
//! the recipient after the timeout and tell the sender with one DSN; late,
//! duplicate and unknown MDNs change nothing; quarantined mail gets no MDN;
//! an MDN made with the `openssl` command line is tracked like hisp's own.
//! Time is the worker's `now`: timeouts are reached without sleeping.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::smtp::Client;
use common::{Hisp, World, PASSWORD};
use hisp_mdn::{build_mdn, parse_dsn, Disposition, DispositionType, MdnSpec};
use hisp_smime::{seal, KeyPair, SealOptions, Signer};
use hisp_smtp::{
    deliver, ClientConfig, Envelope, OutboundEnvelope, Policy, Reply, Role, Server, ServerConfig,
    Session, Shutdown,
};
use hisp_store::{
    AuditKind, DirectAddress, Expectation, Folder, MessageId, RecipientRecord, Store,
    TrackingState, UserName,
};
use time::OffsetDateTime;

const MESSAGE_ID: &str = "referral-7@a.example";

fn message(id: &str) -> String {
    format!(
        "From: Alice <alice@a.example>\r\n\
         To: Bob <bob@b.example>\r\n\
         Subject: referral\r\n\
         Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}>\r\n\
         \r\n\
         Please see the patient on Monday.\r\n"
    )
}

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

/// alice submits `message(id)` to bob at A.
async fn submit(a: &Hisp, id: &str) {
    submit_text(a, "bob@b.example", &message(id)).await;
}

/// alice submits `text` to `rcpt` at A; every reply must be a success.
async fn submit_text(a: &Hisp, rcpt: &str, text: &str) {
    let mut c = Client::login(a.submission, Some(&a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    let r = c.command(&format!("RCPT TO:<{rcpt}>")).await;
    assert_eq!(r.code, 250, "{r}");
    assert_eq!(c.command("DATA").await.code, 354);
    let r = c.message(text.as_bytes()).await;
    assert_eq!(r.code, 250, "{r}");
    c.command("QUIT").await;
}

/// Bob's tracking record at A for the message `id`.
fn tracked(a: &Hisp, id: &str) -> RecipientRecord {
    let messages = a
        .store
        .tracked_message(&MessageId::parse(id).unwrap())
        .unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    messages[0].recipients[0].clone()
}

/// Runs A's and B's workers until neither finds anything to do: A relays,
/// B files and answers, B relays its MDNs, A tracks them. Each look is at
/// the current time: mail arriving over SMTP is queued at the wall clock
/// (whole seconds), so a fixed earlier `now` could miss it.
async fn settle(world: &World) {
    let (wa, wb) = (world.a.worker(&world.b), world.b.worker(&world.a));
    for _ in 0..8 {
        let n = wa.run_once(OffsetDateTime::now_utc()).await.unwrap()
            + wb.run_once(OffsetDateTime::now_utc()).await.unwrap();
        if n == 0 {
            return;
        }
    }
    panic!("the workers did not settle");
}

/// The MDNs and DSNs a HISP queued itself.
fn notifications(h: &Hisp) -> Vec<hisp_store::QueueEntry> {
    h.store
        .queue(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.expect == Expectation::Notification)
        .collect()
}

fn audit_details(h: &Hisp, id: &str, kind: AuditKind) -> Vec<String> {
    h.store
        .audit_events(&MessageId::parse(id).unwrap())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.detail)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_delivery_asked_tracks_processed_then_dispatched() {
    let world = World::start().await;
    submit(&world.a, MESSAGE_ID).await;
    settle(&world).await;

    let r = tracked(&world.a, MESSAGE_ID);
    assert_eq!(r.state, TrackingState::Delivered, "{r:?}");
    assert!(r.at(TrackingState::Relayed).is_some(), "{r:?}");
    assert!(r.at(TrackingState::Processed).is_some(), "{r:?}");
    assert!(r.at(TrackingState::Dispatched).is_some(), "{r:?}");
    // B answered with exactly two MDNs, both relayed to A.
    let sent = notifications(&world.b);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent
        .iter()
        .all(|e| e.recipients[0].state == TrackingState::Relayed));
    // Consumed by tracking: alice's Inbox holds nothing, no DSN either.
    assert!(alice_inbox(&world).is_empty());
    assert_eq!(
        audit_details(&world.a, MESSAGE_ID, AuditKind::MdnReceived).len(),
        2
    );
    // A never answers an MDN with an MDN.
    assert!(notifications(&world.a).is_empty());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_final_delivery_only_processed_is_asked_and_tracked() {
    let world = World::start().await;
    let user = UserName::parse(&world.a.user).unwrap();
    world
        .a
        .store
        .set_request_final_delivery(&user, false)
        .unwrap();
    submit(&world.a, MESSAGE_ID).await;
    settle(&world).await;

    let r = tracked(&world.a, MESSAGE_ID);
    assert_eq!(r.state, TrackingState::Delivered, "{r:?}");
    assert!(r.at(TrackingState::Processed).is_some(), "{r:?}");
    assert_eq!(r.at(TrackingState::Dispatched), None, "{r:?}");
    assert_eq!(notifications(&world.b).len(), 1, "processed only");
    world.stop().await;
}

/// An SMTP server that takes every message and keeps it: a tap on the
/// backbone.
#[derive(Default)]
struct Capture {
    messages: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl Policy for Capture {
    async fn rcpt_to(&self, _: &Session, _: &Envelope, _: &str) -> Result<(), Reply> {
        Ok(())
    }

    async fn data(&self, _: &Session, _: &Envelope, message: Vec<u8>) -> Reply {
        self.messages.lock().unwrap().push(message);
        Reply::ok_queued("captured")
    }
}

fn openssl(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_pem(dir: &Path, name: &str, pem: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mdn_on_the_wire_opens_with_openssl_cms_and_names_the_message_and_recipient() {
    let world = World::start().await;
    let capture = Arc::new(Capture::default());
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig::new(Role::Backbone, "tap.test"),
        capture.clone(),
    )
    .await
    .unwrap();
    let tap = server.local_addr().unwrap();
    let stop = Shutdown::new();
    let tap_task = tokio::spawn(server.serve(stop.clone(), Duration::from_secs(5)));

    submit(&world.a, MESSAGE_ID).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(world.a.worker(&world.b).run_once(now).await.unwrap(), 1);
    assert_eq!(
        world
            .b
            .worker(&world.a)
            .run_once(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    let to_tap = world.b.worker_via("a.example", tap);
    assert_eq!(
        to_tap.run_once(OffsetDateTime::now_utc()).await.unwrap(),
        2,
        "two MDNs"
    );
    let captured = capture.messages.lock().unwrap().clone();
    assert_eq!(captured.len(), 2);

    let dir = tempfile::tempdir().unwrap();
    let alice = &world.a.issued;
    let cert = write_pem(dir.path(), "alice.pem", &alice.cert.to_pem().unwrap());
    let key = write_pem(
        dir.path(),
        "alice.key",
        &alice.key.private_key_to_pem_pkcs8().unwrap(),
    );
    let b_ca = write_pem(dir.path(), "b-ca.pem", &world.b.ca.cert().to_pem().unwrap());
    let mut dispositions = Vec::new();
    for (i, wire) in captured.iter().enumerate() {
        let text = String::from_utf8_lossy(wire);
        assert!(text.contains("application/pkcs7-mime"), "{text}");
        assert!(!text.contains("Final-Recipient"), "sealed: {text}");
        let file = write_pem(dir.path(), &format!("mdn-{i}.eml"), wire);
        let (ok, decrypted, err) = openssl(&[
            "cms", "-decrypt", "-in", &file, "-recip", &cert, "-inkey", &key,
        ]);
        assert!(ok, "openssl cms -decrypt: {err}");
        let signed = write_pem(dir.path(), &format!("mdn-{i}.signed"), &decrypted);
        let (ok, content, err) = openssl(&["cms", "-verify", "-CAfile", &b_ca, "-in", &signed]);
        assert!(
            ok && err.contains("Verification successful"),
            "openssl cms -verify: {err}"
        );
        let content = String::from_utf8_lossy(&content).into_owned();
        assert!(
            content.contains(&format!("Original-Message-ID: <{MESSAGE_ID}>")),
            "{content}"
        );
        let final_recipient = content
            .lines()
            .find(|l| l.starts_with("Final-Recipient:"))
            .unwrap_or_else(|| panic!("no Final-Recipient: {content}"));
        assert_eq!(
            final_recipient
                .trim_start_matches("Final-Recipient:")
                .replace(' ', ""),
            "rfc822;bob@b.example"
        );
        assert!(
            !content
                .to_ascii_lowercase()
                .contains("disposition-notification-to"),
            "an MDN never asks for an MDN: {content}"
        );
        let disposition = content
            .lines()
            .find(|l| l.starts_with("Disposition:"))
            .unwrap()
            .to_string();
        dispositions.push(disposition);
    }
    dispositions.sort();
    assert_eq!(
        dispositions,
        [
            "Disposition: automatic-action/MDN-sent-automatically; dispatched",
            "Disposition: automatic-action/MDN-sent-automatically; processed",
        ]
    );
    stop.trigger();
    let _ = tap_task.await;
    world.stop().await;
}

/// Postfix's `smtp-sink`: says 250 to everything and never answers with
/// an MDN. Killed when dropped.
struct SmtpSink {
    child: Child,
    addr: SocketAddr,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        SmtpSink::start_with(&[])
    }

    /// `smtp-sink` with `options` before its address (`-f rcpt` refuses
    /// every RCPT with the `-B` reply).
    fn start_with(options: &[&str]) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new("smtp-sink")
            .args(options)
            .args(["-u", "nobody", &addr.to_string(), "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink (apt-get install postfix)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "smtp-sink did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink { child, addr }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_times_out_and_the_sender_gets_one_dsn() {
    let world = World::start().await;
    let sink = SmtpSink::start();
    let worker = world.a.worker_via("b.example", sink.addr);
    submit(&world.a, MESSAGE_ID).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(worker.run_once(now).await.unwrap(), 1);
    assert_eq!(tracked(&world.a, MESSAGE_ID).state, TrackingState::Relayed);
    let inbox = || alice_inbox(&world);

    // Just before the timeout nothing happens.
    worker
        .run_once(now + Duration::from_secs(3590))
        .await
        .unwrap();
    assert_eq!(tracked(&world.a, MESSAGE_ID).state, TrackingState::Relayed);
    assert!(inbox().is_empty());

    // After it: failed, with the reason, and one DSN in alice's Inbox.
    let later = now + Duration::from_secs(3601);
    worker.run_once(later).await.unwrap();
    let r = tracked(&world.a, MESSAGE_ID);
    assert_eq!(r.state, TrackingState::Failed, "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.contains("no dispatched MDN") || reason.contains("no processed MDN"),
        "{reason}"
    );
    assert!(r.notified_at.is_some());
    let entries = inbox();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let dsn = world.a.store.read_message(entries[0].id).unwrap();
    let text = String::from_utf8_lossy(&dsn.bytes).into_owned();
    assert!(text.contains("From: <postmaster@a.example>\r\n"), "{text}");
    assert!(text.contains("Subject: Not Delivered: referral"), "{text}");
    let parsed = parse_dsn(&dsn.bytes).unwrap();
    assert_eq!(parsed.recipients.len(), 1);
    assert_eq!(parsed.recipients[0].final_recipient, "bob@b.example");
    assert_eq!(parsed.recipients[0].status, "5.0.0");
    assert!(
        parsed.recipients[0]
            .diagnostic
            .as_deref()
            .unwrap_or("")
            .contains("MDN"),
        "{parsed:?}"
    );
    assert_eq!(parsed.original_message_id.as_deref(), Some(MESSAGE_ID));
    assert_eq!(
        audit_details(&world.a, MESSAGE_ID, AuditKind::TimedOut).len(),
        1
    );

    // Exactly one final notice, however often the worker looks again.
    worker
        .run_once(later + Duration::from_secs(60))
        .await
        .unwrap();
    worker
        .run_once(later + Duration::from_secs(7200))
        .await
        .unwrap();
    assert_eq!(inbox().len(), 1);
    world.stop().await;
}

/// Sends `mdn` from bob (signed with his key, encrypted to alice) to A's
/// backbone, as B would.
async fn mdn_from_bob(world: &World, mdn: &[u8]) {
    let bob = &world.b.issued;
    let sealed = seal(
        mdn,
        &Signer::new(KeyPair::new(bob.cert.clone(), bob.key.clone()).unwrap()),
        std::slice::from_ref(&world.a.issued.cert),
        &SealOptions::default(),
    )
    .unwrap();
    send_to_a(world, &sealed).await;
}

async fn send_to_a(world: &World, sealed: &[u8]) {
    let report = deliver(
        &ClientConfig::new("hisp.b.example", None),
        "127.0.0.1",
        world.a.backbone.port(),
        &OutboundEnvelope {
            id: "mdn".into(),
            mail_from: "bob@b.example".into(),
            rcpt_to: vec!["alice@a.example".into()],
        },
        sealed,
    )
    .await
    .unwrap();
    assert!(
        matches!(
            report.recipients[0].1,
            hisp_smtp::RecipientOutcome::Delivered(_)
        ),
        "{report:?}"
    );
}

fn processed_mdn(about: &str, id: &str) -> Vec<u8> {
    build_mdn(&MdnSpec {
        message_id: id,
        date: OffsetDateTime::now_utc(),
        from: "bob@b.example",
        to: "alice@a.example",
        reporting_ua: "hisp.b.example; test",
        original_recipient: None,
        final_recipient: "bob@b.example",
        original_message_id: Some(about),
        original_subject: Some("referral"),
        disposition: Disposition::automatic(DispositionType::Processed),
        failure: None,
        final_delivery_extension: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_duplicate_and_unknown_mdns_change_nothing_and_are_audited() {
    let world = World::start().await;
    let sink = SmtpSink::start();
    let a = world.a.worker_via("b.example", sink.addr);

    // Duplicate: the same processed MDN twice.
    submit(&world.a, "dup-1@a.example").await;
    // Taken after `submit`: a `now` from before it may fall a second short
    // of the message's due time.
    let now = OffsetDateTime::now_utc();
    assert_eq!(a.run_once(now).await.unwrap(), 1);
    let mdn = processed_mdn("dup-1@a.example", "mdn-dup-1@b.example");
    mdn_from_bob(&world, &mdn).await;
    mdn_from_bob(&world, &mdn).await;
    assert_eq!(a.run_once(OffsetDateTime::now_utc()).await.unwrap(), 2);
    let r = tracked(&world.a, "dup-1@a.example");
    assert_eq!(r.state, TrackingState::Processed, "{r:?}");
    let ignored = audit_details(&world.a, "dup-1@a.example", AuditKind::MdnIgnored);
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert!(ignored[0].contains("duplicate"), "{ignored:?}");

    // Unknown: an MDN about a message A never sent.
    mdn_from_bob(
        &world,
        &processed_mdn("never-sent@a.example", "mdn-x@b.example"),
    )
    .await;
    assert_eq!(a.run_once(OffsetDateTime::now_utc()).await.unwrap(), 1);
    let unknown = audit_details(&world.a, "never-sent@a.example", AuditKind::MdnIgnored);
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].contains("unknown message"), "{unknown:?}");
    assert!(world
        .a
        .store
        .tracked_message(&MessageId::parse("never-sent@a.example").unwrap())
        .unwrap()
        .is_empty());
    let events: Vec<_> = world
        .a
        .store
        .audit_events(&MessageId::parse("mdn-x@b.example").unwrap())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::MdnIgnored)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].detail.contains("unknown message"), "{events:?}");

    // Late: the recipient timed out (and alice was told) before the MDN came.
    submit(&world.a, "late-1@a.example").await;
    assert_eq!(a.run_once(OffsetDateTime::now_utc()).await.unwrap(), 1);
    let later = now + Duration::from_secs(2 * 3600);
    a.run_once(later).await.unwrap();
    assert_eq!(
        tracked(&world.a, "late-1@a.example").state,
        TrackingState::Failed
    );
    let inbox = || alice_inbox(&world);
    // dup-1 was processed but never dispatched: it timed out too.
    let told = inbox().len();
    assert_eq!(told, 2, "one DSN each for dup-1 and late-1");
    mdn_from_bob(
        &world,
        &processed_mdn("late-1@a.example", "mdn-late-1@b.example"),
    )
    .await;
    assert_eq!(a.run_once(later).await.unwrap(), 1);
    let r = tracked(&world.a, "late-1@a.example");
    assert_eq!(r.state, TrackingState::Failed, "{r:?}");
    let late = audit_details(&world.a, "late-1@a.example", AuditKind::MdnIgnored);
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].contains("late"), "{late:?}");
    assert_eq!(inbox().len(), told, "the sender sees nothing new");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mdn_made_with_openssl_cms_is_recognised_and_tracked() {
    let world = World::start().await;
    let sink = SmtpSink::start();
    let a = world.a.worker_via("b.example", sink.addr);
    submit(&world.a, MESSAGE_ID).await;
    // The queue is looked at after the message was queued: a `now` taken
    // before `submit` may fall a second short of its due time.
    assert_eq!(a.run_once(OffsetDateTime::now_utc()).await.unwrap(), 1);

    // Written by hand as another HISP's MDN: a multipart/report entity,
    // clear-signed by bob and encrypted to alice with the openssl command.
    let entity = format!(
        "Content-Type: multipart/report; report-type=disposition-notification;\n\
         \tboundary=\"mdn-boundary\"\n\
         \n\
         --mdn-boundary\n\
         Content-Type: text/plain\n\
         \n\
         Your message was processed.\n\
         --mdn-boundary\n\
         Content-Type: message/disposition-notification\n\
         \n\
         Reporting-UA: mail.b.example; other-hisp 2.1\n\
         Final-Recipient: rfc822; bob@b.example\n\
         Original-Message-ID: <{MESSAGE_ID}>\n\
         Disposition: automatic-action/MDN-sent-automatically;processed\n\
         X-DIRECT-FINAL-DESTINATION-DELIVERY:\n\
         \n\
         --mdn-boundary--\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let bob = &world.b.issued;
    let entity_file = write_pem(dir.path(), "mdn.txt", entity.as_bytes());
    let bob_cert = write_pem(dir.path(), "bob.pem", &bob.cert.to_pem().unwrap());
    let bob_key = write_pem(
        dir.path(),
        "bob.key",
        &bob.key.private_key_to_pem_pkcs8().unwrap(),
    );
    let alice_cert = write_pem(
        dir.path(),
        "alice.pem",
        &world.a.issued.cert.to_pem().unwrap(),
    );
    let (ok, signed, err) = openssl(&[
        "cms",
        "-sign",
        "-md",
        "sha256",
        "-in",
        &entity_file,
        "-signer",
        &bob_cert,
        "-inkey",
        &bob_key,
    ]);
    assert!(ok, "openssl cms -sign: {err}");
    let signed_file = write_pem(dir.path(), "signed.txt", &signed);
    let (ok, sealed, err) = openssl(&[
        "cms",
        "-encrypt",
        "-aes-256-cbc",
        "-in",
        &signed_file,
        "-from",
        "bob@b.example",
        "-to",
        "alice@a.example",
        "-subject",
        "Processed: referral",
        &alice_cert,
    ]);
    assert!(ok, "openssl cms -encrypt: {err}");
    send_to_a(&world, &sealed).await;
    assert_eq!(a.run_once(OffsetDateTime::now_utc()).await.unwrap(), 1);

    let r = tracked(&world.a, MESSAGE_ID);
    assert_eq!(r.state, TrackingState::Processed, "{r:?}");
    assert!(world.a.store.quarantined().unwrap().is_empty());
    assert!(alice_inbox(&world).is_empty());
    world.stop().await;
}

/// Trust passed but the mailbox cannot take the message (carol's address
/// was removed at B between RCPT and filing): B sends processed, then
/// failed; A fails carol and tells alice with a DSN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_mailbox_cannot_take_gets_processed_then_failed() {
    let world = World::start_with_b_domain_cert().await;
    to_carol_removed_after_relaying(&world, "carol-1@a.example").await;

    let sent = notifications(&world.b);
    assert_eq!(sent.len(), 2, "processed and failed: {sent:?}");
    let r = tracked(&world.a, "carol-1@a.example");
    assert_eq!(r.state, TrackingState::Failed, "{r:?}");
    assert!(r.at(TrackingState::Processed).is_some(), "{r:?}");
    let reason = r.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("failed") && reason.contains("mailbox"),
        "{reason}"
    );
    assert_eq!(alice_inbox(&world).len(), 1, "one DSN");
    world.stop().await;
}

/// alice writes to carol@b.example (a Direct address through b.example's
/// domain certificate); A relays it; then carol's address is removed at B
/// before B files the message, and both workers run until done.
async fn to_carol_removed_after_relaying(world: &World, id: &str) {
    let carol = addr("carol@b.example");
    world.b.store.add_address(&carol, &[]).unwrap();
    let text = message(id).replace("Bob <bob@b.example>", "carol@b.example");
    submit_text(&world.a, "carol@b.example", &text).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(world.a.worker(&world.b).run_once(now).await.unwrap(), 1);
    world.b.store.remove_address(&carol).unwrap();
    settle(world).await;
}

fn alice_inbox(world: &World) -> Vec<hisp_store::MailboxEntry> {
    world
        .a
        .store
        .mailbox(&addr("alice@a.example"), Folder::Inbox)
        .unwrap()
}

/// A portal that writes its own, malformed, final-delivery request keeps
/// it (hisp adds none); B answers with a processed MDN only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_final_delivery_request_gets_a_processed_mdn_only() {
    let world = World::start().await;
    let text = format!(
        "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=maybe,yes\r\n{}",
        message("odd-1@a.example")
    );
    submit_text(&world.a, "bob@b.example", &text).await;
    settle(&world).await;

    assert_eq!(notifications(&world.b).len(), 1, "processed only");
    let r = tracked(&world.a, "odd-1@a.example");
    assert_eq!(r.state, TrackingState::Delivered, "{r:?}");
    assert_eq!(r.at(TrackingState::Dispatched), None);
    world.stop().await;
}

/// The mailbox cannot take the message and the sender asked for no final
/// delivery: the processed MDN completes bob's copy, the failed one that
/// follows still fails it, and alice is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_mdn_after_processed_fails_a_recipient_without_final_delivery() {
    let world = World::start_with_b_domain_cert().await;
    let user = UserName::parse(&world.a.user).unwrap();
    world
        .a
        .store
        .set_request_final_delivery(&user, false)
        .unwrap();
    to_carol_removed_after_relaying(&world, "carol-2@a.example").await;

    let r = tracked(&world.a, "carol-2@a.example");
    assert_eq!(r.state, TrackingState::Failed, "{r:?}");
    assert!(r.at(TrackingState::Delivered).is_some(), "{r:?}");
    assert_eq!(alice_inbox(&world).len(), 1, "one DSN");
    world.stop().await;
}

/// A portal that sends an MDN of its own user's: it is not asked to be
/// answered (RFC 8098 §2.1) and tracking expects nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_submitted_by_a_portal_requests_nothing_and_expects_nothing() {
    let world = World::start().await;
    let mdn = build_mdn(&MdnSpec {
        message_id: "displayed-1@a.example",
        date: OffsetDateTime::now_utc(),
        from: "alice@a.example",
        to: "bob@b.example",
        reporting_ua: "portal.a.example; portal",
        original_recipient: None,
        final_recipient: "alice@a.example",
        original_message_id: Some("from-bob@b.example"),
        original_subject: None,
        disposition: Disposition::automatic(DispositionType::Displayed),
        failure: None,
        final_delivery_extension: false,
    });
    let text = String::from_utf8(mdn).unwrap();
    submit_text(&world.a, "bob@b.example", &text).await;
    let queued = world.a.store.queue(None).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].expect, Expectation::Notification);
    let id = queued[0].message_id.clone().unwrap();
    let tracked = world.a.store.tracked_message(&id).unwrap();
    assert_eq!(tracked[0].expect, Expectation::Notification);
    world.stop().await;
}

/// Disposition-Notification-To must name the sender: MDNs go back to the
/// sender's HISP, where tracking waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_request_naming_someone_else_is_refused() {
    let world = World::start().await;
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    let text = format!(
        "Disposition-Notification-To: <eve@c.example>\r\n{}",
        message("astray-1@a.example")
    );
    let r = c.message(text.as_bytes()).await;
    assert_eq!((r.code, r.enhanced), (550, Some((5, 7, 1))), "{r}");
    assert!(r.text.contains("eve@c.example"), "{r}");
    assert!(world.a.store.queue(None).unwrap().is_empty());
    world.stop().await;
}

/// A destination's permanent refusal keeps its RFC 3463 status, as a value,
/// through tracking into the DSN's Status field: a refused RCPT its own
/// (5.1.1), a refused MAIL FROM (the whole transaction) its 5.7.1 for every
/// recipient (RFC 3464 §2.3.4; RFC 3463 §2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_status_reaches_the_dsn_status_rfc3464_2_3_4() {
    for (command, reply, status) in [
        ("rcpt", "550 5.1.1 <bob@b.example>: no such user", "5.1.1"),
        (
            "mail",
            "550 5.7.1 <alice@a.example>: sender refused",
            "5.7.1",
        ),
    ] {
        let world = World::start().await;
        let sink = SmtpSink::start_with(&["-f", command, "-B", reply]);
        let worker = world.a.worker_via("b.example", sink.addr);
        submit(&world.a, MESSAGE_ID).await;
        let now = OffsetDateTime::now_utc();
        worker.run_once(now).await.unwrap();
        let r = tracked(&world.a, MESSAGE_ID);
        assert_eq!(r.state, TrackingState::Failed, "{command}: {r:?}");
        assert_eq!(
            r.status.map(|s| s.to_string()).as_deref(),
            Some(status),
            "{command}: {r:?}"
        );
        worker.run_once(now + Duration::from_secs(1)).await.unwrap();
        let entries = alice_inbox(&world);
        assert_eq!(entries.len(), 1, "{command}: {entries:?}");
        let dsn = world.a.store.read_message(entries[0].id).unwrap();
        let parsed = parse_dsn(&dsn.bytes).unwrap();
        assert_eq!(parsed.recipients.len(), 1);
        assert_eq!(parsed.recipients[0].status, status, "{command}: {parsed:?}");
        world.stop().await;
    }
}
