//! `hisp demo` as the README shows it: the first start creates the demo
//! domains, addresses, anchors and the `demo` account and prints its
//! generated password once; `swaks` with that password sends from the demo
//! patient to the demo provider and the message lands in the provider's
//! mailbox, having gone through S/MIME: relayed sealed to the backbone
//! listener and opened there. A restart on the same data dir prints no
//! password and keeps the mailbox; SIGTERM stops it with exit 0.
//!
//! The demo ends in the portal (issue 12): it prints the portal's URL and
//! the generated passwords of the demo patient's and provider's portal
//! accounts once, and files one welcome message from the provider to the
//! patient through the portal's sending and the Direct path, which the
//! patient reads and answers through the portal API.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/portal_client.rs"]
mod portal_client;
#[path = "common/portal_site.rs"]
mod portal_site;
#[path = "common/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use common::hisp;
use portal_client::{Api, Login};
use portal_site::unread;
use serde_json::{json, Value};
use serve::{eventually, first_in_inbox, free_ports, loopback, Serve, Site, Swaks};

const PATIENT: &str = "patient@patients.demo.test";
const PROVIDER: &str = "provider@clinic.demo.test";
const BODY: &str = "Dear doctor, here are my blood pressure readings.";

const WELCOME_SUBJECT: &str = "Welcome to your secure messages";

/// The demo's site and where its portal listens.
struct DemoSite {
    site: Site,
    portal: SocketAddr,
}

/// A site whose config is the shipped config/demo.toml with the ports and
/// data dir of this test.
fn demo_site() -> DemoSite {
    let ports = free_ports(4);
    let site = Site::new("patients.demo.test", "clinic.demo.test", &ports[..3]);
    let portal = loopback(ports[3]);
    // Whole quoted values are replaced, so a port put in by one replacement
    // (say 25251) is never taken for the start of another ("127.0.0.1:2525").
    let quoted = |a: &dyn std::fmt::Display| format!("\"{a}\"");
    let shipped = include_str!("../../../config/demo.toml")
        .replace("../target/hisp-demo", "data")
        .replace("\"127.0.0.1:2587\"", &quoted(&site.submission))
        .replace("\"127.0.0.1:2525\"", &quoted(&site.backbone))
        .replace("\"127.0.0.1:5353\"", &quoted(&site.dns))
        .replace("\"127.0.0.1:8080\"", &quoted(&portal));
    std::fs::write(site.config(), shipped).unwrap();
    DemoSite { site, portal }
}

/// Starts `hisp demo` (the `run`th start) and waits for its listeners, the
/// portal's last: it is bound after the welcome message was queued.
fn start_demo(demo: &DemoSite, run: u32) -> Serve {
    let site = &demo.site;
    let log = site.path(&format!("demo-{run}.log"));
    // The first start makes two CAs and two RSA keys first.
    let patience = Duration::from_secs(60);
    let mut listeners = site.listeners().to_vec();
    listeners.push(demo.portal);
    Serve::launch("demo", &site.config(), log, &listeners, patience)
}

