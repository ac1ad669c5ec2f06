//! The API through axum's router (tower `oneshot`), on a real SQLite store
//! in a temporary directory, with a fake clock.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use hisp_store::{
    AuditFilter, AuditKind, DirectAddress, Domain, Folder, MailboxEntryId, MessageDirection,
    NotifySettings, SqliteStore, Store, TrackingState,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

use crate::{FakeClock, Portal};

pub(crate) const PASSWORD: &str = "a long portal password";

pub(crate) fn addr(a: &str) -> DirectAddress {
    DirectAddress::parse(a).unwrap()
}

const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";

/// A message from doc@b.example to pat@a.example with a PDF attachment.
fn mail_with_pdf() -> Vec<u8> {
    use base64::Engine as _;
    let pdf = base64::engine::general_purpose::STANDARD.encode(PDF);
    format!(
        "From: \"Dr Doc\" <doc@b.example>\r\nTo: pat@a.example\r\nSubject: your results\r\n\
         Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <res-1@b.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee the attached report.\r\n\
         --b\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"../secret/report.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b--\r\n"
    )
    .into_bytes()
}

const SENT: &[u8] = b"From: pat@a.example\r\nTo: doc@b.example\r\nSubject: question\r\n\
Date: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <q-1@a.example>\r\n\r\nA question.\r\n";

pub(crate) struct World {
    _dir: tempfile::TempDir,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) clock: FakeClock,
    pub(crate) app: Router,
    pub(crate) inbox: MailboxEntryId,
    pub(crate) sent: MailboxEntryId,
}

/// pat and sam at a.example with portal accounts; pat has one message
/// from doc@b.example in the Inbox and one sent to doc, relayed.
fn world() -> World {
    world_with(|_, portal| portal)
}

/// [`world`], its portal given to `with` before it is served.
pub(crate) fn world_with(with: impl FnOnce(Arc<SqliteStore>, Portal) -> Portal) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_in(dir.path()).unwrap());
    store
        .add_domain(&Domain::parse("a.example").unwrap(), &[])
        .unwrap();
    for a in ["pat@a.example", "sam@a.example"] {
        store.add_address(&addr(a), &[]).unwrap();
        store
            .add_portal_user(&addr(a), PASSWORD, &NotifySettings::default())
            .unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let pat = addr("pat@a.example");
    let inbox = store
        .deliver_to_mailbox(&pat, &mail_with_pdf(), Folder::Inbox, now)
        .unwrap();
    let queued = store
        .enqueue(
            MessageDirection::Outbound,
            Some(&pat),
            &[addr("doc@b.example")],
            SENT,
            now,
        )
        .unwrap();
    let rcpt = store
        .tracked_message(&"<q-1@a.example>".parse().unwrap())
        .unwrap()[0]
        .recipients[0]
        .id;
    assert_eq!(
        store
            .tracked_messages(hisp_store::TrackFilter::All)
            .unwrap()[0]
            .message,
        queued
    );
    store
        .track(rcpt, TrackingState::Relayed, now, None)
        .unwrap();
    let sent = store
        .deliver_to_mailbox(&pat, SENT, Folder::Sent, now)
        .unwrap();
    let clock = FakeClock::at(now);
    let portal = with(
        store.clone(),
        Portal::new(store.clone(), Arc::new(clock.clone()), 30),
    );
    World {
        _dir: dir,
        store,
        clock,
        app: crate::router(Arc::new(portal)),
        inbox,
        sent,
    }
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an error reply: `status` and the `{"error","message"}` body.
    pub(crate) fn error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let j = self.json();
        assert_eq!(j["error"], code, "{j}");
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    }
}

/// A logged-in client: its cookie and CSRF token.
#[derive(Clone)]
pub(crate) struct Login {
    cookie: String,
    csrf: String,
}

impl World {
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        login: Option<&Login>,
        csrf: bool,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(l) = login {
            req = req.header(header::COOKIE, &l.cookie);
            if csrf {
                req = req.header("X-CSRF-Token", &l.csrf);
            }
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, uri: &str, login: &Login) -> Reply {
        self.call(Method::GET, uri, Some(login), false, None).await
    }

    async fn post(&self, uri: &str, login: &Login) -> Reply {
        self.call(Method::POST, uri, Some(login), true, None).await
    }

