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

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use serve::{free_ports, loopback, peers, two_sites, wait_for_inbox};

#[path = "common/portal_client.rs"]
mod portal_client;
#[path = "common/portal_site.rs"]
mod portal_site;

use portal_client::{Api, PORTAL_PASSWORD};
use portal_site::{add_portal_section, await_announce, portal_user, start_with_portal};

/// `chromedriver` on a loopback port, in a process group of its own so
/// that the browsers it started go with it.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = free_ports(1)[0];
        let profile = tempfile::tempdir().unwrap();
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("chromedriver (Debian packages chromium and chromium-driver) must be installed: {e}")
        });
        let driver = Driver {
            child,
            port,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(loopback(port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    /// A headless Chromium with a temporary profile (`--no-sandbox`: the
    /// tests may run as root).
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-crash-reporter",
                    "--disable-breakpad",
                    "--lang=en-US",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
            }),
        );
        ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with headless Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with the negated id of the process group this
        // test created for its chromedriver.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Where the screenshots go.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("portal-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

async fn css(c: &Client, selector: &str) -> Element {
    match c.find(Locator::Css(selector)).await {
        Ok(found) => found,
        Err(e) => panic!("no {selector} on {}: {e}", page_text(c).await),
    }
}

async fn page_text(c: &Client) -> String {
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let body = match c.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    format!("{url}\n{body}")
}

async fn text(c: &Client, selector: &str) -> String {
    css(c, selector).await.text().await.unwrap()
}

async fn click(c: &Client, selector: &str) {
    css(c, selector).await.click().await.unwrap();
}

async fn path(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The link whose visible text contains `words`, in the folder list.
async fn row_link(c: &Client, words: &str) -> Element {
    for link in c
        .find_all(Locator::Css("table.messages td.subject a"))
        .await
        .unwrap()
    {
        if link.text().await.unwrap().contains(words) {
            return link;
        }
    }
    panic!("no message {words:?} in {}", page_text(c).await);
}

async fn log_in(c: &Client, base: &str, address: &str) {
    c.goto(&format!("{base}/folders/inbox")).await.unwrap();
    assert_eq!(path(c).await, "/login", "logged out, a page is the login");
    css(c, "#address").await.send_keys(address).await.unwrap();
    css(c, "#password")
        .await
        .send_keys(PORTAL_PASSWORD)
        .await
        .unwrap();
    click(c, "form.login button[type=submit]").await;
    assert_eq!(path(c).await, "/folders/inbox", "{}", page_text(c).await);
}

async fn inbox_link(c: &Client) -> String {
    text(c, "nav.folders a[href='/folders/inbox']").await
}

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
        assert!(path(&c).await.ends_with("?sent=1"), "{}", page_text(&c).await);
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
        assert_eq!(path(&c).await, "/folders/disregarded?done=disregarded");
        assert_eq!(
            text(&c, "nav.folders a[aria-current='page']").await,
            "Disregarded"
        );
        row_link(&c, subject).await.click().await.unwrap();
        click(&c, "form[action$='/restore'] button").await;
        assert_eq!(path(&c).await, "/folders/inbox?done=restored");
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
        assert_eq!(path(&c).await, "/login?logged_out=1");
        assert_eq!(text(&c, "main h1").await, "Log in");
        c.goto(&format!("{base_a}/folders/inbox")).await.unwrap();
        assert_eq!(path(&c).await, "/login");

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