/// The value after `password: ` on the first line holding `label`.
fn password_after(demo: &Serve, label: &str) -> Option<String> {
    let out = demo.stdout();
    let line = out.lines().find(|l| l.contains(label))?;
    let (_, rest) = line.split_once("password: ")?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// The password printed on the `user demo password: ...` line, if any.
fn printed_password(demo: &Serve) -> Option<String> {
    password_after(demo, "user demo password: ")
}

/// The password printed for the portal account of `address`, if any.
fn portal_password(demo: &Serve, address: &str) -> Option<String> {
    password_after(demo, &format!("portal account: {address} password: "))
}

#[test]
fn demo_prints_a_password_once_and_swaks_mail_from_the_patient_lands_with_the_provider() {
    let demo_site = demo_site();
    let site = &demo_site.site;
    let mut demo = start_demo(&demo_site, 1);
    let password = printed_password(&demo)
        .unwrap_or_else(|| panic!("no password printed:\n{}", demo.stdout()));
    assert_eq!(password.len(), 24, "{password}");

    // The README's command, with this test's port.
    let out = Swaks::to(site.submission, PATIENT, PROVIDER)
        .auth_with("demo", &password)
        .args(["--header", "Subject: blood pressure", "--body", BODY])
        .run();
    assert!(out.queued(), "swaks failed:\n{}\n{}", out.text, demo.log());

    let entry = first_in_inbox(site, PROVIDER, &[&demo]);
    assert_eq!(entry["from"], PATIENT);
    assert_eq!(entry["subject"], "blood pressure");
    let shown = site.mailbox_text(&entry);
    assert!(shown.contains(BODY), "{shown}");

    // It went the Direct way, not straight into the mailbox: the outbound
    // message was relayed (sealed, by the route to the backbone listener) and
    // came back in as an inbound one that was opened and delivered; the
    // provider's side answered with processed and dispatched MDNs, which
    // took the patient's tracking to delivered. (The patient's MDNs
    // answering the welcome message are outbound from the patient too: the
    // message is told apart by its Message-ID.)
    let relayed_and_opened = || {
        let queue = site.queue_entries();
        let entry = |direction: &str| {
            queue
                .iter()
                .find(|e| {
                    e["direction"] == direction
                        && e["from"] == PATIENT
                        && e["message_id"] == entry["message_id"]
                })
                .cloned()
        };
        let relayed = entry("outbound").is_some_and(|e| {
            e["recipients"][0]["state"] == "delivered"
                && e["recipients"][0]["reason"] == "dispatched MDN received"
        });
        let opened = entry("inbound").is_some_and(|e| {
            e["state"] == "done"
                && e["recipients"][0]["address"] == PROVIDER
                && e["recipients"][0]["state"] == "delivered"
        });
        (relayed && opened).then_some(())
    };
    eventually(Duration::from_secs(30), relayed_and_opened, || {
        format!(
            "no outbound entry tracked to delivered and delivered inbound entry: {:#?}\n{}",
            site.queue_entries(),
            demo.log()
        )
    });
    assert_eq!(demo.terminate(), Some(0), "{}", demo.log());

    // Second start on the same data dir: no password, the message kept.
    let mut again = start_demo(&demo_site, 2);
    assert_eq!(printed_password(&again), None, "{}", again.stdout());
    assert!(
        again.stdout().contains("was shown at its first start"),
        "{}",
        again.stdout()
    );
    let inbox = site.mailbox(PROVIDER);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["id"], entry["id"]);
    assert_eq!(again.terminate(), Some(0), "{}", again.log());
    assert!(again.log().contains("hisp: stopped"), "{}", again.log());
}

/// The demo's messages with `subject` as `hisp message list --json` shows
/// them (outbound mail, not the MDNs).
fn tracked_with_subject(site: &Site, subject: &str) -> Vec<Value> {
    let run = site.run(&["message", "list", "--json"], b"").ok();
    let all: Value = serde_json::from_slice(&run.stdout).expect("message list --json");
    all.as_array()
        .expect("an array")
        .iter()
        .filter(|m| m["subject"] == subject && m["kind"] == "mail")
        .cloned()
        .collect()
}

/// `GET /api/v1/folders/{folder}/messages` of `login`.
fn folder(api: &Api, login: &Login, name: &str) -> Vec<Value> {
    let r = api.get(&format!("/api/v1/folders/{name}/messages"), login);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json().as_array().expect("an array").clone()
}