    async fn try_login(&self, address: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/session",
            None,
            false,
            Some(json!({ "address": address, "password": password })),
        )
        .await
    }

    pub(crate) async fn login(&self, address: &str) -> Login {
        let r = self.try_login(address, PASSWORD).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        Login {
            cookie: set.split(';').next().unwrap().to_string(),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    fn unread(folders: &Value, name: &str) -> u64 {
        folders
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["unread"]
            .as_u64()
            .unwrap()
    }
}

#[tokio::test]
async fn login_gives_an_http_only_strict_session_cookie_and_a_csrf_token() {
    let w = world();
    let r = w.try_login("Pat@a.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["address"], "pat@a.example");
    assert_eq!(j["csrf_token"].as_str().unwrap().len(), 64);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("hisp_session="), "{cookie}");
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    w.try_login("pat@a.example", "wrong password!!")
        .await
        .error(StatusCode::UNAUTHORIZED, "bad-credentials");
    w.try_login("nobody@a.example", PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED, "bad-credentials");
    w.try_login("not an address", PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED, "bad-credentials");
    w.call(
        Method::POST,
        "/api/v1/session",
        None,
        false,
        Some(json!({"address": "pat@a.example"})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "bad-request");
}

#[tokio::test]
async fn without_a_session_every_endpoint_is_401_and_unknown_paths_404_in_json() {
    let w = world();
    for uri in [
        "/api/v1/folders",
        "/api/v1/recipients",
        "/api/v1/settings",
        "/api/v1/messages/1",
    ] {
        w.call(Method::GET, uri, None, false, None)
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let bogus = Login {
        cookie: "hisp_session=00".into(),
        csrf: "00".into(),
    };
    w.get("/api/v1/folders", &bogus)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let l = w.login("pat@a.example").await;
    w.get("/api/v1/nothing", &l)
        .await
        .error(StatusCode::NOT_FOUND, "not-found");
    w.call(Method::PATCH, "/api/v1/folders", Some(&l), true, None)
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    w.get("/api/v1/folders/trash/messages", &l)
        .await
        .error(StatusCode::NOT_FOUND, "not-found");
    w.get("/api/v1/messages/abc", &l)
        .await
        .error(StatusCode::NOT_FOUND, "not-found");
    // A path axum cannot decode, and a body over its limit: JSON too.
    w.get("/api/v1/folders/%FF/messages", &l)
        .await
        .error(StatusCode::BAD_REQUEST, "bad-request");
    let big = json!({ "address": "pat@a.example", "password": "x".repeat(3 << 20) });
    w.call(Method::POST, "/api/v1/session", None, false, Some(big))
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "too-large");
    // Nothing is cached, errors or not.
    for r in [
        w.get("/api/v1/folders", &l).await,
        w.get("/api/v1/nothing", &l).await,
    ] {
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    }
}

#[tokio::test]
async fn folders_count_unread_and_reading_a_message_marks_it_read() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let folders = w.get("/api/v1/folders", &l).await.json();
    let names: Vec<&str> = folders
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inbox", "sent", "disregarded"]);
    assert_eq!(World::unread(&folders, "inbox"), 1);
    assert_eq!(folders[0]["total"], 1);

    let list = w.get("/api/v1/folders/inbox/messages", &l).await.json();
    let item = &list[0];
    assert_eq!(item["id"], w.inbox.0);
    assert_eq!(item["from"], "doc@b.example");
    assert_eq!(item["to"], json!(["pat@a.example"]));
    assert_eq!(item["subject"], "your results");
    assert_eq!(item["date"], "2024-01-01T10:00:00Z");
    assert_eq!(item["unread"], true);
    assert_eq!(item["has_attachments"], true);

    let m = w
        .get(&format!("/api/v1/messages/{}", w.inbox.0), &l)
        .await
        .json();
    assert_eq!(m["folder"], "inbox");
    assert_eq!(
        m["text"].as_str().unwrap().trim_end(),
        "See the attached report."
    );
    assert_eq!(m["in_reply_to"], Value::Null);
    assert_eq!(
        m["attachments"],
        json!([{"index": 0, "name": "report.pdf", "content_type": "application/pdf", "size": PDF.len()}])
    );
    let folders = w.get("/api/v1/folders", &l).await.json();
    assert_eq!(World::unread(&folders, "inbox"), 0);
    assert_eq!(
        w.get("/api/v1/folders/inbox/messages", &l).await.json()[0]["unread"],
        false
    );
}

#[tokio::test]
async fn an_attachment_comes_as_its_bytes_with_type_and_a_sanitised_attachment_name() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let r = w
        .get(&format!("/api/v1/messages/{}/attachments/0", w.inbox.0), &l)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, PDF);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    );
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    w.get(&format!("/api/v1/messages/{}/attachments/1", w.inbox.0), &l)
        .await
        .error(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn another_users_message_id_is_404_on_every_endpoint() {
    let w = world();
    let sam = w.login("sam@a.example").await;
    for id in [w.inbox.0, w.sent.0] {
        for (method, path) in [
            (Method::GET, format!("/api/v1/messages/{id}")),
            (Method::GET, format!("/api/v1/messages/{id}/attachments/0")),
            (Method::GET, format!("/api/v1/messages/{id}/status")),
            (Method::POST, format!("/api/v1/messages/{id}/disregard")),
            (Method::POST, format!("/api/v1/messages/{id}/restore")),
            (Method::DELETE, format!("/api/v1/messages/{id}")),
        ] {
            w.call(method.clone(), &path, Some(&sam), true, None)
                .await
                .error(StatusCode::NOT_FOUND, "not-found");
        }
    }
    // Nothing of pat's moved or was read, and no refused delete was written.
    let entry = w.store.read_message(w.inbox).unwrap().entry;
    assert_eq!((entry.folder, entry.unread), (Folder::Inbox, true));
    let events = w.store.audit_export(&AuditFilter::default()).unwrap();
    assert!(
        !events.iter().any(|e| e.kind == AuditKind::DeleteRefused),
        "{events:?}"
    );
    assert!(w
        .get("/api/v1/folders/inbox/messages", &sam)
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_state_change_without_the_csrf_token_is_403_and_changes_nothing() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let wrong = Login {
        csrf: "f".repeat(64),
        ..l.clone()
    };
    let id = w.inbox.0;
    for login in [&l, &wrong] {
        let csrf = std::ptr::eq(login, &wrong);
        for (method, path, body) in [
            (
                Method::POST,
                format!("/api/v1/messages/{id}/disregard"),
                None,
            ),
            (Method::DELETE, format!("/api/v1/messages/{id}"), None),
            (
                Method::PUT,
                "/api/v1/settings".to_string(),
                Some(json!({"notify": false})),
            ),
            (Method::DELETE, "/api/v1/session".to_string(), None),
        ] {
            w.call(method, &path, Some(login), csrf, body)
                .await
                .error(StatusCode::FORBIDDEN, "csrf");
        }
    }
    assert_eq!(
        w.store.read_message(w.inbox).unwrap().entry.folder,
        Folder::Inbox
    );
    assert!(
        w.store
            .portal_user(&addr("pat@a.example"))
            .unwrap()
            .settings
            .notify
    );
    // The session is still there; with the token the change goes through.
    let r = w
        .post(&format!("/api/v1/messages/{id}/disregard"), &l)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["folder"], "disregarded");
}

#[tokio::test]
async fn disregard_and_restore_move_a_message_out_of_the_inbox_and_back() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let id = w.inbox.0;
    w.post(&format!("/api/v1/messages/{id}/restore"), &l)
        .await
        .error(StatusCode::CONFLICT, "not-disregarded");
    assert_eq!(
        w.post(&format!("/api/v1/messages/{id}/disregard"), &l)
            .await
            .json()["folder"],
        "disregarded"
    );
    assert_eq!(
        w.get("/api/v1/folders/disregarded/messages", &l)
            .await
            .json()[0]["id"],
        id
    );
    assert!(w
        .get("/api/v1/folders/inbox/messages", &l)
        .await
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        w.post(&format!("/api/v1/messages/{id}/restore"), &l)
            .await
            .json()["folder"],
        "inbox"
    );
}

