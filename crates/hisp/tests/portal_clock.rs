//! Time through a running `hisp serve`'s portal (issue 11): the portal's
//! clock is moved on by `HISP_CLOCK_OFFSET_FILE` while the processes run,
//! so retention (messages leave every view `retention_days` after they
//! arrived or were sent) and the login throttle's window are seen through
//! the API of real processes without waiting.

mod common;
#[path = "common/portal_client.rs"]
mod portal_client;
#[path = "common/portal_site.rs"]
mod portal_site;
#[path = "common/serve.rs"]
mod serve;

use std::path::Path;
use std::time::Duration;

use common::s;
use portal_client::{Api, PORTAL_PASSWORD};
use portal_site::{add_portal_section, await_announce, portal_user, start_with_portal_env};
use serde_json::Value;
use serve::{free_ports, loopback, peers, two_sites, wait_for_inbox, Swaks};

const DAY: i64 = 24 * 60 * 60;

/// Moves the clock behind `file` to `seconds` ahead of the system's, in one
/// rename so that the portal never reads it half written.
fn set_offset(file: &Path, seconds: i64) {
    let part = file.with_extension("part");
    std::fs::write(&part, seconds.to_string()).unwrap();
    std::fs::rename(&part, file).unwrap();
}

fn folder(folders: &Value, name: &str) -> (u64, u64) {
    let f = folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {folders}"));
    (f["total"].as_u64().unwrap(), f["unread"].as_u64().unwrap())
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn thirty_one_days_on_a_message_is_gone_from_every_view_and_kept_in_the_store_and_audit_issue_11() {
    let (a, b) = two_sites(peers);
    let ports = free_ports(2);
    let (portal_a, portal_b) = (loopback(ports[0]), loopback(ports[1]));
    add_portal_section(&a, &format!("listen = \"{portal_a}\"\n"));
    add_portal_section(&b, &format!("listen = \"{portal_b}\"\n"));
    portal_user(&a, "pat@a.example");
    portal_user(&b, "doc@b.example");
    let (clock_a, clock_b) = (a.path("clock-offset"), b.path("clock-offset"));
    set_offset(&clock_a, 0);
    set_offset(&clock_b, 0);
    let mut serve_a = start_with_portal_env(
        &a,
        portal_a,
        "a",
        &[("HISP_CLOCK_OFFSET_FILE", &s(&clock_a))],
    );
    let mut serve_b = start_with_portal_env(
        &b,
        portal_b,
        "b",
        &[("HISP_CLOCK_OFFSET_FILE", &s(&clock_b))],
    );
    await_announce(&serve_a, &format!("portal API on {portal_a} (HTTP)"));
    await_announce(&serve_b, &format!("portal API on {portal_b} (HTTP)"));

    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: kept thirty days"])
        .args(["--body", "Retention, seen from both sides."])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    wait_for_inbox(&b, "doc@b.example", 1, Duration::from_secs(60), &[&serve_b]);

    let (api_a, api_b) = (Api::http(portal_a), Api::http(portal_b));
    let views = |day: i64| {
        set_offset(&clock_a, day * DAY);
        set_offset(&clock_b, day * DAY);
        let (doc, _) = api_b.login("doc@b.example");
        let (pat, _) = api_a.login("pat@a.example");
        let inbox = api_b.get("/api/v1/folders/inbox/messages", &doc).json();
        let sent = api_a.get("/api/v1/folders/sent/messages", &pat).json();
        (
            folder(&api_b.get("/api/v1/folders", &doc).json(), "inbox"),
            ids(&inbox),
            folder(&api_a.get("/api/v1/folders", &pat).json(), "sent"),
            ids(&sent),
            doc,
            pat,
        )
    };

    // 29 days on, both copies are still in view.
    let (inbox_count, inbox, sent_count, sent, _, _) = views(29);
    assert_eq!((inbox_count, inbox.len()), ((1, 1), 1), "{inbox:?}");
    assert_eq!((sent_count.0, sent.len()), (1, 1), "{sent:?}");
    let (received_id, sent_id) = (inbox[0], sent[0]);

    // 31 days on, gone from the folder counts, the lists, the message, its
    // attachments and its status, on both sides.
    let (inbox_count, inbox, sent_count, sent, doc, pat) = views(31);
    assert_eq!((inbox_count, inbox), ((0, 0), vec![]));
    assert_eq!((sent_count, sent), ((0, 0), vec![]));
    api_b
        .get(&format!("/api/v1/messages/{received_id}"), &doc)
        .error(404, "not-found");
    api_a
        .get(&format!("/api/v1/messages/{sent_id}"), &pat)
        .error(404, "not-found");
    api_a
        .get(&format!("/api/v1/messages/{sent_id}/status"), &pat)
        .error(404, "not-found");
    for folder_name in ["inbox", "disregarded"] {
        let list = api_b
            .get(&format!("/api/v1/folders/{folder_name}/messages"), &doc)
            .json();
        assert_eq!(ids(&list), Vec::<i64>::new(), "{folder_name}");
    }

    // The store and the audit trail still have it.
    let stored = b.mailbox("doc@b.example");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        b.mailbox_text(&stored[0])
            .contains("Retention, seen from both sides."),
        "hisp mailbox show still opens it"
    );
    let export = b
        .run(
            &["audit", "export", "--json", "--address", "doc@b.example"],
            b"",
        )
        .ok();
    let events: Value = serde_json::from_slice(&export.stdout).unwrap();
    let message_id = stored[0]["message_id"].as_str().unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message_id"] == message_id)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"delivered"), "{kinds:?}\n{events}");
    let verify = b.run(&["audit", "verify"], b"").ok();
    assert!(
        verify.stdout_text().contains("audit chain intact"),
        "{}",
        verify.stdout_text()
    );

    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
}

