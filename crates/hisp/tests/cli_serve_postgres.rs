//! `hisp serve` on PostgreSQL (issue 14): B keeps its store in a database
//! of the test server (`hisp-testpg`) and every command, the server's
//! included, works on it; a message and its MDNs pass between A (SQLite)
//! and B as between two SQLite sites. One instance name is one live
//! process.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::time::Duration;

use common::{hisp, s};
use serde_json::Value;
use serve::{
    eventually, first_in_inbox, free_ports, loopback, peers, two_sites_on, Certs, Serve, Site,
    Swaks,
};

/// A fresh database and the `[store]` table naming it, its password in a
/// file beside the configuration.
fn postgres_store(dir: &tempfile::TempDir, instance: &str) -> (hisp_testpg::TestDatabase, String) {
    let db = hisp_testpg::TestDatabase::new();
    let password = dir.path().join("store-password");
    std::fs::write(&password, format!("{}\n", db.password())).unwrap();
    let table = format!(
        "[store]\nurl = \"{}\"\npassword_file = \"{}\"\ninstance = \"{instance}\"\npool_size = 8\n",
        db.url(),
        password.display()
    );
    (db, table)
}

#[test]
fn a_message_and_its_mdns_pass_through_a_hisp_serving_from_postgresql_issue_14() {
    let keys = tempfile::tempdir().unwrap();
    let (db, store) = postgres_store(&keys, "b1");
    let (a, b) = two_sites_on(Certs::Issued, peers, &store);
    assert!(
        !b.path("data/hisp.db").exists(),
        "B's provisioning went to PostgreSQL, not to an SQLite file"
    );
    let mut serve_b = Serve::start(&b, "b");
    let serve_a = Serve::start(&a, "a");

    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Subject: to a HISP on PostgreSQL"])
        .run();
    assert!(out.queued(), "{}", out.text);
    let entry = first_in_inbox(&b, "doc@b.example", &[&serve_a, &serve_b]);
    assert!(
        b.mailbox_text(&entry).contains("to a HISP on PostgreSQL"),
        "{}",
        b.mailbox_text(&entry)
    );
    // B's MDNs reach A: A's tracking completes.
    eventually(
        Duration::from_secs(30),
        || {
            let list = a.run(&["message", "list", "--json"], b"").ok();
            let json: Value = serde_json::from_slice(&list.stdout).unwrap();
            (json[0]["recipients"][0]["state"] == "delivered").then_some(())
        },
        || format!("A's queue:\n{}\nB's log:\n{}", a.queue(), serve_b.log()),
    );

    // The other way: B's account submits, A files it, B tracks it to delivered.
    let out = Swaks::to(b.submission, "doc@b.example", "pat@a.example")
        .auth("ehr-b")
        .args(["--header", "Subject: from a HISP on PostgreSQL"])
        .run();
    assert!(out.queued(), "{}", out.text);
    first_in_inbox(&a, "pat@a.example", &[&serve_a, &serve_b]);
    eventually(
        Duration::from_secs(30),
        || {
            let list = b.run(&["message", "list", "--json"], b"").ok();
            let json: Value = serde_json::from_slice(&list.stdout).unwrap();
            let sent = json
                .as_array()?
                .iter()
                .find(|m| m["from"] == "doc@b.example")?
                .clone();
            (sent["recipients"][0]["state"] == "delivered").then_some(())
        },
        || format!("B's queue:\n{}\nB's log:\n{}", b.queue(), serve_b.log()),
    );
    // What B did is in the database: its rows, and the audit chain holds.
    let rows: i64 = db
        .admin()
        .query_one("SELECT count(*) FROM mailbox", &[])
        .unwrap()
        .get(0);
    assert!(rows >= 2, "doc's inbox and Sent: {rows}");
    let verify = b.run(&["audit", "verify"], b"");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    // A clean stop lets the instance name go and exits 0.
    assert_eq!(serve_b.terminate(), Some(0), "{}", serve_b.log());
}

/// Writes `twin.toml` beside B's configuration: the same one (so the same
/// instance name) with listeners on other free ports; returns them.
fn write_twin(b: &Site) -> [std::net::SocketAddr; 3] {
    // The twin: the same configuration (so the same instance) on other ports.
    let ports = free_ports(3);
    let twin = std::fs::read_to_string(b.config())
        .unwrap()
        .replace(
            &format!("\"{}\"", b.submission),
            &format!("\"127.0.0.1:{}\"", ports[0]),
        )
        .replace(
            &format!("\"{}\"", b.backbone),
            &format!("\"127.0.0.1:{}\"", ports[1]),
        )
        .replace(
            &format!("\"{}\"", b.dns),
            &format!("\"127.0.0.1:{}\"", ports[2]),
        );
    std::fs::write(b.path("twin.toml"), twin).unwrap();
    [0, 1, 2].map(|i| loopback(ports[i]))
}

#[test]
fn a_second_serve_under_a_running_instance_name_is_refused_and_the_first_keeps_serving_issue_14() {
    let keys = tempfile::tempdir().unwrap();
    let (_db, store) = postgres_store(&keys, "b1");
    let (_a, b) = two_sites_on(Certs::Issued, peers, &store);
    let serve_b = Serve::start(&b, "b");
    write_twin(&b);
    let run = hisp(["--config", &s(&b.path("twin.toml")), "serve"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "cannot start as instance 'b1': another hisp serve is running as instance 'b1' on \
             this database: give each instance its own [store] instance name"
        ),
        "{}",
        run.stderr
    );
    // The first still answers.
    let out = Swaks::at(b.submission).args(["--quit-after", "EHLO"]).run();
    assert!(out.success, "{}\n{}", out.text, serve_b.log());
}

#[test]
fn a_serve_whose_instance_name_was_taken_after_its_connection_dropped_stops_with_exit_1_issue_14() {
    let keys = tempfile::tempdir().unwrap();
    let (db, store) = postgres_store(&keys, "b1");
    let (_a, b) = two_sites_on(Certs::Issued, peers, &store);
    let mut first = Serve::start(&b, "b");
    // The connection holding the name ends (as when the database restarts
    // or an idle connection is dropped on the way), and another process
    // takes the name before the first checks it (here the test's own
    // session, waiting for the lock as the connection is cut). A process
    // that took the name may have freed the first one's leases: it stops.
    let mut other = db.admin();
    let name = other
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get::<_, String>(0);
    let ended: bool = other
        .query_one(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert!(ended);
    other
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('hisp-instance:b1', 0))",
            &[],
        )
        .unwrap();
    let code = first.exit_within(Duration::from_secs(30));
    assert_eq!(code, Some(Some(1)), "{}", first.log());
    let log = first.log();
    assert!(
        log.contains("another hisp serve is running as instance 'b1'")
            && log.contains("may have freed this one's leases"),
        "{log}"
    );
}

#[test]
fn a_serve_whose_instance_connection_dropped_takes_its_name_again_and_keeps_serving_issue_14() {
    let keys = tempfile::tempdir().unwrap();
    let (db, store) = postgres_store(&keys, "b1");
    let (_a, b) = two_sites_on(Certs::Issued, peers, &store);
    let serve = Serve::start(&b, "b");
    let ended: bool = db
        .admin()
        .query_one(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ended);
    eventually(
        Duration::from_secs(30),
        || serve.log().contains("the name is held again").then_some(()),
        || serve.log(),
    );
    // Held again: a twin is refused.
    write_twin(&b);
    let run = hisp(["--config", &s(&b.path("twin.toml")), "serve"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("another hisp serve is running as instance 'b1'"),
        "{}",
        run.stderr
    );
}
