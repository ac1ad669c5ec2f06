//! Sending through the API's router (issue 11, items 1, 2 and 5) with the
//! gateway's real [`PortalSender`] on the test store. Recipients are local
//! addresses (judged by the store, no discovery), so these tests need no
//! network; sending between two HISPs is the acceptance test of the `hisp`
//! crate.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use hisp_discovery::{Discoverer, DnsConfig, DnsDiscovery, LdapDiscovery, LdapSettings};
use hisp_gateway::compose::AttachmentLimits;
use hisp_gateway::{GatewayContext, PortalSendSettings, PortalSender, TrustSettings};
use hisp_store::{Folder, SqliteStore, Store, TrackFilter};
use serde_json::{json, Value};

use crate::tests::{addr, world_with, Login, World};
use crate::Portal;

/// A discoverer that is never reached (local recipients only); its name
/// server is a closed loopback port in case it were.
fn discoverer() -> Arc<Discoverer> {
    let closed = "127.0.0.1:9".parse().expect("socket address");
    let dns = DnsDiscovery::new(DnsConfig {
        name_servers: vec![closed],
        timeout: Duration::from_millis(200),
        attempts: 1,
        authoritative_fallback: false,
        ..DnsConfig::default()
    })
    .expect("dns discovery");
    let ldap = LdapDiscovery::new(LdapSettings {
        name_servers: Some(vec![closed]),
        dns_timeout: Duration::from_millis(200),
        dns_attempts: 1,
        ..LdapSettings::default()
    })
    .expect("ldap discovery");
    Arc::new(Discoverer::new(dns, ldap))
}

