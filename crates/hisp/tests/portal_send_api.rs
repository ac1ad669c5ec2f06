//! Sending through the portal's HTTP API between two real `hisp serve`
//! processes on loopback (issue 11, acceptance): pat@a.example sends with a
//! PDF through A's API to doc@b.example and doc2@b.example; doc answers
//! through B's API; pat's Inbox shows it unread, reading marks it read;
//! pat's recipients are exactly those who wrote to pat; pat's Reply reaches
//! B with the right To, Subject and In-Reply-To; the Direct Status of the
//! first message shows processed and dispatched from B. Refusals (no
//! certificate, bytes not of their type, a sixth file) queue nothing.

mod common;
#[path = "common/portal_client.rs"]
mod portal_client;
#[path = "common/portal_site.rs"]
mod portal_site;
#[path = "common/serve.rs"]
mod serve;

use std::time::Duration;

use base64::Engine as _;
use portal_client::Api;
use portal_site::{
    add_address_with_cert, add_portal_section, portal_user, start_with_portal, unread,
};
use serde_json::{json, Value};
use serve::{eventually, free_ports, loopback, peers, two_sites, wait_for_inbox, Site};

/// A PDF of `size` bytes.
fn pdf_of(size: usize) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    pdf.extend((0..size.saturating_sub(pdf.len())).map(|i| (i % 251) as u8));
    pdf
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `hisp queue list --json` at `site` names `address` anywhere.
fn queue_names(site: &Site, address: &str) -> bool {
    site.queue_entries()
        .iter()
        .any(|e| e.to_string().contains(address))
}