#[tokio::test]
async fn delete_is_405_in_json_and_the_attempt_is_audited() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let r = w
        .call(
            Method::DELETE,
            &format!("/api/v1/messages/{}", w.inbox.0),
            Some(&l),
            true,
            None,
        )
        .await;
    r.error(StatusCode::METHOD_NOT_ALLOWED, "delete-not-allowed");
    assert_eq!(r.headers[header::ALLOW], "GET");
    let events: Vec<_> = w
        .store
        .audit_export(&AuditFilter {
            since: None,
            address: Some(addr("pat@a.example")),
        })
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == AuditKind::DeleteRefused)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].message_id.as_ref().unwrap().to_string(),
        "<res-1@b.example>"
    );
    assert!(w.store.read_message(w.inbox).is_ok());
}

#[tokio::test]
async fn messages_leave_every_view_retention_days_after_they_arrived() {
    let w = world();
    let l = w.login("pat@a.example").await;
    assert_eq!(w.get("/api/v1/folders", &l).await.json()[0]["total"], 1);
    w.clock.advance(Duration::days(29));
    // Sessions end by the same clock: log in again after each move.
    let l = w.login("pat@a.example").await;
    assert_eq!(w.get("/api/v1/folders", &l).await.json()[0]["total"], 1);
    w.clock.advance(Duration::days(2));
    let l = w.login("pat@a.example").await;
    let folders = w.get("/api/v1/folders", &l).await.json();
    assert!(
        folders.as_array().unwrap().iter().all(|f| f["total"] == 0),
        "{folders}"
    );
    for folder in ["inbox", "sent"] {
        let list = w
            .get(&format!("/api/v1/folders/{folder}/messages"), &l)
            .await
            .json();
        assert!(list.as_array().unwrap().is_empty(), "{list}");
    }
    for id in [w.inbox.0, w.sent.0] {
        w.get(&format!("/api/v1/messages/{id}"), &l)
            .await
            .error(StatusCode::NOT_FOUND, "not-found");
        w.get(&format!("/api/v1/messages/{id}/status"), &l)
            .await
            .error(StatusCode::NOT_FOUND, "not-found");
    }
    // Still in the store.
    assert!(w.store.read_message(w.inbox).is_ok());
}

