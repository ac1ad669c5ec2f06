//! `hisp demo` as the README shows it: the first start creates the demo
//! domains, addresses, anchors and the `demo` account and prints its
//! generated password once; `swaks` with that password sends from the demo
//! patient to the demo provider and the message lands in the provider's
//! mailbox, having gone through S/MIME: relayed sealed to the backbone
//! listener and opened there. A restart on the same data dir prints no
//! password and keeps the mailbox; SIGTERM stops it with exit 0.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::time::Duration;

use common::hisp;
use serve::{eventually, first_in_inbox, free_ports, Serve, Site, Swaks};

const PATIENT: &str = "patient@patients.demo.test";
const PROVIDER: &str = "provider@clinic.demo.test";
const BODY: &str = "Dear doctor, here are my blood pressure readings.";

/// A site whose config is the shipped config/demo.toml with the ports and
/// data dir of this test.
fn demo_site() -> Site {
    let site = Site::new("patients.demo.test", "clinic.demo.test", &free_ports(3));
    let shipped = include_str!("../../../config/demo.toml")
        .replace("../target/hisp-demo", "data")
        .replace("127.0.0.1:2587", &site.submission.to_string())
        .replace("127.0.0.1:2525", &site.backbone.to_string())
        .replace("127.0.0.1:5353", &site.dns.to_string());
    std::fs::write(site.config(), shipped).unwrap();
    site
}

/// Starts `hisp demo` (the `run`th start) and waits for its listeners.
fn start_demo(site: &Site, run: u32) -> Serve {
    let log = site.path(&format!("demo-{run}.log"));
    // The first start makes two CAs and two RSA keys first.
    let patience = Duration::from_secs(60);
    Serve::launch("demo", &site.config(), log, &site.listeners(), patience)
}

/// The password printed on the `user demo password: ...` line, if any.
fn printed_password(demo: &Serve) -> Option<String> {
    let out = demo.stdout();
    let line = out.lines().find(|l| l.contains("password: "))?;
    let (_, rest) = line.split_once("password: ")?;
    Some(rest.split_whitespace().next()?.to_string())
}

#[test]
fn demo_prints_a_password_once_and_swaks_mail_from_the_patient_lands_with_the_provider() {
    let site = demo_site();
    let mut demo = start_demo(&site, 1);
    let password = printed_password(&demo)
        .unwrap_or_else(|| panic!("no password printed:\n{}", demo.stdout()));
    assert_eq!(password.len(), 24, "{password}");

    // The README's command, with this test's port.
    let out = Swaks::to(site.submission, PATIENT, PROVIDER)
        .auth_with("demo", &password)
        .args(["--header", "Subject: blood pressure", "--body", BODY])
        .run();
    assert!(out.queued(), "swaks failed:\n{}\n{}", out.text, demo.log());

    let entry = first_in_inbox(&site, PROVIDER, &[&demo]);
    assert_eq!(entry["from"], PATIENT);
    assert_eq!(entry["subject"], "blood pressure");
    let shown = site.mailbox_text(&entry);
    assert!(shown.contains(BODY), "{shown}");

    // It went the Direct way, not straight into the mailbox: the outbound
    // message was relayed (sealed, by the route to the backbone listener) and
    // came back in as an inbound one that was opened and delivered; the
    // provider's side answered with processed and dispatched MDNs, which
    // took the patient's tracking to delivered.
    let relayed_and_opened = || {
        let queue = site.queue_entries();
        let entry = |direction: &str| {
            queue
                .iter()
                .find(|e| e["direction"] == direction && e["from"] == PATIENT)
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
    let mut again = start_demo(&site, 2);
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
    let site = demo_site();
    let demo = start_demo(&site, 1);
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
    first_in_inbox(&site, PROVIDER, &[&demo]);

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
    let inbox = serve::wait_for_inbox(&site, PROVIDER, 2, Duration::from_secs(30), &[&demo]);
    assert!(inbox.iter().any(|e| e["subject"] == "second"), "{inbox:#?}");
}