#[test]
fn six_failed_logins_give_429_and_the_right_password_works_after_the_window_issue_11() {
    let (_a, b) = two_sites(peers);
    let portal = loopback(free_ports(1)[0]);
    add_portal_section(&b, &format!("listen = \"{portal}\"\n"));
    portal_user(&b, "doc@b.example");
    let clock = b.path("clock-offset");
    set_offset(&clock, 0);
    let mut serve =
        start_with_portal_env(&b, portal, "b", &[("HISP_CLOCK_OFFSET_FILE", &s(&clock))]);
    await_announce(&serve, &format!("portal API on {portal} (HTTP)"));
    let api = Api::http(portal);

    for _ in 0..5 {
        api.try_login("doc@b.example", "not the password")
            .error(401, "bad-credentials");
    }
    let sixth = api.try_login("doc@b.example", "not the password");
    sixth.error(429, "throttled");
    let retry: i64 = sixth.header("retry-after").parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");
    api.try_login("doc@b.example", PORTAL_PASSWORD)
        .error(429, "throttled");

    // Fourteen minutes on, still inside the window.
    set_offset(&clock, 14 * 60);
    api.try_login("doc@b.example", PORTAL_PASSWORD)
        .error(429, "throttled");

    // Past the Retry-After the portal gave: the right password works.
    set_offset(&clock, retry + 5);
    let r = api.try_login("doc@b.example", PORTAL_PASSWORD);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    assert_eq!(serve.terminate(), Some(0), "{}", serve.log());
}

#[test]
fn serve_refuses_a_clock_offset_file_it_cannot_use() {
    let (_a, b) = two_sites(peers);
    let portal = loopback(free_ports(1)[0]);
    add_portal_section(&b, &format!("listen = \"{portal}\"\n"));
    let clock = b.path("clock-offset");
    std::fs::write(&clock, "tomorrow").unwrap();
    let out = common::hisp_cmd(["--config", &s(&b.config()), "serve"])
        .env("HISP_CLOCK_OFFSET_FILE", &clock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HISP_CLOCK_OFFSET_FILE") && err.contains("whole number of seconds"),
        "{err}"
    );
}