/// Issue 12, the demo: on an empty data dir `hisp demo` prints the
/// portal's URL and the generated passwords of the demo patient's and the
/// demo provider's portal accounts. The patient logs in with the printed
/// password and finds the provider's welcome message unread (one unread
/// in the Inbox) and the provider among the recipients; the provider finds
/// it in Sent, its Direct Status reaching delivered (the patient's side
/// sent the processed and dispatched MDNs); the patient's reply through the
/// API lands in the provider's Inbox. A second start prints the URL but no
/// password, and queues no second welcome message.
#[test]
fn demo_prints_the_portal_url_and_passwords_once_and_files_one_welcome_message_the_patient_answers()
{
    let demo_site = demo_site();
    let site = &demo_site.site;
    let mut demo = start_demo(&demo_site, 1);
    let out = demo.stdout();
    let url_line = format!("hisp demo: portal: http://{}/", demo_site.portal);
    assert!(out.lines().any(|l| l == url_line), "{out}");
    let patient_password =
        portal_password(&demo, PATIENT).unwrap_or_else(|| panic!("no patient password:\n{out}"));
    let provider_password =
        portal_password(&demo, PROVIDER).unwrap_or_else(|| panic!("no provider password:\n{out}"));
    assert_eq!(patient_password.len(), 24, "{patient_password}");
    assert_ne!(patient_password, provider_password);

    let api = Api::http(demo_site.portal);
    let (patient, _) = api.login_with(PATIENT, &patient_password);
    eventually(
        Duration::from_secs(30),
        || {
            let folders = api.get("/api/v1/folders", &patient).json();
            (unread(&folders, "inbox") == 1).then_some(())
        },
        || {
            format!(
                "no unread welcome message:\n{}\n{}",
                site.queue(),
                demo.log()
            )
        },
    );
    let inbox = folder(&api, &patient, "inbox");
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    let welcome = &inbox[0];
    assert_eq!(welcome["subject"], WELCOME_SUBJECT, "{welcome}");
    assert_eq!(welcome["from"], PROVIDER, "{welcome}");
    assert_eq!(welcome["unread"], true, "{welcome}");
    let recipients = api.get("/api/v1/recipients", &patient).json();
    assert!(
        recipients
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == PROVIDER),
        "{recipients}"
    );
    let opened = api
        .get(&format!("/api/v1/messages/{}", welcome["id"]), &patient)
        .json();
    let text = opened["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("demo message") && text.contains("Reply"),
        "{opened}"
    );

    // The provider sees it in Sent, delivered by the patient's side.
    let (provider, _) = api.login_with(PROVIDER, &provider_password);
    let sent = eventually(
        Duration::from_secs(30),
        || folder(&api, &provider, "sent").first().cloned(),
        || format!("nothing in the provider's Sent folder:\n{}", demo.log()),
    );
    assert_eq!(sent["subject"], WELCOME_SUBJECT, "{sent}");
    let status_path = format!("/api/v1/messages/{}/status", sent["id"]);
    let status = eventually(
        Duration::from_secs(30),
        || {
            let status = api.get(&status_path, &provider).json();
            (status["recipients"][0]["state"] == "delivered").then_some(status)
        },
        || {
            format!(
                "not delivered: {}\n{}",
                api.get(&status_path, &provider).json(),
                demo.log()
            )
        },
    );
    assert_eq!(status["recipients"][0]["address"], PATIENT, "{status}");

    // The patient answers through the API; the reply lands with the provider.
    let r = api.post(
        &format!("/api/v1/messages/{}/reply", welcome["id"]),
        &patient,
        json!({ "text": "Thank you, doctor. Reply works." }),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let answer_subject = format!("Re: {WELCOME_SUBJECT}");
    let answer = eventually(
        Duration::from_secs(30),
        || {
            folder(&api, &provider, "inbox")
                .into_iter()
                .find(|m| m["subject"] == answer_subject.as_str())
        },
        || format!("no reply in the provider's Inbox:\n{}", demo.log()),
    );
    assert_eq!(answer["from"], PATIENT, "{answer}");
    assert_eq!(answer["unread"], true, "{answer}");
    assert_eq!(tracked_with_subject(site, WELCOME_SUBJECT).len(), 1);
    assert_eq!(demo.terminate(), Some(0), "{}", demo.log());

    // Second start: the URL again, no password, no second welcome message.
    // The portal is bound after the welcome step, so once it listens that
    // step is done.
    let mut again = start_demo(&demo_site, 2);
    let out = again.stdout();
    assert!(!out.contains("password: "), "{out}");
    assert!(out.lines().any(|l| l == url_line), "{out}");
    assert!(
        out.contains("were shown at the first start") && out.contains("portal-user passwd"),
        "{out}"
    );
    assert!(!out.contains("queued a welcome message"), "{out}");
    let welcomes = tracked_with_subject(site, WELCOME_SUBJECT);
    assert_eq!(welcomes.len(), 1, "{welcomes:#?}");
    let (patient, _) = api.login_with(PATIENT, &patient_password);
    let inbox = folder(&api, &patient, "inbox");
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0]["id"], welcome["id"]);
    assert_eq!(again.terminate(), Some(0), "{}", again.log());
}