#[tokio::test]
async fn the_status_of_a_sent_message_gives_each_recipient_with_its_steps() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let s = w
        .get(&format!("/api/v1/messages/{}/status", w.sent.0), &l)
        .await
        .json();
    assert_eq!(s["message_id"], "<q-1@a.example>");
    let r = &s["recipients"][0];
    assert_eq!(r["address"], "doc@b.example");
    assert_eq!(r["state"], "relayed");
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["queued", "relayed"]);
    assert!(r["steps"][1]["at"].as_str().unwrap().ends_with('Z'), "{s}");
    // A received message has no delivery status of its own.
    w.get(&format!("/api/v1/messages/{}/status", w.inbox.0), &l)
        .await
        .error(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn recipients_are_those_who_wrote_to_the_user() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let list = w.get("/api/v1/recipients", &l).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["address"], "doc@b.example");
    assert_eq!(list[0]["name"], "Dr Doc");
    let sam = w.login("sam@a.example").await;
    assert_eq!(w.get("/api/v1/recipients", &sam).await.json(), json!([]));
}

#[tokio::test]
async fn settings_round_trip_and_a_bad_email_is_422() {
    let w = world();
    let l = w.login("pat@a.example").await;
    assert_eq!(
        w.get("/api/v1/settings", &l).await.json(),
        json!({"notify": true, "email": null})
    );
    let put = |body: Value| w.call(Method::PUT, "/api/v1/settings", Some(&l), true, Some(body));
    let r = put(json!({"notify": false, "email": "pat@mail.example"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"notify": false, "email": "pat@mail.example"})
    );
    assert_eq!(
        w.get("/api/v1/settings", &l).await.json(),
        json!({"notify": false, "email": "pat@mail.example"})
    );
    put(json!({"email": "pat@mail.example\r\nBcc: x@y.example"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    put(json!({"notfy": true}))
        .await
        .error(StatusCode::BAD_REQUEST, "bad-request");
    assert_eq!(
        put(json!({"email": null})).await.json(),
        json!({"notify": false, "email": null})
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let w = world();
    let l = w.login("pat@a.example").await;
    let r = w
        .call(Method::DELETE, "/api/v1/session", Some(&l), true, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    w.get("/api/v1/folders", &l)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn five_failed_logins_throttle_the_address_until_the_window_has_passed() {
    let w = world();
    for _ in 0..5 {
        w.try_login("pat@a.example", "wrong password!!")
            .await
            .error(StatusCode::UNAUTHORIZED, "bad-credentials");
    }
    // The right password too, and in another letter case: 429 with Retry-After.
    for who in ["pat@a.example", "PAT@a.example"] {
        let r = w.try_login(who, PASSWORD).await;
        r.error(StatusCode::TOO_MANY_REQUESTS, "throttled");
        let after: i64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&after), "{after}");
    }
    // Another address is not throttled.
    w.login("sam@a.example").await;
    w.clock.advance(Duration::minutes(14));
    w.try_login("pat@a.example", PASSWORD)
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "throttled");
    w.clock.advance(Duration::minutes(1) + Duration::seconds(5));
    w.login("pat@a.example").await;
}

#[tokio::test]
async fn a_disabled_account_is_403_with_the_right_password_and_401_with_a_wrong_one() {
    let w = world();
    w.store.disable_portal_user(&addr("sam@a.example")).unwrap();
    w.try_login("sam@a.example", PASSWORD)
        .await
        .error(StatusCode::FORBIDDEN, "disabled");
    w.try_login("sam@a.example", "wrong password!!")
        .await
        .error(StatusCode::UNAUTHORIZED, "bad-credentials");
}
