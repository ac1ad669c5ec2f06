//! A real browser for tests of the portal's web pages: `chromedriver` on a
//! free loopback port driving headless Chromium (Debian's `chromium` and
//! `chromium-driver`) through WebDriver with fantoccini, and the page
//! helpers the browser tests share. Included beside `serve.rs` and
//! `portal_client.rs`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::portal_client::PORTAL_PASSWORD;
use crate::serve::{free_ports, loopback};

/// `chromedriver` on a loopback port, in a process group of its own so
/// that the browsers it started go with it.
pub struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub fn start() -> Driver {
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
    pub async fn browser(&self) -> Client {
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
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("portal-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

pub async fn css(c: &Client, selector: &str) -> Element {
    match c.find(Locator::Css(selector)).await {
        Ok(found) => found,
        Err(e) => panic!("no {selector} on {}: {e}", page_text(c).await),
    }
}

pub async fn page_text(c: &Client) -> String {
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

pub async fn text(c: &Client, selector: &str) -> String {
    css(c, selector).await.text().await.unwrap()
}

pub async fn click(c: &Client, selector: &str) {
    css(c, selector).await.click().await.unwrap();
}

pub async fn path(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The link whose visible text contains `words`, in the folder list.
pub async fn row_link(c: &Client, words: &str) -> Element {
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

pub async fn log_in(c: &Client, base: &str, address: &str) {
    log_in_with(c, base, address, PORTAL_PASSWORD).await;
}

/// Logs in at the portal on `base` as `address` with `password`, from a
/// page that redirects to the login page, and lands in the Inbox.
pub async fn log_in_with(c: &Client, base: &str, address: &str, password: &str) {
    c.goto(&format!("{base}/folders/inbox")).await.unwrap();
    assert_eq!(path(c).await, "/login", "logged out, a page is the login");
    css(c, "#address").await.send_keys(address).await.unwrap();
    css(c, "#password").await.send_keys(password).await.unwrap();
    click(c, "form.login button[type=submit]").await;
    assert_eq!(
        path_becomes(c, "/folders/inbox").await,
        "/folders/inbox",
        "{}",
        page_text(c).await
    );
}

pub async fn inbox_link(c: &Client) -> String {
    text(c, "nav.folders a[href='/folders/inbox']").await
}

/// The page's path once it ends with `suffix`, or whatever it is after 10
/// s (as [`path_becomes`], for a redirect to a place not known before).
pub async fn path_ending(c: &Client, suffix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = path(c).await;
        if now.ends_with(suffix) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's path once it is `expected`, or whatever it is after 10 s: a
/// click on a form's button returns before the browser has followed the
/// POST's redirect.
pub async fn path_becomes(c: &Client, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = path(c).await;
        if now == expected || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