pub(crate) fn sending_world(limits: AttachmentLimits) -> World {
    world_with(move |store: Arc<SqliteStore>, portal: Portal| {
        let ctx = GatewayContext::new(store, discoverer(), TrustSettings::default());
        portal.sender(PortalSender::new(
            ctx,
            PortalSendSettings {
                limits,
                ..PortalSendSettings::default()
            },
        ))
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A PDF of `size` bytes.
fn pdf(size: usize) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    pdf.extend((0..size.saturating_sub(pdf.len())).map(|i| (i % 251) as u8));
    pdf
}

fn queued(w: &World) -> usize {
    w.store.tracked_messages(TrackFilter::All).unwrap().len()
}

fn sent_count(w: &World, who: &str) -> usize {
    w.store.mailbox(&addr(who), Folder::Sent).unwrap().len()
}

impl World {
    async fn send(&self, login: &Login, body: Value) -> crate::tests::Reply {
        self.call(
            Method::POST,
            "/api/v1/messages",
            Some(login),
            true,
            Some(body),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_202_with_the_sent_folders_id_which_reading_and_status_answer_for() {
    let w = sending_world(AttachmentLimits::default());
    let pat = w.login("pat@a.example").await;
    let before = queued(&w);
    // 3 MiB of PDF: its base64 is over axum's default body limit (2 MiB).
    let file = pdf(3 * 1024 * 1024);
    let r = w
        .send(
            &pat,
            json!({
                "to": ["sam@a.example"],
                "subject": "results",
                "text": "See the scan.",
                "attachments": [{"name": "scan.pdf", "content_type": "application/pdf",
                                 "data_base64": b64(&file)}],
            }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    assert_eq!(
        j["recipients"],
        json!([{ "address": "sam@a.example", "state": "queued" }]),
        "{j}"
    );
    let message_id = j["message_id"].as_str().unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@a.example>"),
        "{j}"
    );
    assert_eq!(queued(&w), before + 1);

    let id = j["id"].as_i64().unwrap();
    let read = w.get(&format!("/api/v1/messages/{id}"), &pat).await.json();
    assert_eq!(read["folder"], "sent", "{read}");
    assert_eq!(read["subject"], "results", "{read}");
    assert_eq!(read["message_id"], message_id, "{read}");
    assert_eq!(read["attachments"][0]["size"], file.len(), "{read}");
    let status = w
        .get(&format!("/api/v1/messages/{id}/status"), &pat)
        .await
        .json();
    assert_eq!(status["message_id"], message_id, "{status}");
    assert_eq!(
        status["recipients"][0]["address"], "sam@a.example",
        "{status}"
    );
    assert_eq!(status["recipients"][0]["state"], "queued", "{status}");
    // Audited: the queue's event for this Message-ID.
    let events = w.store.audit_events(&message_id.parse().unwrap()).unwrap();
    assert!(
        events.iter().any(|e| e.kind.as_str() == "queued"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_422_naming_it_with_the_listeners_reply_and_nothing_is_queued() {
    let w = sending_world(AttachmentLimits::default());
    let pat = w.login("pat@a.example").await;
    let (before, sent_before) = (queued(&w), sent_count(&w, "pat@a.example"));
    let r = w
        .send(
            &pat,
            json!({ "to": ["sam@a.example", "nobody@a.example"], "subject": "s", "text": "t" }),
        )
        .await;
    r.error(StatusCode::UNPROCESSABLE_ENTITY, "no-such-address");
    let j = r.json();
    assert!(
        j["message"].as_str().unwrap().contains("nobody@a.example"),
        "{j}"
    );
    assert_eq!(j["refused"][0]["address"], "nobody@a.example", "{j}");
    assert!(
        j["refused"][0]["reply"]
            .as_str()
            .unwrap()
            .starts_with("550 5.1.1"),
        "{j}"
    );
    assert_eq!(queued(&w), before, "nothing queued");
    assert_eq!(sent_count(&w, "pat@a.example"), sent_before, "no Sent copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_file_is_413_and_bytes_not_of_their_declared_type_422() {
    let w = sending_world(AttachmentLimits::default());
    let pat = w.login("pat@a.example").await;
    let before = queued(&w);
    let file = json!({"name": "a.txt", "content_type": "text/plain", "data_base64": b64(b"hello")});
    let r = w
        .send(
            &pat,
            json!({ "to": ["sam@a.example"], "subject": "s", "text": "t",
                    "attachments": vec![file.clone(); 6] }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.json()["message"].as_str().unwrap().contains("at most 5"),
        "{}",
        r.json()
    );
    let r = w
        .send(
            &pat,
            json!({ "to": ["sam@a.example"], "subject": "s", "text": "t",
                    "attachments": [{"name": "x.pdf", "content_type": "application/pdf",
                                     "data_base64": b64(b"MZ\x90\x00 not a pdf")}] }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(queued(&w), before, "nothing queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_byte_limit_is_413_and_the_body_limit_follows_it() {
    let w = sending_world(AttachmentLimits {
        max_files: 5,
        max_total_bytes: 1000,
    });
    let pat = w.login("pat@a.example").await;
    let r = w
        .send(
            &pat,
            json!({ "to": ["sam@a.example"], "subject": "s", "text": "t",
                    "attachments": [{"name": "x.pdf", "content_type": "application/pdf",
                                     "data_base64": b64(&pdf(1001))}] }),
        )
        .await;
    r.error(
        StatusCode::PAYLOAD_TOO_LARGE,
        r.json()["error"].as_str().unwrap(),
    );
    // A body far over the allowance is refused before it is read whole.
    let r = w
        .send(
            &pat,
            json!({ "to": ["sam@a.example"], "subject": "s", "text": "x".repeat(2 * 1024 * 1024) }),
        )
        .await;
    r.error(StatusCode::PAYLOAD_TOO_LARGE, "too-large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_without_the_csrf_token_is_403_and_queues_nothing() {
    let w = sending_world(AttachmentLimits::default());
    let pat = w.login("pat@a.example").await;
    let before = queued(&w);
    let body = json!({ "to": ["sam@a.example"], "subject": "s", "text": "t" });
    w.call(
        Method::POST,
        "/api/v1/messages",
        Some(&pat),
        false,
        Some(body.clone()),
    )
    .await
    .error(StatusCode::FORBIDDEN, "csrf");
    let reply = format!("/api/v1/messages/{}/reply", w.inbox.0);
    w.call(
        Method::POST,
        &reply,
        Some(&pat),
        false,
        Some(json!({"text": "t"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "csrf");
    assert_eq!(queued(&w), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_goes_to_the_sender_with_re_and_in_reply_to_and_only_from_the_inbox() {
    let w = sending_world(AttachmentLimits::default());
    // sam has pat's message in the Inbox (a local sender: no discovery).
    let original = b"From: pat@a.example\r\nTo: sam@a.example\r\nSubject: Re: question\r\n\
Date: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <orig-1@a.example>\r\n\r\nHello.\r\n";
    let now = time::OffsetDateTime::now_utc();
    let inbox = w
        .store
        .deliver_to_mailbox(&addr("sam@a.example"), original, Folder::Inbox, now)
        .unwrap();
    let sam = w.login("sam@a.example").await;
    let r = w
        .call(
            Method::POST,
            &format!("/api/v1/messages/{}/reply", inbox.0),
            Some(&sam),
            true,
            Some(json!({ "text": "Thanks." })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    assert_eq!(j["recipients"][0]["address"], "pat@a.example", "{j}");
    let id = j["id"].as_i64().unwrap();
    let read = w.get(&format!("/api/v1/messages/{id}"), &sam).await.json();
    assert_eq!(read["subject"], "Re: question", "{read}");
    assert_eq!(read["in_reply_to"], "<orig-1@a.example>", "{read}");
    assert_eq!(read["to"], json!(["pat@a.example"]), "{read}");

    // Only a received message can be answered; another user's is 404.
    let reply = |id: i64| format!("/api/v1/messages/{id}/reply");
    w.call(
        Method::POST,
        &reply(id),
        Some(&sam),
        true,
        Some(json!({"text": "t"})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "not-replyable");
    w.call(
        Method::POST,
        &reply(w.inbox.0),
        Some(&sam),
        true,
        Some(json!({"text": "t"})),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn without_a_sender_a_send_is_503() {
    let w = world_with(|_, portal| portal);
    let pat = w.login("pat@a.example").await;
    w.send(
        &pat,
        json!({ "to": ["sam@a.example"], "subject": "s", "text": "t" }),
    )
    .await
    .error(StatusCode::SERVICE_UNAVAILABLE, "sending-unavailable");
}
