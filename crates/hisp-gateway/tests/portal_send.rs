//! Sending from the portal (issue 11, items 1, 2 and 5) between two HISPs
//! on loopback: a portal user's message with a PDF reaches the peer's inbox
//! with the file byte-equal after sealing and opening; a recipient without
//! a certificate is refused with the SMTP listener's own reply text and
//! nothing is queued; a reply answers the sender in the same thread.

mod common;

use common::smtp::Client;
use common::{World, PASSWORD};
use hisp_gateway::compose::{Draft, NewAttachment};
use hisp_gateway::portal_submit::Outcome;
use hisp_gateway::{PortalSendError, PortalSendSettings, PortalSender, ReplyDraft};
use hisp_store::{
    DirectAddress, Folder, MailboxView, MessageId, NotifySettings, PortalUser, Store, TrackingState,
};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use time::OffsetDateTime;

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

/// A PDF whose stream holds every byte value, so the transfer encoding,
/// the canonicalisation of sealing and the opening are all tried on binary.
fn pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 1024 >>\nstream\n".to_vec();
    for _ in 0..4 {
        pdf.extend(0..=255u8);
    }
    pdf.extend_from_slice(b"\r\n\r\rbare\nendstream\nendobj\n%%EOF\n");
    pdf
}

fn portal_user(store: &dyn Store, address: &str) -> PortalUser {
    store
        .add_portal_user(&addr(address), PASSWORD, &NotifySettings::default())
        .unwrap()
}

