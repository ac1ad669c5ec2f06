//! The web pages through the portal's router (issue 12, "Pages"), on the
//! API tests' world (a real SQLite store, a fake clock): every page 200
//! and valid HTML5 for a logged-in user, judged by an independent
//! validator (`tidy`, HTML Tidy 5); 303 to the login page when logged
//! out; a form without the CSRF token 403 with a page saying why; another
//! user's message 404; the throttle's 429 on the login page; unread rows
//! bold; refusals next to their field with the typed text kept.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Command;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use hisp_gateway::compose::AttachmentLimits;
use hisp_store::{AuditFilter, AuditKind, Folder, Store};
use http_body_util::BodyExt;
use time::Duration;
use tower::ServiceExt;

use crate::send_tests::sending_world;
use crate::tests::{addr, world_with, World, PASSWORD};

/// One answer, with its text.
struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Page {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .unwrap_or_else(|| panic!("no Location: {} {}", self.status, self.text()))
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Asserts 303 See Other to `to`.
    fn redirects_to(&self, to: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.text());
        assert_eq!(self.location(), to);
    }

    /// Asserts `status` and an HTML page.
    fn html(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        self.text()
    }

    /// The CSRF token of the page's first form.
    fn csrf(&self) -> String {
        let text = self.text();
        let at = text
            .find("name=\"csrf_token\" value=\"")
            .unwrap_or_else(|| panic!("no token in {text}"));
        let rest = &text[at + "name=\"csrf_token\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A browser: its cookies.
#[derive(Default, Clone)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

/// One part of a multipart form: a field, or a file.
enum Part<'a> {
    Field(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

const BOUNDARY: &str = "----hisp-test-boundary-7MA4YWxkTrZu0gW";

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        write!(body, "--{BOUNDARY}\r\n").unwrap();
        match part {
            Part::Field(name, value) => {
                write!(
                    body,
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .unwrap();
            }
            Part::File(file, content_type, data) => {
                write!(
                    body,
                    "Content-Disposition: form-data; name=\"attachments\"; filename=\"{file}\"\r\n\
                     Content-Type: {content_type}\r\n\r\n"
                )
                .unwrap();
                body.extend_from_slice(data);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    write!(body, "--{BOUNDARY}--\r\n").unwrap();
    body
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Browser {
    async fn request(
        &mut self,
        w: &World,
        method: Method,
        uri: &str,
        content_type: Option<String>,
        body: Vec<u8>,
    ) -> Page {
        let mut req = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let resp = w
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        for set in resp.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        }
    }

    async fn get(&mut self, w: &World, uri: &str) -> Page {
        self.request(w, Method::GET, uri, None, Vec::new()).await
    }

    async fn post(&mut self, w: &World, uri: &str, pairs: &[(&str, &str)]) -> Page {
        self.request(
            w,
            Method::POST,
            uri,
            Some("application/x-www-form-urlencoded".into()),
            form(pairs).into_bytes(),
        )
        .await
    }

    async fn post_multipart(&mut self, w: &World, uri: &str, parts: &[Part<'_>]) -> Page {
        self.request(
            w,
            Method::POST,
            uri,
            Some(format!("multipart/form-data; boundary={BOUNDARY}")),
            multipart(parts),
        )
        .await
    }

    /// Logs in through the login page; returns the answer to the POST.
    async fn try_login(&mut self, w: &World, address: &str, password: &str) -> Page {
        let page = self.get(w, "/login").await;
        page.html(StatusCode::OK);
        let csrf = page.csrf();
        self.post(
            w,
            "/login",
            &[
                ("csrf_token", &csrf),
                ("address", address),
                ("password", password),
            ],
        )
        .await
    }

    /// Logs in as `address`; returns the session's CSRF token.
    async fn login(w: &World, address: &str) -> (Browser, String) {
        let mut b = Browser::default();
        b.try_login(w, address, PASSWORD)
            .await
            .redirects_to("/folders/inbox");
        assert!(b.cookies.contains_key("hisp_session"));
        let csrf = b.get(w, "/settings").await.csrf();
        (b, csrf)
    }
}

/// Runs HTML Tidy 5 (HTML5-aware) on `html` with its accessibility checks
/// of priority 1; fails on any error, on any warning, and on what it says
/// about form labels and image text alternatives. The name is for the
/// message.
fn assert_valid_html(name: &str, html: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.html");
    std::fs::write(&file, html).unwrap();
    let out = Command::new("tidy")
        .args(["-quiet", "-errors", "-utf8", "--accessibility-check", "1"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("tidy (Debian package tidy) must be installed to check the pages: {e}")
        });
    let report = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("Error:") || l.contains("Warning:") || l.contains("Access:"))
        .filter(|l| !ignored_access_note(l))
        // WAI-ARIA 1.1's aria-current (the folder of the page, in the
        // folder list) came after the attribute list of Tidy 5.6.
        .filter(|l| !l.contains("proprietary attribute \"aria-current\""))
        .collect();
    assert!(
        problems.is_empty() && out.status.code() != Some(2),
        "{name}: tidy found problems:\n{}\n---\n{html}",
        problems.join("\n")
    );
    assert_labelled(name, html);
}

/// Every form control but hidden fields has an id named by a `<label
/// for>`, and every image a text alternative: Tidy 5 reports a missing
/// `alt` but not a control without a label.
fn assert_labelled(name: &str, html: &str) {
    for tag in ["<input ", "<textarea ", "<select "] {
        for (at, _) in html.match_indices(tag) {
            let element = &html[at..at + html[at..].find('>').unwrap()];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{name}: a control without an id: {element}"));
            assert!(
                html.contains(&format!("<label for=\"{id}\">")),
                "{name}: no <label for=\"{id}\"> for {element}"
            );
        }
    }
    for (at, _) in html.match_indices("<img ") {
        let element = &html[at..at + html[at..].find('>').unwrap()];
        assert!(
            element.contains(" alt=\"") && !element.contains(" alt=\"\""),
            "{name}: an image without a text alternative: {element}"
        );
    }
}

/// Tidy's accessibility checks date from WCAG 1.0; these notes of it ask
/// for things HTML5 and WCAG 2 no longer want (they are printed for every
/// page, whatever it holds). Labels ([12.4.1.x]) and text alternatives
/// ([1.1.x]) are never ignored.
fn ignored_access_note(line: &str) -> bool {
    [
        // "use style sheets to control presentation": not about content.
        "[2.1.1.", // "ensure programmatic objects are accessible": there are none.
        "[6.",     // "provide a DOCTYPE" / server-side image map notes of old HTML.
        "[11.2.",
    ]
    .iter()
    .any(|n| line.contains(n))
}

/// The Inbox link of the folder list, "Inbox (n)".
fn inbox_count(html: &str) -> u64 {
    let at = html.find(">Inbox (").expect("the folder list") + ">Inbox (".len();
    html[at..at + html[at..].find(')').unwrap()]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_200_and_valid_html5_for_a_logged_in_user() {
    let w = sending_world(AttachmentLimits::default());
    let mut logged_out = Browser::default();
    let login = logged_out.get(&w, "/login").await.html(StatusCode::OK);
    assert_valid_html("/login", &login);
    let (mut b, _) = Browser::login(&w, "pat@a.example").await;
    let (inbox, sent) = (w.inbox.0, w.sent.0);
    for uri in [
        "/folders/inbox".to_string(),
        "/folders/sent".to_string(),
        "/folders/disregarded".to_string(),
        format!("/messages/{inbox}"),
        format!("/messages/{sent}"),
        format!("/messages/{sent}/status"),
        format!("/messages/{inbox}/reply"),
        "/compose".to_string(),
        "/settings".to_string(),
    ] {
        let html = b.get(&w, &uri).await.html(StatusCode::OK);
        assert_valid_html(&uri, &html);
        assert!(html.contains("<meta name=\"viewport\""), "{uri}");
        assert!(
            html.contains("<link rel=\"stylesheet\" href=\"/static/portal.css\">"),
            "{uri}"
        );
        assert!(!html.contains("<script"), "{uri}: no script");
        assert!(
            !html.to_ascii_lowercase().contains("delete"),
            "{uri}: nothing is deleted, no page offers it"
        );
        for folder in ["Inbox (", "Sent Messages", "Disregarded"] {
            assert!(html.contains(folder), "{uri}: the folder list has {folder}");
        }
    }
    // The error pages are HTML5 too.
    let missing = b
        .get(&w, "/messages/999999")
        .await
        .html(StatusCode::NOT_FOUND);
    assert_valid_html("404", &missing);
    let forbidden = b
        .post(&w, &format!("/messages/{inbox}/disregard"), &[])
        .await
        .html(StatusCode::FORBIDDEN);
    assert_valid_html("403", &forbidden);
    // The stylesheet and the icon are the portal's own.
    let css = b.get(&w, "/static/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(!css.text().contains("url(http"), "nothing from outside");
    let icon = b.get(&w, "/static/attachment.svg").await;
    assert_eq!(icon.headers[header::CONTENT_TYPE], "image/svg+xml");
    // And the pages say so to the browser.
    let page = b.get(&w, "/folders/inbox").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn logged_out_every_page_answers_303_to_the_login_page() {
    let w = world_with(|_, p| p);
    let mut b = Browser::default();
    let (inbox, sent) = (w.inbox.0, w.sent.0);
    for uri in [
        "/".to_string(),
        "/folders/inbox".to_string(),
        "/folders/sent".to_string(),
        "/folders/disregarded".to_string(),
        format!("/messages/{inbox}"),
        format!("/messages/{inbox}/attachments/0"),
        format!("/messages/{sent}/status"),
        format!("/messages/{inbox}/reply"),
        "/compose".to_string(),
        "/settings".to_string(),
    ] {
        b.get(&w, &uri).await.redirects_to("/login");
    }
    for uri in [
        format!("/messages/{inbox}/disregard"),
        format!("/messages/{inbox}/restore"),
        "/settings".to_string(),
        "/logout".to_string(),
    ] {
        b.post(&w, &uri, &[("csrf_token", "x")])
            .await
            .redirects_to("/login");
    }
    // An expired session is logged out too.
    let (mut pat, _) = Browser::login(&w, "pat@a.example").await;
    pat.get(&w, "/folders/inbox").await.html(StatusCode::OK);
    w.clock.advance(Duration::hours(9));
    pat.get(&w, "/folders/inbox").await.redirects_to("/login");
    // Unknown paths are an HTML 404, the API's stay JSON.
    b.get(&w, "/nothing/here").await.html(StatusCode::NOT_FOUND);
    let api = b.get(&w, "/api/v1/nothing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.text().contains("\"not-found\""), "{}", api.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_without_the_csrf_token_or_with_a_wrong_one_is_403_and_changes_nothing() {
    let w = sending_world(AttachmentLimits::default());
    let (mut b, csrf) = Browser::login(&w, "pat@a.example").await;
    let inbox = w.inbox.0;
    let disregard = format!("/messages/{inbox}/disregard");
    for token in [None, Some("0".repeat(64))] {
        let fields: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| vec![("csrf_token", t)])
            .unwrap_or_default();
        let html = b
            .post(&w, &disregard, &fields)
            .await
            .html(StatusCode::FORBIDDEN);
        assert!(html.contains("security token"), "{html}");
        assert!(html.contains("Nothing was changed"), "{html}");
        let mut with = fields.clone();
        with.extend([("email", "pat@home.example"), ("notify", "on")]);
        b.post(&w, "/settings", &with)
            .await
            .html(StatusCode::FORBIDDEN);
        b.post(&w, "/logout", &fields)
            .await
            .html(StatusCode::FORBIDDEN);
        let mut parts = vec![
            Part::Field("to", "doc@b.example"),
            Part::Field("subject", "hello"),
            Part::Field("text", "x"),
        ];
        if let Some(t) = token.as_deref() {
            parts.insert(0, Part::Field("csrf_token", t));
        }
        b.post_multipart(&w, "/compose", &parts)
            .await
            .html(StatusCode::FORBIDDEN);
        b.post_multipart(&w, &format!("/messages/{inbox}/reply"), &parts)
            .await
            .html(StatusCode::FORBIDDEN);
    }
    // Nothing moved, nothing was sent, the settings are as they were, the
    // session is alive.
    let pat = addr("pat@a.example");
    assert_eq!(w.store.mailbox(&pat, Folder::Inbox).unwrap().len(), 1);
    assert_eq!(w.store.mailbox(&pat, Folder::Sent).unwrap().len(), 1);
    assert_eq!(w.store.portal_user(&pat).unwrap().settings.email, None);
    b.get(&w, "/folders/inbox").await.html(StatusCode::OK);
    // The login form has its own token: a login posted without it is 403.
    let mut other = Browser::default();
    other
        .post(
            &w,
            "/login",
            &[("address", "pat@a.example"), ("password", PASSWORD)],
        )
        .await
        .html(StatusCode::FORBIDDEN);
    assert!(!other.cookies.contains_key("hisp_session"));
    // With the right token the same post works.
    b.post(&w, &disregard, &[("csrf_token", &csrf)])
        .await
        .redirects_to("/folders/disregarded?done=disregarded");
}

#[tokio::test]
async fn another_users_message_id_is_404_on_every_page() {
    let w = world_with(|_, p| p);
    let (mut sam, csrf) = Browser::login(&w, "sam@a.example").await;
    let (inbox, sent) = (w.inbox.0, w.sent.0);
    for uri in [
        format!("/messages/{inbox}"),
        format!("/messages/{inbox}/attachments/0"),
        format!("/messages/{sent}/status"),
        format!("/messages/{inbox}/reply"),
    ] {
        let html = sam.get(&w, &uri).await.html(StatusCode::NOT_FOUND);
        assert!(!html.contains("your results"), "{uri}: {html}");
    }
    for uri in [
        format!("/messages/{inbox}/disregard"),
        format!("/messages/{inbox}/restore"),
    ] {
        sam.post(&w, &uri, &[("csrf_token", &csrf)])
            .await
            .html(StatusCode::NOT_FOUND);
    }
    // pat's message is where it was, still unread.
    let pat = addr("pat@a.example");
    let inbox = w.store.mailbox(&pat, Folder::Inbox).unwrap();
    assert!(inbox.len() == 1 && inbox[0].unread);
}

#[tokio::test]
async fn unread_rows_are_bold_and_opening_a_message_makes_the_inbox_count_zero() {
    let w = world_with(|_, p| p);
    let (mut b, _) = Browser::login(&w, "pat@a.example").await;
    let html = b.get(&w, "/folders/inbox").await.html(StatusCode::OK);
    assert_eq!(inbox_count(&html), 1, "{html}");
    assert!(html.contains("<tr class=\"unread\">"), "{html}");
    assert!(html.contains("<strong>your results</strong>"), "{html}");
    assert!(
        html.contains("Dr Doc &#60;doc@b.example&#62;")
            || html.contains("Dr Doc &lt;doc@b.example&gt;"),
        "{html}"
    );
    assert!(html.contains("alt=\"Has attachments\""), "{html}");
    assert!(
        html.contains("removed from your mailbox 30 days after they arrived"),
        "{html}"
    );
    let message = b
        .get(&w, &format!("/messages/{}", w.inbox.0))
        .await
        .html(StatusCode::OK);
    assert_eq!(inbox_count(&message), 0, "{message}");
    assert!(message.contains("See the attached report."), "{message}");
    assert!(message.contains(">Reply</a>") && message.contains(">Disregard</button>"));
    assert!(!message.contains(">Restore</button>"));
    assert!(!message.contains("Direct Status"), "not a sent message");
    let link = format!("/messages/{}/attachments/0", w.inbox.0);
    assert!(message.contains(&format!("href=\"{link}\"")), "{message}");
    let file = b.get(&w, &link).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(file.body.starts_with(b"%PDF-1.4"));
    let html = b.get(&w, "/folders/inbox").await.html(StatusCode::OK);
    assert!(!html.contains("class=\"unread\""), "{html}");
    // A sent message links its Direct Status, which says where it is.
    let sent = b
        .get(&w, &format!("/messages/{}", w.sent.0))
        .await
        .html(StatusCode::OK);
    assert!(sent.contains(&format!("href=\"/messages/{}/status\"", w.sent.0)));
    assert!(
        !sent.contains(">Reply</a>"),
        "only Inbox messages are answered"
    );
    let status = b
        .get(&w, &format!("/messages/{}/status", w.sent.0))
        .await
        .html(StatusCode::OK);
    assert!(status.contains("doc@b.example"), "{status}");
    assert!(status.contains("Waiting for confirmation"), "{status}");
    assert!(
        status.contains("Handed to the provider&#39;s HISP")
            || status.contains("Handed to the provider&#x27;s HISP"),
        "{status}"
    );
}

#[tokio::test]
async fn disregard_and_restore_redirect_303_to_the_folder_showing_the_result() {
    let w = world_with(|_, p| p);
    let (mut b, csrf) = Browser::login(&w, "pat@a.example").await;
    let id = w.inbox.0;
    b.post(
        &w,
        &format!("/messages/{id}/disregard"),
        &[("csrf_token", &csrf)],
    )
    .await
    .redirects_to("/folders/disregarded?done=disregarded");
    let html = b
        .get(&w, "/folders/disregarded?done=disregarded")
        .await
        .html(StatusCode::OK);
    assert!(html.contains("moved to Disregarded") && html.contains("your results"));
    let message = b
        .get(&w, &format!("/messages/{id}"))
        .await
        .html(StatusCode::OK);
    assert!(message.contains(">Restore</button>"), "{message}");
    assert!(!message.contains(">Disregard</button>") && !message.contains(">Reply</a>"));
    b.post(
        &w,
        &format!("/messages/{id}/restore"),
        &[("csrf_token", &csrf)],
    )
    .await
    .redirects_to("/folders/inbox?done=restored");
    let html = b.get(&w, "/folders/inbox").await.html(StatusCode::OK);
    assert!(html.contains("your results"), "{html}");
    // Restoring what is not disregarded is refused with a page.
    b.post(
        &w,
        &format!("/messages/{id}/restore"),
        &[("csrf_token", &csrf)],
    )
    .await
    .html(StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_login_page_shows_wrong_passwords_and_the_throttles_429_with_when_to_retry() {
    let w = world_with(|_, p| p);
    let mut b = Browser::default();
    let page = b.try_login(&w, "pat@a.example", "wrong password!!").await;
    let html = page.html(StatusCode::UNAUTHORIZED);
    assert!(html.contains("Wrong address or password."), "{html}");
    assert!(
        html.contains("value=\"pat@a.example\""),
        "the address is kept"
    );
    for _ in 0..4 {
        b.try_login(&w, "pat@a.example", "wrong password!!")
            .await
            .html(StatusCode::UNAUTHORIZED);
    }
    // The API's throttle: the right password waits too.
    let page = b.try_login(&w, "pat@a.example", PASSWORD).await;
    let html = page.html(StatusCode::TOO_MANY_REQUESTS);
    assert!(html.contains("Too many failed logins"), "{html}");
    assert!(html.contains("try again in 15 minutes"), "{html}");
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    assert_valid_html("429", &html);
    let failures = w
        .store
        .audit_export(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::LoginFailed)
        .count();
    assert_eq!(failures, 5, "the throttled attempt checked no password");
    // After the window the right password works.
    w.clock.advance(Duration::minutes(16));
    b.try_login(&w, "pat@a.example", PASSWORD)
        .await
        .redirects_to("/folders/inbox");
    // Logging out ends the session and shows the login page.
    let csrf = b.get(&w, "/settings").await.csrf();
    b.post(&w, "/logout", &[("csrf_token", &csrf)])
        .await
        .redirects_to("/login?logged_out=1");
    let html = b.get(&w, "/login?logged_out=1").await.html(StatusCode::OK);
    assert!(html.contains("You are logged out."), "{html}");
    b.get(&w, "/folders/inbox").await.redirects_to("/login");
}

#[tokio::test]
async fn compose_lists_exactly_the_recipients_and_explains_when_there_are_none() {
    let w = world_with(|_, p| p);
    let (mut pat, _) = Browser::login(&w, "pat@a.example").await;
    let html = pat.get(&w, "/compose").await.html(StatusCode::OK);
    let choices = html.matches("type=\"checkbox\" id=\"to-").count();
    assert_eq!(choices, 1, "{html}");
    assert!(html.contains("value=\"doc@b.example\" checked"), "{html}");
    assert!(html.contains("Dr Doc"), "{html}");
    assert!(html.contains("enctype=\"multipart/form-data\""));
    let (mut sam, _) = Browser::login(&w, "sam@a.example").await;
    let html = sam.get(&w, "/compose").await.html(StatusCode::OK);
    assert!(
        html.contains("You can write to a provider once they have sent you a secure message"),
        "{html}"
    );
    assert!(!html.contains("type=\"checkbox\""), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_shown_next_to_its_field_and_keeps_the_typed_subject_and_text() {
    let w = sending_world(AttachmentLimits {
        max_files: 2,
        ..AttachmentLimits::default()
    });
    let (mut b, csrf) = Browser::login(&w, "pat@a.example").await;
    let queued = || {
        w.store
            .tracked_messages(hisp_store::TrackFilter::All)
            .unwrap()
            .len()
    };
    let before = queued();
    // An address that is no Direct address of this HISP (as if the form's
    // value had been changed): the listener's refusal, next to To.
    let page = b
        .post_multipart(
            &w,
            "/compose",
            &[
                Part::Field("csrf_token", &csrf),
                Part::Field("to", "nobody@a.example"),
                Part::Field("subject", "my <typed> subject"),
                Part::Field("text", "the text I typed\r\nover two lines"),
            ],
        )
        .await;
    let html = page.html(StatusCode::UNPROCESSABLE_ENTITY);
    assert_valid_html("refused", &html);
    let error = &html[html.find("id=\"to-error\"").expect("the reason next to To")..];
    assert!(error.contains("nobody@a.example"), "{error}");
    assert!(
        html.contains("value=\"my &#60;typed&#62; subject\"")
            || html.contains("value=\"my &lt;typed&gt; subject\""),
        "{html}"
    );
    assert!(
        html.contains("the text I typed\nover two lines</textarea>"),
        "{html}"
    );
    // Three files where two are allowed: 413, next to the attachments.
    let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
    let page = b
        .post_multipart(
            &w,
            "/compose",
            &[
                Part::Field("csrf_token", &csrf),
                Part::Field("to", "doc@b.example"),
                Part::Field("subject", "three files"),
                Part::Field("text", "kept"),
                Part::File("a.pdf", "application/pdf", pdf),
                Part::File("b.pdf", "application/pdf", pdf),
                Part::File("c.pdf", "application/pdf", pdf),
            ],
        )
        .await;
    let html = page.html(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(html.contains("id=\"attachments-error\""), "{html}");
    assert!(html.contains("value=\"three files\"") && html.contains(">\nkept</textarea>"));
    // No recipient ticked: next to To.
    let html = b
        .post_multipart(
            &w,
            "/compose",
            &[Part::Field("csrf_token", &csrf), Part::Field("text", "x")],
        )
        .await
        .html(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Choose at least one provider"), "{html}");
    assert_eq!(queued(), before, "nothing refused is queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_and_a_reply_redirect_303_to_the_sent_copy() {
    let w = sending_world(AttachmentLimits::default());
    // sam@a.example is local: its mail needs no discovery.
    let (mut b, csrf) = Browser::login(&w, "pat@a.example").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let page = b
        .post_multipart(
            &w,
            "/compose",
            &[
                Part::Field("csrf_token", &csrf),
                Part::Field("to", "sam@a.example"),
                Part::Field("subject", "from the page"),
                Part::Field("text", "hello sam"),
                Part::File("dot.png", "image/png", png),
                Part::File("", "application/octet-stream", b""),
            ],
        )
        .await;
    let to = page.location();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        to.starts_with("/messages/") && to.ends_with("?sent=1"),
        "{to}"
    );
    let html = b.get(&w, &to).await.html(StatusCode::OK);
    assert!(html.contains("Your message was sent.") && html.contains("from the page"));
    assert!(
        html.contains("dot.png") && html.contains("Direct Status"),
        "{html}"
    );
    let sam = addr("sam@a.example");
    let sent = w.store.mailbox(&pat_address(), Folder::Sent).unwrap();
    assert!(sent
        .iter()
        .any(|e| e.subject.as_deref() == Some("from the page")));
    // sam has pat's message in the Inbox (filed here: no worker runs) and
    // answers it through the reply page.
    let original = b"From: pat@a.example\r\nTo: sam@a.example\r\nSubject: from the page\r\n\
Date: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <page-1@a.example>\r\n\r\nhello sam\r\n";
    let inbox = w
        .store
        .deliver_to_mailbox(
            &sam,
            original,
            Folder::Inbox,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let (mut s, sam_csrf) = Browser::login(&w, "sam@a.example").await;
    let form = s
        .get(&w, &format!("/messages/{}/reply", inbox.0))
        .await
        .html(StatusCode::OK);
    assert!(
        form.contains("Re: from the page") && form.contains("pat@a.example"),
        "{form}"
    );
    assert!(
        form.contains("hello sam"),
        "the message answered is shown: {form}"
    );
    let page = s
        .post_multipart(
            &w,
            &format!("/messages/{}/reply", inbox.0),
            &[
                Part::Field("csrf_token", &sam_csrf),
                Part::Field("text", "thanks"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    let html = s.get(&w, &page.location()).await.html(StatusCode::OK);
    assert!(
        html.contains("Re: from the page") && html.contains("thanks"),
        "{html}"
    );
    let sent = w.store.mailbox(&sam, Folder::Sent).unwrap();
    assert!(
        sent.iter()
            .any(|e| e.subject.as_deref() == Some("Re: from the page")),
        "{sent:?}"
    );
}

fn pat_address() -> hisp_store::DirectAddress {
    addr("pat@a.example")
}

#[tokio::test]
async fn settings_save_redirects_303_and_a_bad_address_is_shown_next_to_the_field() {
    let w = world_with(|_, p| p);
    let (mut b, csrf) = Browser::login(&w, "pat@a.example").await;
    b.post(
        &w,
        "/settings",
        &[
            ("csrf_token", &csrf),
            ("email", "pat@home.example"),
            ("notify", "on"),
        ],
    )
    .await
    .redirects_to("/settings?saved=1");
    let pat = addr("pat@a.example");
    let s = w.store.portal_user(&pat).unwrap().settings;
    assert!(s.notify && s.email.unwrap().to_string() == "pat@home.example");
    let html = b.get(&w, "/settings?saved=1").await.html(StatusCode::OK);
    assert!(html.contains("value=\"pat@home.example\"") && html.contains("checked"));
    // Unticked: opted out.
    b.post(
        &w,
        "/settings",
        &[("csrf_token", &csrf), ("email", "pat@home.example")],
    )
    .await
    .redirects_to("/settings?saved=1");
    assert!(!w.store.portal_user(&pat).unwrap().settings.notify);
    let html = b
        .post(
            &w,
            "/settings",
            &[("csrf_token", &csrf), ("email", "not an address")],
        )
        .await
        .html(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"email-error\""), "{html}");
    assert!(html.contains("value=\"not an address\""), "{html}");
}