#[test]
fn a_patient_sends_through_the_api_and_the_providers_reply_comes_back_threaded_issue_11() {
    let (a, b) = two_sites(peers);
    let ports = free_ports(2);
    let (portal_a, portal_b) = (loopback(ports[0]), loopback(ports[1]));
    add_portal_section(&a, &format!("listen = \"{portal_a}\"\n"));
    // B's own limits, so that `[portal]` is seen to reach the API.
    add_portal_section(
        &b,
        &format!("listen = \"{portal_b}\"\nmax_attachments = 2\nmax_attachment_bytes = 4096\n"),
    );
    add_address_with_cert(&b, "doc2@b.example");
    // nurse@b.example has no certificate: not a Direct address for A.
    b.run(&["address", "add", "nurse@b.example"], b"").ok();
    portal_user(&a, "pat@a.example");
    portal_user(&b, "doc@b.example");
    portal_user(&b, "doc2@b.example");
    let mut serve_a = start_with_portal(&a, portal_a, "a");
    let mut serve_b = start_with_portal(&b, portal_b, "b");
    let logs = || format!("{}\n----\n{}", serve_a.log(), serve_b.log());

    let api_a = Api::http(portal_a);
    let api_b = Api::http(portal_b);
    let (pat, _) = api_a.login("pat@a.example");

    // Refusals first, each with nothing queued.
    let r = api_a.post(
        "/api/v1/messages",
        &pat,
        json!({ "to": ["doc@b.example", "nurse@b.example"], "subject": "s", "text": "t" }),
    );
    r.error(422, "not-direct");
    let j = r.json();
    let message = j["message"].as_str().unwrap();
    assert!(
        message.contains("nurse@b.example") && message.contains("550 5.1.1"),
        "{j}"
    );
    assert_eq!(j["refused"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["refused"][0]["address"], "nurse@b.example", "{j}");
    assert!(
        !queue_names(&a, "nurse@b.example"),
        "{:?}",
        a.queue_entries()
    );
    assert!(!queue_names(&a, "doc@b.example"), "{:?}", a.queue_entries());
    let text = json!({"name": "a.txt", "content_type": "text/plain", "data_base64": b64(b"hi")});
    api_a
        .post(
            "/api/v1/messages",
            &pat,
            json!({ "to": ["doc@b.example"], "subject": "s", "text": "t",
                    "attachments": vec![text; 6] }),
        )
        .error(413, "too-many-files");
    api_a
        .post(
            "/api/v1/messages",
            &pat,
            json!({ "to": ["doc@b.example"], "subject": "s", "text": "t",
                    "attachments": [{"name": "scan.pdf", "content_type": "application/pdf",
                                     "data_base64": b64(b"\x89PNG\r\n\x1a\n not a pdf")}] }),
        )
        .error(422, "type-mismatch");
    // A body well over axum's 2 MiB default is read (A's allowance is
    // 25 MiB): the refusal is the recipient's, not the body's size.
    let big = pdf_of(3 * 1024 * 1024);
    api_a
        .post(
            "/api/v1/messages",
            &pat,
            json!({ "to": ["nurse@b.example"], "subject": "s", "text": "t",
                    "attachments": [{"name": "big.pdf", "content_type": "application/pdf",
                                     "data_base64": b64(&big)}] }),
        )
        .error(422, "not-direct");
    assert!(a.queue_entries().is_empty(), "{:?}", a.queue_entries());
    assert_eq!(
        api_a.get("/api/v1/folders/sent/messages", &pat).json(),
        json!([])
    );

    // pat writes to doc and doc2 with a PDF of every byte value.
    let pdf: Vec<u8> = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        .iter()
        .copied()
        .chain((0..8192u32).map(|i| (i % 256) as u8))
        .chain(*b"\r\n%%EOF\n")
        .collect();
    let r = api_a.post(
        "/api/v1/messages",
        &pat,
        json!({
            "to": ["doc@b.example", "doc2@b.example"],
            "subject": "lab question",
            "text": "Dear doctor,\nwhat do the results say?\n",
            "attachments": [{"name": "C:\\scans\\results.pdf", "content_type": "application/pdf",
                             "data_base64": b64(&pdf)}],
        }),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let sent = r.json();
    assert_eq!(
        sent["recipients"],
        json!([{"address": "doc@b.example", "state": "queued"},
               {"address": "doc2@b.example", "state": "queued"}]),
        "{sent}"
    );
    let sent_id = sent["id"].as_i64().unwrap();
    let sent_message_id = sent["message_id"].as_str().unwrap().to_string();

    // At B, doc has it with the PDF byte-equal.
    wait_for_inbox(
        &b,
        "doc@b.example",
        1,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );
    let (doc, _) = api_b.login("doc@b.example");
    let inbox = api_b.get("/api/v1/folders/inbox/messages", &doc).json();
    assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
    let at_b = inbox[0]["id"].as_i64().unwrap();
    let m = api_b.get(&format!("/api/v1/messages/{at_b}"), &doc).json();
    assert_eq!(m["from"], "pat@a.example", "{m}");
    assert_eq!(m["subject"], "lab question", "{m}");
    assert_eq!(m["message_id"], sent_message_id.as_str(), "{m}");
    assert_eq!(m["attachments"][0]["name"], "results.pdf", "{m}");
    let file = api_b.get(&format!("/api/v1/messages/{at_b}/attachments/0"), &doc);
    assert_eq!(file.header("content-type"), "application/pdf");
    assert!(file.body == pdf, "the PDF arrives at B byte-equal");

    // B's configured limits: a third file, and 4097 bytes, are 413.
    let small = json!({"name": "a.txt", "content_type": "text/plain", "data_base64": b64(b"hi")});
    let r = api_b.post(
        &format!("/api/v1/messages/{at_b}/reply"),
        &doc,
        json!({ "text": "t", "attachments": vec![small; 3] }),
    );
    r.error(413, "too-many-files");
    assert!(
        r.json()["message"].as_str().unwrap().contains("at most 2"),
        "{}",
        r.json()
    );
    api_b
        .post(
            &format!("/api/v1/messages/{at_b}/reply"),
            &doc,
            json!({ "text": "t", "attachments": [{"name": "x.pdf",
                    "content_type": "application/pdf", "data_base64": b64(&pdf_of(4097))}] }),
        )
        .error(413, "too-large");
    // Nothing sent: the Sent copy is filed only once every check passed
    // (B's queue holds the MDNs for pat's message by now).
    assert_eq!(
        api_b.get("/api/v1/folders/sent/messages", &doc).json(),
        json!([])
    );

    // doc answers through B's API.
    let r = api_b.post(
        &format!("/api/v1/messages/{at_b}/reply"),
        &doc,
        json!({ "text": "All normal." }),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["recipients"][0]["address"], "pat@a.example");
    let answer_message_id = r.json()["message_id"].as_str().unwrap().to_string();

    // pat's Inbox: one unread, reading it makes it 0.
    let unread_one = eventually(
        Duration::from_secs(60),
        || {
            let folders = api_a.get("/api/v1/folders", &pat).json();
            (unread(&folders, "inbox") == 1).then_some(folders)
        },
        logs,
    );
    assert_eq!(unread(&unread_one, "inbox"), 1);
    let inbox = api_a.get("/api/v1/folders/inbox/messages", &pat).json();
    assert_eq!(inbox[0]["unread"], true, "{inbox}");
    let answer_id = inbox[0]["id"].as_i64().unwrap();
    let answer = api_a
        .get(&format!("/api/v1/messages/{answer_id}"), &pat)
        .json();
    assert_eq!(answer["from"], "doc@b.example", "{answer}");
    assert_eq!(answer["to"], json!(["pat@a.example"]), "{answer}");
    assert_eq!(answer["subject"], "Re: lab question", "{answer}");
    assert_eq!(answer["in_reply_to"], sent_message_id.as_str(), "{answer}");
    assert_eq!(
        unread(&api_a.get("/api/v1/folders", &pat).json(), "inbox"),
        0
    );

    // Recipients: doc wrote to pat; doc2 only received.
    let recipients = api_a.get("/api/v1/recipients", &pat).json();
    let addresses: Vec<&str> = recipients
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["doc@b.example"], "{recipients}");

    // pat replies through A's API: at B, To doc, Subject not doubled,
    // In-Reply-To doc's answer.
    let r = api_a.post(
        &format!("/api/v1/messages/{answer_id}/reply"),
        &pat,
        json!({ "text": "Thank you." }),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["recipients"],
        json!([{"address": "doc@b.example", "state": "queued"}])
    );
    wait_for_inbox(
        &b,
        "doc@b.example",
        2,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );
    let inbox = api_b.get("/api/v1/folders/inbox/messages", &doc).json();
    let newest = inbox[0]["id"].as_i64().unwrap();
    let m = api_b
        .get(&format!("/api/v1/messages/{newest}"), &doc)
        .json();
    assert_eq!(m["to"], json!(["doc@b.example"]), "{m}");
    assert_eq!(m["subject"], "Re: lab question", "{m}");
    assert_eq!(m["in_reply_to"], answer_message_id.as_str(), "{m}");
    assert_eq!(m["text"].as_str().unwrap().trim(), "Thank you.", "{m}");

    // The 202's id: pat's one Sent copy of the first message (the worker
    // filed no second), and its Direct Status shows processed and
    // dispatched from B for both providers.
    let sent_list = api_a.get("/api/v1/folders/sent/messages", &pat).json();
    let copies: Vec<&Value> = sent_list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subject"] == "lab question")
        .collect();
    assert_eq!(copies.len(), 1, "{sent_list}");
    assert_eq!(copies[0]["id"], sent_id, "{sent_list}");
    let status = eventually(
        Duration::from_secs(60),
        || {
            let s = api_a
                .get(&format!("/api/v1/messages/{sent_id}/status"), &pat)
                .json();
            let done = s["recipients"].as_array()?.iter().all(|r| {
                let steps: Vec<&str> = r["steps"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s["state"].as_str()).collect())
                    .unwrap_or_default();
                steps.contains(&"processed") && steps.contains(&"dispatched")
            });
            (done && s["recipients"].as_array()?.len() == 2).then_some(s)
        },
        logs,
    );
    assert_eq!(status["message_id"], sent_message_id.as_str(), "{status}");

    // The audit trail shows the API send: queued, under its Message-ID.
    let run = a
        .run(
            &["audit", "export", "--json", "--address", "pat@a.example"],
            b"",
        )
        .ok();
    let events: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "queued" && e["message_id"] == sent_message_id.as_str()),
        "{events}"
    );

    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
}
