//! The portal's HTTP API served by a real `hisp serve` (issue 11): mail
//! goes from pat@a.example at site A to doc@b.example at site B through
//! swaks and both HISPs, then doc reads it through B's API over loopback
//! HTTP (and HTTPS), while nurse@b.example, another portal user at B, must
//! not reach it.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::sync::Arc;
use std::time::Duration;

use common::{openssl, s};
use serde_json::{json, Value};
use serve::{eventually, free_ports, loopback, peers, two_sites, wait_for_inbox, Site, Swaks};

#[path = "common/portal_client.rs"]
mod portal_client;
#[path = "common/portal_site.rs"]
mod portal_site;

use portal_client::{Api, PORTAL_PASSWORD};
use portal_site::{add_portal_section, await_announce, portal_user, start_with_portal, unread};

#[test]
fn portal_api_reads_only_the_owners_mailbox_with_status_csrf_audit_and_throttling_issue_11() {
    let (a, b) = two_sites(peers);
    let ports = free_ports(2);
    let (portal, portal_a) = (loopback(ports[0]), loopback(ports[1]));
    add_portal_section(&b, &format!("listen = \"{portal}\"\n"));
    add_portal_section(&a, &format!("listen = \"{portal_a}\"\n"));
    b.run(&["address", "add", "nurse@b.example"], b"").ok();
    portal_user(&b, "doc@b.example");
    portal_user(&b, "nurse@b.example");
    portal_user(&a, "pat@a.example");
    let mut serve_a = start_with_portal(&a, portal_a, "a");
    let mut serve_b = start_with_portal(&b, portal, "b");
    await_announce(&serve_b, &format!("portal API on {portal} (HTTP)"));

    let pdf = a.path("report.pdf");
    let pdf_bytes: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        .iter()
        .copied()
        .chain((0..4096u32).map(|i| (i * 7 % 251) as u8))
        .collect();
    std::fs::write(&pdf, &pdf_bytes).unwrap();
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: lab results"])
        .args(["--header", "From: Pat Patient <pat@a.example>"])
        .args(["--body", "Please call me."])
        .args(["--attach-type", "application/pdf"])
        .args(["--attach-name", "../../scans/report.pdf"])
        .args(["--attach", &format!("@{}", s(&pdf))])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    wait_for_inbox(&b, "doc@b.example", 1, Duration::from_secs(60), &[&serve_b]);

    // At A, pat's Sent copy has the Direct Status from A's tracking: B's
    // processed and dispatched MDNs move it to delivered.
    let api_a = Api::http(portal_a);
    let (pat, _) = api_a.login("pat@a.example");
    let sent = eventually(
        Duration::from_secs(30),
        || {
            let list = api_a.get("/api/v1/folders/sent/messages", &pat).json();
            list.as_array()?.first()?["id"].as_i64()
        },
        || serve_a.log(),
    );
    let status = eventually(
        Duration::from_secs(60),
        || {
            let s = api_a
                .get(&format!("/api/v1/messages/{sent}/status"), &pat)
                .json();
            // The two MDNs travel side by side: the processed one may come
            // second, and then only adds its step.
            let steps = s["recipients"][0]["steps"].as_array()?.len();
            (s["recipients"][0]["state"] == "delivered" && steps == 5).then_some(s)
        },
        || format!("{}\n----\n{}", serve_a.log(), serve_b.log()),
    );
    let r = &status["recipients"][0];
    assert_eq!(r["address"], "doc@b.example", "{status}");
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["queued", "relayed", "processed", "dispatched", "delivered"],
        "{status}"
    );
    assert!(
        status["message_id"].as_str().unwrap().starts_with('<'),
        "{status}"
    );

    let api = Api::http(portal);
    let (doc, r) = api.login("doc@b.example");
    let cookie = r.header("set-cookie");
    assert!(
        cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Strict")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(r.json()["address"], "doc@b.example");
    api.try_login("doc@b.example", "not the password")
        .error(401, "bad-credentials");

    // Folders: one unread in the inbox; reading it makes it 0.
    assert_eq!(unread(&api.get("/api/v1/folders", &doc).json(), "inbox"), 1);
    let list = api.get("/api/v1/folders/inbox/messages", &doc).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["from"], "pat@a.example");
    assert_eq!(list[0]["subject"], "lab results");
    assert_eq!(list[0]["unread"], true);
    let id = list[0]["id"].as_i64().unwrap();
    let m = api.get(&format!("/api/v1/messages/{id}"), &doc).json();
    assert_eq!(m["subject"], "lab results");
    assert_eq!(m["to"], json!(["doc@b.example"]));
    assert!(
        m["text"].as_str().unwrap().contains("Please call me."),
        "{m}"
    );
    assert!(m["date"].as_str().unwrap().ends_with('Z'), "{m}");
    assert_eq!(list[0]["has_attachments"], true);
    assert_eq!(
        m["attachments"],
        json!([{"index": 0, "name": "report.pdf", "content_type": "application/pdf", "size": pdf_bytes.len()}])
    );
    let file = api.get(&format!("/api/v1/messages/{id}/attachments/0"), &doc);
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), "application/pdf");
    assert!(
        file.header("content-disposition")
            .starts_with("attachment; filename=\"report.pdf\""),
        "{}",
        file.header("content-disposition")
    );
    assert!(file.body == pdf_bytes, "the PDF arrives byte-equal");
    assert_eq!(unread(&api.get("/api/v1/folders", &doc).json(), "inbox"), 0);

    // Recipients: who wrote to doc.
    let recipients = api.get("/api/v1/recipients", &doc).json();
    assert_eq!(recipients[0]["address"], "pat@a.example", "{recipients}");
    assert_eq!(recipients[0]["name"], "Pat Patient", "{recipients}");

    // Another user at the same HISP: doc's id is 404 everywhere.
    let (nurse, _) = api.login("nurse@b.example");
    for (method, path) in [
        ("GET", format!("/api/v1/messages/{id}")),
        ("GET", format!("/api/v1/messages/{id}/attachments/0")),
        ("GET", format!("/api/v1/messages/{id}/status")),
        ("POST", format!("/api/v1/messages/{id}/disregard")),
        ("POST", format!("/api/v1/messages/{id}/restore")),
        ("DELETE", format!("/api/v1/messages/{id}")),
    ] {
        api.call(method, &path, Some(&nurse), true, None)
            .error(404, "not-found");
    }
    assert_eq!(api.get("/api/v1/recipients", &nurse).json(), json!([]));

    // A state change without the CSRF header: 403, nothing moved.
    api.call(
        "POST",
        &format!("/api/v1/messages/{id}/disregard"),
        Some(&doc),
        false,
        None,
    )
    .error(403, "csrf");
    assert_eq!(api.get("/api/v1/folders", &doc).json()[0]["total"], 1);

    // DELETE: 405, and the attempt is in `hisp audit export`.
    api.call(
        "DELETE",
        &format!("/api/v1/messages/{id}"),
        Some(&doc),
        true,
        None,
    )
    .error(405, "delete-not-allowed");
    let run = b
        .run(
            &["audit", "export", "--json", "--address", "doc@b.example"],
            b"",
        )
        .ok();
    let events: Value = serde_json::from_slice(&run.stdout).unwrap();
    let refused: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "delete-refused")
        .collect();
    assert_eq!(refused.len(), 1, "{events}");
    assert_eq!(b.mailbox("doc@b.example").len(), 1, "nothing deleted");

    // Disregard and restore.
    let r = api.call(
        "POST",
        &format!("/api/v1/messages/{id}/disregard"),
        Some(&doc),
        true,
        None,
    );
    assert_eq!(
        (r.status, r.json()["folder"].clone()),
        (200, json!("disregarded"))
    );
    let r = api.call(
        "POST",
        &format!("/api/v1/messages/{id}/restore"),
        Some(&doc),
        true,
        None,
    );
    assert_eq!(
        (r.status, r.json()["folder"].clone()),
        (200, json!("inbox"))
    );

    // Settings round trip.
    let change = json!({ "notify": false, "email": "doc@mail.example" });
    let r = api.call(
        "PUT",
        "/api/v1/settings",
        Some(&doc),
        true,
        Some(change.clone()),
    );
    assert_eq!((r.status, r.json()), (200, change.clone()));
    assert_eq!(api.get("/api/v1/settings", &doc).json(), change);
    let users = b
        .run(&["portal-user", "list", "--json"], b"")
        .ok()
        .stdout_text();
    assert!(users.contains("doc@mail.example"), "{users}");

    // Logout ends the session.
    assert_eq!(
        api.call("DELETE", "/api/v1/session", Some(&doc), true, None)
            .status,
        200
    );
    api.get("/api/v1/folders", &doc)
        .error(401, "unauthenticated");

    // Throttling: five failures, then even the right password gets 429.
    for _ in 0..5 {
        api.try_login("nurse@b.example", "not the password")
            .error(401, "bad-credentials");
    }
    let r = api.try_login("nurse@b.example", PORTAL_PASSWORD);
    r.error(429, "throttled");
    let retry: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");

    assert_eq!(serve_a.terminate(), Some(0), "{}", serve_a.log());
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
}