/// The welcome message is queued once even when the first start is
/// killed (SIGKILL, no clean stop) right after it was queued: the next
/// start queues none, and the patient's Inbox holds that one message.
#[test]
fn a_first_start_killed_after_queueing_the_welcome_leaves_exactly_one_welcome_message() {
    let demo_site = demo_site();
    let site = &demo_site.site;
    let mut first = start_demo(&demo_site, 1);
    let out = first.stdout();
    assert!(out.contains("queued a welcome message"), "{out}");
    first.kill_9();

    let again = start_demo(&demo_site, 2);
    assert!(
        !again.stdout().contains("queued a welcome message"),
        "{}",
        again.stdout()
    );
    let delivered = || {
        let welcomes = tracked_with_subject(site, WELCOME_SUBJECT);
        (welcomes.len() == 1 && welcomes[0]["recipients"][0]["state"] == "delivered")
            .then_some(welcomes)
    };
    eventually(Duration::from_secs(30), delivered, || {
        format!(
            "{:#?}\n{}",
            tracked_with_subject(site, WELCOME_SUBJECT),
            again.log()
        )
    });
    // One message sent: every Inbox entry is the one welcome message. (A
    // kill while the relay is under way may deliver that one message
    // twice over SMTP, which the receiving side files as it comes: the
    // relay's at-least-once delivery, not a second welcome.)
    let inbox = site.mailbox(PATIENT);
    assert!(!inbox.is_empty(), "{inbox:#?}");
    let message_ids: std::collections::BTreeSet<String> =
        inbox.iter().map(|e| e["message_id"].to_string()).collect();
    assert_eq!(message_ids.len(), 1, "{inbox:#?}");
    assert!(
        inbox.iter().all(|e| e["subject"] == WELCOME_SUBJECT),
        "{inbox:#?}"
    );
}

#[test]
fn demo_without_a_data_dir_says_which_config_to_use() {
    let run = hisp(["demo"], b"");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("hisp: no data_dir configured: `hisp demo`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--config config/demo.toml"),
        "{}",
        run.stderr
    );
}

/// The demo's process never opens `hisp.db` outside the store's one
/// connection (closing a second descriptor of the file would drop the POSIX
/// locks SQLite holds through the first): an administrator's `sqlite3
/// hisp.db 'select ...'` while it runs cannot take the WAL away from it, and
/// mail that arrives afterwards is seen by `hisp mailbox list`.
#[test]
fn sqlite3_reading_the_database_while_the_demo_runs_leaves_new_mail_visible() {
    let demo_site = demo_site();
    let site = &demo_site.site;
    let demo = start_demo(&demo_site, 1);
    let password = printed_password(&demo)
        .unwrap_or_else(|| panic!("no password printed:\n{}", demo.stdout()));
    let send = |subject: &str| {
        let out = Swaks::to(site.submission, PATIENT, PROVIDER)
            .auth_with("demo", &password)
            .args(["--header", &format!("Subject: {subject}"), "--body", BODY])
            .run();
        assert!(out.queued(), "swaks failed:\n{}\n{}", out.text, demo.log());
    };
    send("first");
    first_in_inbox(site, PROVIDER, &[&demo]);

    let db = site.path("data/hisp.db");
    let sqlite3 = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT count(*) FROM mailbox;")
        .output()
        .expect("the sqlite3 command line runs");
    assert!(
        sqlite3.status.success(),
        "{}",
        String::from_utf8_lossy(&sqlite3.stderr)
    );
    assert!(
        String::from_utf8_lossy(&sqlite3.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
            >= 1,
        "{sqlite3:?}"
    );

    send("second");
    let inbox = serve::wait_for_inbox(site, PROVIDER, 2, Duration::from_secs(30), &[&demo]);
    assert!(inbox.iter().any(|e| e["subject"] == "second"), "{inbox:#?}");
}

/// The README's walkthrough begins: on an empty data dir `hisp demo`
/// prints the portal's URL and both portal passwords, and a browser logged
/// in as the patient with the printed password sees "Inbox (1)": the
/// welcome message, unread, in bold. The screenshot is the one the README
/// shows (docs/portal-inbox.png is a copy).
#[test]
fn a_browser_logged_in_as_the_demo_patient_sees_inbox_1_issue_12() {
    let demo_site = demo_site();
    let site = &demo_site.site;
    let mut demo = start_demo(&demo_site, 1);
    let out = demo.stdout();
    let url = format!("http://{}/", demo_site.portal);
    assert!(
        out.lines()
            .any(|l| l == format!("hisp demo: portal: {url}")),
        "{out}"
    );
    let patient_password =
        portal_password(&demo, PATIENT).unwrap_or_else(|| panic!("no patient password:\n{out}"));
    assert!(portal_password(&demo, PROVIDER).is_some(), "{out}");
    // The welcome message takes the Direct path through the demo's own
    // backbone listener before it is in the Inbox.
    eventually(
        Duration::from_secs(60),
        || (!site.mailbox(PATIENT).is_empty()).then_some(()),
        || demo.log(),
    );

    let driver = browser::Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.browser().await;
        c.set_window_size(1100, 700).await.unwrap();
        let base = url.trim_end_matches('/');
        browser::log_in_with(&c, base, PATIENT, &patient_password).await;
        assert_eq!(browser::inbox_link(&c).await, "Inbox (1)");
        let unread = browser::css(&c, "table.messages tr.unread td.subject strong").await;
        assert_eq!(unread.text().await.unwrap(), WELCOME_SUBJECT);
        let weight: u32 = unread
            .css_value("font-weight")
            .await
            .unwrap()
            .parse()
            .unwrap();
        assert!(weight >= 700, "unread is bold: font-weight {weight}");
        browser::screenshot(&c, "demo-inbox.png").await;
        c.close().await.unwrap();
    });

    assert_eq!(demo.terminate(), Some(0), "{}", demo.log());
}

