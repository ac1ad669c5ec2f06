//! The portal's web pages in a real browser (issue 12, acceptance): two
//! `hisp serve` processes on loopback, A (pat@a.example, a patient) and B
//! (doc@b.example, a provider), each with its portal; Debian's Chromium,
//! headless, driven through WebDriver (`chromedriver`, started by the test
//! on a free loopback port and stopped at its end) with fantoccini.
//!
//! Screenshots of the pages are left under
//! `target/portal-screenshots/` (or `$CARGO_TARGET_DIR/...`).

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};
use serve::{free_ports, loopback, peers, two_sites, wait_for_inbox};

#[path = "common/browser.rs"]
mod browser;
#[path = "common/portal_client.rs"]
mod portal_client;
#[path = "common/portal_site.rs"]
mod portal_site;

use browser::*;
use portal_client::Api;
use portal_site::{add_portal_section, await_announce, portal_user, start_with_portal};

#[test]
fn a_patient_reads_replies_tracks_disregards_and_is_refused_a_non_direct_address_in_a_browser_issue_12(
) {
    let (a, b) = two_sites(peers);
    let ports = free_ports(2);
    let (portal_a, portal_b) = (loopback(ports[0]), loopback(ports[1]));
    add_portal_section(&a, &format!("listen = \"{portal_a}\"\n"));
    add_portal_section(&b, &format!("listen = \"{portal_b}\"\n"));
    // nurse@b.example has no certificate: not a Direct address for A.
    b.run(&["address", "add", "nurse@b.example"], b"").ok();
    portal_user(&a, "pat@a.example");
    portal_user(&b, "doc@b.example");
    let serve_a = start_with_portal(&a, portal_a, "a");
    let serve_b = start_with_portal(&b, portal_b, "b");
    await_announce(&serve_a, &format!("portal API on {portal_a} (HTTP)"));
    await_announce(&serve_b, &format!("portal API on {portal_b} (HTTP)"));
    let logs = || format!("{}\n----\n{}", serve_a.log(), serve_b.log());

    // The provider at B writes to the patient at A (through B's API).
    let api_b = Api::http(portal_b);
    let (doc, _) = api_b.login("doc@b.example");
    let subject = "Your lab results";
    let r = api_b.post(
        "/api/v1/messages",
        &doc,
        json!({ "to": ["pat@a.example"], "subject": subject,
                "text": "Dear Pat,\nyour results are in and all is well.\nDr Doc" }),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    wait_for_inbox(
        &a,
        "pat@a.example",
        1,
        Duration::from_secs(60),
        &[&serve_a, &serve_b],
    );

    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base_a = format!("http://{portal_a}");
    let base_b = format!("http://{portal_b}");
    runtime.block_on(async {
        let c = driver.browser().await;
        c.set_window_size(1280, 900).await.unwrap();

        // The patient logs in: one unread message, in bold.
        log_in(&c, &base_a, "pat@a.example").await;
        assert_eq!(inbox_link(&c).await, "Inbox (1)");
        let unread = css(&c, "table.messages tr.unread td.subject strong").await;
        assert_eq!(unread.text().await.unwrap(), subject);
        let weight: u32 = unread
            .css_value("font-weight")
            .await
            .unwrap()
            .parse()
            .unwrap();
        assert!(weight >= 700, "unread is bold: font-weight {weight}");
        assert!(
            text(&c, "p.retention").await.contains("30 days"),
            "{}",
            page_text(&c).await
        );
        screenshot(&c, "inbox.png").await;
        c.set_window_size(390, 844).await.unwrap();
        screenshot(&c, "inbox-phone.png").await;

        // Opening it marks it read.
        row_link(&c, subject).await.click().await.unwrap();
        assert_eq!(inbox_link(&c).await, "Inbox (0)");
        assert_eq!(text(&c, "main h1").await, subject);
        assert!(text(&c, "div.text").await.contains("all is well"));
        screenshot(&c, "message-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();
        screenshot(&c, "message.png").await;
        assert!(
            !page_text(&c).await.to_lowercase().contains("delete"),
            "no delete button"
        );

        // Reply.
        c.find(Locator::LinkText("Reply"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        css(&c, "#text")
            .await
            .send_keys("Thank you, doctor. See you next week.")
            .await
            .unwrap();
        screenshot(&c, "reply.png").await;
        click(&c, "form.compose button[type=submit]").await;
        assert!(
            path_ending(&c, "?sent=1").await.ends_with("?sent=1"),
            "{}",
            page_text(&c).await
        );
        assert!(text(&c, "p.notice").await.contains("sent"));

        // The reply is in Sent Messages; its Direct Status reaches
        // "delivered" when B's HISP confirms it.
        click(&c, "nav.folders a[href='/folders/sent']").await;
        let reply_subject = format!("Re: {subject}");
        row_link(&c, &reply_subject).await.click().await.unwrap();
        c.find(Locator::LinkText("Direct Status"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(text(&c, "main h1").await, "Direct Status");
        assert_eq!(text(&c, "section.recipient h2").await, "doc@b.example");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let state = text(&c, "p.state").await;
            if state == "Delivered to the provider's system" {
                break;
            }
            assert!(
                state == "Waiting for confirmation",
                "unexpected state {state:?}\n{}",
                logs()
            );
            assert!(Instant::now() < deadline, "not delivered in time:\n{}", logs());
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.refresh().await.unwrap();
        }
        let steps = text(&c, "table.steps").await;
        for step in [
            "Accepted for sending",
            "Handed to the provider's HISP",
            "Received by the provider's HISP",
        ] {
            assert!(steps.contains(step), "{steps}");
        }
        assert!(steps.contains("UTC"), "the time of each step: {steps}");
        screenshot(&c, "status.png").await;
        c.set_window_size(390, 844).await.unwrap();
        screenshot(&c, "status-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();

        // Disregard the provider's message, find it, restore it.
        click(&c, "nav.folders a[href='/folders/inbox']").await;
        row_link(&c, subject).await.click().await.unwrap();
        click(&c, "form[action$='/disregard'] button").await;
        assert_eq!(path_becomes(&c, "/folders/disregarded?done=disregarded").await, "/folders/disregarded?done=disregarded");
        assert_eq!(
            text(&c, "nav.folders a[aria-current='page']").await,
            "Disregarded"
        );
        row_link(&c, subject).await.click().await.unwrap();
        click(&c, "form[action$='/restore'] button").await;
        assert_eq!(path_becomes(&c, "/folders/inbox?done=restored").await, "/folders/inbox?done=restored");
        row_link(&c, subject).await;

        // Compose to an address that is not Direct, by changing the
        // form's value: the listener's refusal, next to To, text kept.
        click(&c, "nav.folders a[href='/compose']").await;
        let choices = c
            .find_all(Locator::Css("input[name=to]"))
            .await
            .unwrap();
        assert_eq!(choices.len(), 1, "exactly the providers who wrote");
        assert_eq!(
            choices[0].attr("value").await.unwrap().as_deref(),
            Some("doc@b.example")
        );
        c.execute(
            "const box = document.getElementById('to-1'); box.value = arguments[0]; box.checked = true;",
            vec![Value::from("nurse@b.example")],
        )
        .await
        .unwrap();
        css(&c, "#subject")
            .await
            .send_keys("A question")
            .await
            .unwrap();
        css(&c, "#text")
            .await
            .send_keys("Typed before the refusal.")
            .await
            .unwrap();
        click(&c, "form.compose button[type=submit]").await;
        let reason = text(&c, "#to-error").await;
        assert!(
            reason.contains("nurse@b.example"),
            "{reason}\n{}",
            page_text(&c).await
        );
        assert_eq!(
            css(&c, "#subject").await.prop("value").await.unwrap().as_deref(),
            Some("A question")
        );
        assert!(css(&c, "#text")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("Typed before the refusal."));
        screenshot(&c, "refused.png").await;

        // Log out: the login page.
        click(&c, "form.logout button").await;
        assert_eq!(path_becomes(&c, "/login?logged_out=1").await, "/login?logged_out=1");
        assert_eq!(text(&c, "main h1").await, "Log in");
        c.goto(&format!("{base_a}/folders/inbox")).await.unwrap();
        assert_eq!(path_becomes(&c, "/login").await, "/login");

        // The provider at B: the patient's reply is in the Inbox.
        log_in(&c, &base_b, "doc@b.example").await;
        assert_eq!(inbox_link(&c).await, "Inbox (1)");
        row_link(&c, &reply_subject).await.click().await.unwrap();
        assert!(text(&c, "div.text").await.contains("See you next week."));
        assert!(text(&c, "dl.headers").await.contains("pat@a.example"));
        screenshot(&c, "provider-message.png").await;

        c.close().await.unwrap();
    });
    drop(driver);
}