/// `tls/ca.pem` and `tls/portal.pem` with `tls/portal.key` for 127.0.0.1.
fn make_portal_certificate(site: &Site) {
    let dir = site.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| s(&dir.join(name));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    let (ca_key, ca_pem) = (p("ca.key"), p("ca.pem"));
    ca.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-days",
        "2",
        "-subj",
        "/CN=portal test CA",
    ]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(ca, b"").ok();
    let (key, csr) = (p("portal.key"), p("portal.csr"));
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=portal"]);
    openssl(req, b"").ok();
    std::fs::write(
        dir.join("portal.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    let (ext, pem) = (p("portal.ext"), p("portal.pem"));
    openssl(
        [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
        b"",
    )
    .ok();
}

#[test]
fn portal_api_over_https_sets_a_secure_session_cookie() {
    let (_a, b) = two_sites(peers);
    make_portal_certificate(&b);
    let portal = loopback(free_ports(1)[0]);
    add_portal_section(
        &b,
        &format!(
            "listen = \"{portal}\"\ntls_cert = \"tls/portal.pem\"\ntls_key = \"tls/portal.key\"\n"
        ),
    );
    portal_user(&b, "doc@b.example");
    let mut serve_b = start_with_portal(&b, portal, "b");
    await_announce(&serve_b, &format!("portal API on {portal} (HTTPS)"));
    let ca = std::fs::read(b.path("tls/ca.pem")).unwrap();
    let root = ureq::tls::Certificate::from_pem(&ca).unwrap().to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    let api = Api::with(format!("https://{portal}"), Some(tls));
    let (doc, r) = api.login("doc@b.example");
    let cookie = r.header("set-cookie");
    assert!(
        cookie.ends_with("; Secure") && cookie.contains("; HttpOnly"),
        "{cookie}"
    );
    assert_eq!(api.get("/api/v1/folders", &doc).status, 200);
    // Plain HTTP on the HTTPS port gets no answer from the API.
    let plain = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build(),
    );
    assert!(plain
        .get(format!("http://{portal}/api/v1/folders"))
        .call()
        .is_err());
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
}

/// `[portal] tls_cert` without `tls_key` (or a file that cannot be read)
/// stops `hisp serve` before anything listens, naming the key.
#[test]
fn serve_refuses_half_or_unreadable_portal_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    for (portal, says) in [
        (
            "tls_cert = \"portal.pem\"\n",
            "hisp: [portal] tls_cert is set but tls_key is not: set both or neither",
        ),
        (
            "tls_key = \"portal.key\"\n",
            "hisp: [portal] tls_key is set but tls_cert is not: set both or neither",
        ),
        (
            "tls_cert = \"missing.pem\"\ntls_key = \"missing.key\"\n",
            "hisp: cannot read [portal] tls_cert",
        ),
    ] {
        let path = dir.path().join("hisp.toml");
        std::fs::write(
            &path,
            format!("data_dir = \"data\"\n[portal]\nlisten = \"127.0.0.1:1\"\n{portal}"),
        )
        .unwrap();
        let run = common::hisp(["--config", &s(&path), "serve"], b"");
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.starts_with(says), "{}", run.stderr);
    }
}