fn draft(to: &[&str], subject: &str, attachments: Vec<NewAttachment>) -> Draft {
    Draft {
        to: to.iter().map(|s| s.to_string()).collect(),
        subject: subject.into(),
        text: "Dear doctor,\nplease see the attached results.\n".into(),
        attachments,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_message_with_a_pdf_reaches_the_peers_inbox_with_the_file_byte_equal() {
    let world = World::start().await;
    let alice = portal_user(&*world.a.store, "alice@a.example");
    let sender = PortalSender::new(world.a.ctx.clone(), PortalSendSettings::default());
    let file = pdf();
    let now = OffsetDateTime::now_utc();
    let sent = sender
        .send(
            &alice,
            Some("Alice Patient"),
            draft(
                &["Bob@B.example", "bob@b.example"],
                "Lab results",
                vec![NewAttachment {
                    name: "C:\\scans\\lab\u{202e}.pdf".into(),
                    content_type: "application/pdf".into(),
                    data: file.clone(),
                }],
            ),
            now,
        )
        .await
        .unwrap();
    // The recipient named twice is one recipient, queued.
    assert_eq!(sent.recipients.len(), 1);
    assert_eq!(sent.recipients[0].address, addr("bob@b.example"));
    assert_eq!(sent.recipients[0].state, TrackingState::Queued);
    let queue = world.a.store.queue(None).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].message, sent.queue_id);
    assert_eq!(queue[0].message_id, MessageId::parse(&sent.message_id).ok());

    assert_eq!(world.a.worker(&world.b).run_once(now).await.unwrap(), 1);
    assert_eq!(
        world.a.store.queue(None).unwrap()[0].recipients[0].state,
        TrackingState::Relayed
    );
    assert_eq!(
        world
            .b
            .worker(&world.a)
            .run_once(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    assert!(world.b.store.quarantined().unwrap().is_empty());
    let inbox = world
        .b
        .store
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1);
    let received = world.b.store.read_message(inbox[0].id).unwrap();
    let m = MessageParser::new().parse(&received.bytes).unwrap();
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("alice@a.example"));
    assert_eq!(from.name(), Some("Alice Patient"));
    assert_eq!(m.subject(), Some("Lab results"));
    assert_eq!(m.message_id(), Some(sent.message_id.as_str()));
    // The same requests for notification as SMTP submission adds.
    assert_eq!(
        m.header_raw("Disposition-Notification-To").map(str::trim),
        Some("<alice@a.example>")
    );
    assert!(m
        .header_raw("Disposition-Notification-Options")
        .is_some_and(|v| v.contains("X-DIRECT-FINAL-DESTINATION-DELIVERY")));
    assert_eq!(m.attachment_count(), 1);
    let attachment = m.attachment(0).unwrap();
    assert_eq!(attachment.attachment_name(), Some("lab.pdf"));
    assert_eq!(
        attachment.contents(),
        &file[..],
        "the PDF arrives byte-equal"
    );
    assert!(m
        .body_text(0)
        .unwrap()
        .contains("please see the attached results."));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_without_a_certificate_is_refused_with_the_listeners_reason_and_nothing_is_queued(
) {
    let world = World::start().await;
    let alice = portal_user(&*world.a.store, "alice@a.example");
    let sender = PortalSender::new(world.a.ctx.clone(), PortalSendSettings::default());
    let e = sender
        .send(
            &alice,
            None,
            draft(&["bob@b.example", "someone@plain.example"], "hello", vec![]),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::Unprocessable);
    assert_eq!(e.code(), "not-direct");
    let PortalSendError::Recipients(refused) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(refused.len(), 1, "bob is a Direct address: {refused:?}");
    assert_eq!(refused[0].address(), Some("someone@plain.example"));

    // The SMTP submission listener's reply to the same RCPT, word for word.
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    let rcpt = c.command("RCPT TO:<someone@plain.example>").await;
    c.command("QUIT").await;
    assert_eq!(rcpt.code, 550, "{rcpt}");
    assert_eq!(refused[0].reply(), rcpt);
    assert_eq!(e.to_string(), rcpt.text);
    assert!(e.to_string().contains("not a Direct address"), "{e}");

    assert!(
        world.a.store.queue(None).unwrap().is_empty(),
        "nothing queued, not even for the Direct recipient"
    );

    // Over the limits and a type that is not what it claims: refused
    // before anything is queued either.
    let six = (0..6)
        .map(|i| NewAttachment {
            name: format!("{i}.txt"),
            content_type: "text/plain".into(),
            data: b"x".to_vec(),
        })
        .collect();
    let e = sender
        .send(
            &alice,
            None,
            draft(&["bob@b.example"], "six", six),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.outcome(), e.code()),
        (Outcome::TooLarge, "too-many-files")
    );
    let fake = vec![NewAttachment {
        name: "scan.pdf".into(),
        content_type: "application/pdf".into(),
        data: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
    }];
    let e = sender
        .send(
            &alice,
            None,
            draft(&["bob@b.example"], "fake", fake),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.outcome(), e.code()),
        (Outcome::Unprocessable, "type-mismatch")
    );
    assert!(world.a.store.queue(None).unwrap().is_empty());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_goes_to_the_sender_with_re_once_and_in_reply_to_the_original() {
    let world = World::start().await;
    let bob = portal_user(&*world.b.store, "bob@b.example");
    let alice = portal_user(&*world.a.store, "alice@a.example");
    // Bob (a provider with a portal account on B) writes to alice.
    let from_b = PortalSender::new(world.b.ctx.clone(), PortalSendSettings::default());
    let original = from_b
        .send(
            &bob,
            Some("Dr Bob"),
            draft(&["alice@a.example"], "RE: Your appointment", vec![]),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(world.b.worker(&world.a).run_once(now).await.unwrap(), 1);
    let now = OffsetDateTime::now_utc();
    assert_eq!(world.a.worker(&world.b).run_once(now).await.unwrap(), 1);
    let inbox = world
        .a
        .store
        .mailbox(&addr("alice@a.example"), Folder::Inbox)
        .unwrap();
    assert_eq!(inbox.len(), 1);

    let from_a = PortalSender::new(world.a.ctx.clone(), PortalSendSettings::default());
    let view = MailboxView::new(OffsetDateTime::now_utc(), 30);
    let reply = from_a
        .reply(
            &alice,
            None,
            inbox[0].id,
            view,
            ReplyDraft {
                text: "Thank you, I will be there.".into(),
                attachments: vec![],
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(reply.recipients.len(), 1);
    assert_eq!(reply.recipients[0].address, addr("bob@b.example"));

    // Another user of A cannot reply to alice's message: it is not there.
    let carol_address = addr("carol@a.example");
    world.a.store.add_address(&carol_address, &[]).unwrap();
    let carol = portal_user(&*world.a.store, "carol@a.example");
    let e = from_a
        .reply(
            &carol,
            None,
            inbox[0].id,
            MailboxView::new(OffsetDateTime::now_utc(), 30),
            ReplyDraft::default(),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), Outcome::NotFound, "{e:?}");

    // A portal account disabled since its session began sends nothing.
    world.a.store.disable_portal_user(&carol_address).unwrap();
    let e = from_a
        .send(
            &carol,
            None,
            draft(&["bob@b.example"], "still here?", vec![]),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.outcome(), e.code()),
        (Outcome::Forbidden, "account-disabled")
    );

    // A relays the reply (the MDNs A wrote for bob's message go too). Each
    // run takes the time after what it handles was queued: an item queued
    // after a `now` taken earlier is not due at that `now`.
    let now = OffsetDateTime::now_utc();
    assert!(world.a.worker(&world.b).run_once(now).await.unwrap() >= 1);
    let now = OffsetDateTime::now_utc();
    assert!(world.b.worker(&world.a).run_once(now).await.unwrap() >= 1);
    let bob_inbox = world
        .b
        .store
        .mailbox(&addr("bob@b.example"), Folder::Inbox)
        .unwrap();
    let entry = bob_inbox
        .iter()
        .find(|e| e.message_id == MessageId::parse(&reply.message_id).ok())
        .expect("the reply in bob's inbox");
    let got = world.b.store.read_message(entry.id).unwrap();
    let m = MessageParser::new().parse(&got.bytes).unwrap();
    let to: Vec<_> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
    assert_eq!(to, ["bob@b.example"]);
    assert_eq!(m.subject(), Some("Re: Your appointment"));
    assert_eq!(
        m.in_reply_to().as_text(),
        Some(original.message_id.as_str())
    );
    let references: Vec<String> = match m.references() {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(|s| s.to_string()).collect(),
        other => panic!("References: {other:?}"),
    };
    assert_eq!(references, [original.message_id.as_str()]);
    assert_eq!(
        m.body_text(0).unwrap().trim_end(),
        "Thank you, I will be there."
    );
    world.stop().await;
}

/// `send_once`: the message is queued and its mark recorded together; a
/// second call under the same mark queues nothing, and the Sent copy is
/// the worker's, filed once when it relays the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_once_under_a_mark_is_queued_once_and_its_sent_copy_filed_by_the_worker() {
    let world = World::start().await;
    let alice = portal_user(&*world.a.store, "alice@a.example");
    let sender = PortalSender::new(world.a.ctx.clone(), PortalSendSettings::default());
    let now = OffsetDateTime::now_utc();
    let queued = sender
        .send_once(
            "welcome",
            &alice,
            Some("Alice Patient"),
            draft(&["bob@b.example"], "Welcome", Vec::new()),
            now,
        )
        .await
        .unwrap()
        .expect("queued the first time");
    assert_eq!(queued.recipients.len(), 1);
    assert_eq!(queued.recipients[0].state, TrackingState::Queued);
    assert_eq!(
        world.a.store.queued_once("welcome").unwrap(),
        Some(queued.queue_id)
    );
    let sent_folder = |store: &dyn Store| {
        store
            .mailbox(&addr("alice@a.example"), Folder::Sent)
            .unwrap_or_default()
    };
    assert!(sent_folder(&*world.a.store).is_empty(), "no Sent copy yet");

    let again = sender
        .send_once(
            "welcome",
            &alice,
            None,
            draft(&["bob@b.example"], "Welcome", Vec::new()),
            now,
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(world.a.store.queue(None).unwrap().len(), 1);

    assert_eq!(world.a.worker(&world.b).run_once(now).await.unwrap(), 1);
    let sent = sent_folder(&*world.a.store);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].message_id,
        MessageId::parse(&queued.message_id).ok()
    );
    world.stop().await;
}