/// What an administrator sees of an installation, read with the CLI:
/// both demo mailboxes, the tracking of every message, every audit event,
/// and the chain's verdict (`hisp audit verify`, which exits 0 only for an
/// intact chain). The commands run with `HISP_STORE_PASSWORD` set to
/// `password`.
fn seen_by_the_cli(site: &Site, password: &str) -> Value {
    let run = |args: &[&str]| -> Vec<u8> {
        let mut all = vec!["--config".to_string(), common::s(&site.config())];
        all.extend(args.iter().map(|a| a.to_string()));
        let out = common::hisp_cmd(all)
            .env("HISP_STORE_PASSWORD", password)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hisp {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let json = |args: &[&str]| -> Value {
        serde_json::from_slice(&run(args)).unwrap_or_else(|e| panic!("hisp {args:?}: {e}"))
    };
    json!({
        "patient": json(&["mailbox", "list", PATIENT, "--json"]),
        "provider": json(&["mailbox", "list", PROVIDER, "--json"]),
        "messages": json(&["message", "list", "--json"]),
        "events": json(&["audit", "export", "--json"]),
        "verify": String::from_utf8_lossy(&run(&["audit", "verify"])).trim().to_string(),
    })
}

/// Issue 14: `hisp store copy` moves a demo installation (after its
/// welcome message went the Direct way and was answered) into PostgreSQL;
/// the CLI then shows the same mailboxes, tracking and intact audit chain
/// there, and `hisp serve` on the database serves them: the patient logs
/// in with the password printed by the first start, finds the welcome as
/// it was, and a new reply goes through to the provider with its tracking
/// reaching delivered; the audit chain still verifies.
#[test]
fn a_demo_installation_copied_to_postgresql_serves_the_same_mailboxes_tracking_and_audit_chain_issue_14(
) {
    let demo_site = demo_site();
    let site = &demo_site.site;
    let mut demo = start_demo(&demo_site, 1);
    let patient_password = portal_password(&demo, PATIENT).expect("the patient's password");
    let provider_password = portal_password(&demo, PROVIDER).expect("the provider's password");
    let api = Api::http(demo_site.portal);
    let (provider, _) = api.login_with(PROVIDER, &provider_password);
    let sent = eventually(
        Duration::from_secs(30),
        || folder(&api, &provider, "sent").first().cloned(),
        || format!("nothing in the provider's Sent folder:\n{}", demo.log()),
    );
    let status_path = format!("/api/v1/messages/{}/status", sent["id"]);
    eventually(
        Duration::from_secs(30),
        || {
            let status = api.get(&status_path, &provider).json();
            (status["recipients"][0]["state"] == "delivered").then_some(())
        },
        || format!("the welcome is not delivered:\n{}", demo.log()),
    );
    let (patient, _) = api.login_with(PATIENT, &patient_password);
    let welcome = folder(&api, &patient, "inbox")[0].clone();
    // Opened: the copy keeps what was read.
    api.get(&format!("/api/v1/messages/{}", welcome["id"]), &patient);
    assert_eq!(demo.terminate(), Some(0), "{}", demo.log());

    let db = hisp_testpg::TestDatabase::new();
    let before = seen_by_the_cli(site, db.password());
    let events = before["events"].as_array().unwrap().len();
    assert_eq!(
        before["verify"],
        format!("audit chain intact: {events} events"),
        "{before}"
    );

    let copy = common::hisp_cmd([
        "--config",
        &common::s(&site.config()),
        "store",
        "copy",
        "--from",
        &format!("sqlite:{}", common::s(&site.path("data/hisp.db"))),
        "--to",
        &db.url(),
    ])
    .env("HISP_STORE_PASSWORD", db.password())
    .output()
    .unwrap();
    assert!(
        copy.status.success(),
        "store copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );

    // The same installation, now on PostgreSQL.
    let mut config = std::fs::read_to_string(site.config()).unwrap();
    config.push_str(&format!(
        "[store]\nurl = \"{}\"\ninstance = \"demo-pg\"\n",
        db.url()
    ));
    std::fs::write(site.config(), config).unwrap();
    let after = seen_by_the_cli(site, db.password());
    assert_eq!(
        after, before,
        "the CLI shows the copy as it showed the original"
    );

    let mut listeners = site.listeners().to_vec();
    listeners.push(demo_site.portal);
    let serve = Serve::launch_env(
        "serve",
        &site.config(),
        site.path("serve-pg.log"),
        &listeners,
        Duration::from_secs(30),
        &[("HISP_STORE_PASSWORD", db.password())],
    );
    let (patient, _) = api.login_with(PATIENT, &patient_password);
    let inbox = folder(&api, &patient, "inbox");
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0]["id"], welcome["id"]);
    assert_eq!(inbox[0]["subject"], WELCOME_SUBJECT);
    assert_eq!(
        inbox[0]["unread"], false,
        "read before the copy: {}",
        inbox[0]
    );
    let r = api.post(
        &format!("/api/v1/messages/{}/reply", welcome["id"]),
        &patient,
        json!({ "text": "Written after the move to PostgreSQL." }),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let (provider, _) = api.login_with(PROVIDER, &provider_password);
    eventually(
        Duration::from_secs(30),
        || {
            folder(&api, &provider, "inbox")
                .into_iter()
                .find(|m| m["subject"] == format!("Re: {WELCOME_SUBJECT}").as_str())
        },
        || format!("no reply in the provider's Inbox:\n{}", serve.log()),
    );
    let (patient, _) = api.login_with(PATIENT, &patient_password);
    let reply = eventually(
        Duration::from_secs(30),
        || folder(&api, &patient, "sent").first().cloned(),
        || format!("nothing in the patient's Sent folder:\n{}", serve.log()),
    );
    let status_path = format!("/api/v1/messages/{}/status", reply["id"]);
    eventually(
        Duration::from_secs(30),
        || {
            let status = api.get(&status_path, &patient).json();
            (status["recipients"][0]["state"] == "delivered").then_some(())
        },
        || format!("the reply is not delivered:\n{}", serve.log()),
    );
    let last = seen_by_the_cli(site, db.password());
    let grown = last["events"].as_array().unwrap().len();
    assert!(grown > events, "the chain grew on PostgreSQL: {grown}");
    assert_eq!(
        last["verify"],
        format!("audit chain intact: {grown} events"),
        "{}",
        last["verify"]
    );
}
