//! `hisp portal-user` and `hisp audit`, run as the real binary: portal
//! accounts against a store in a temporary data directory, and the audit
//! chain of two `hisp serve` processes after a message went between them,
//! then after one audit row was changed with the `sqlite3` command line.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{hisp, s, Run};
use hisp_store::{AuditKind, DirectAddress, Domain, SqliteStore, Store, StoreError};
use serde_json::Value;
use serve::{eventually, peers, two_sites, wait_for_inbox, Serve, Swaks};

/// A temporary directory with a config whose data_dir is `data/`, and the
/// local address `Bob@b.example`.
struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hisp.toml");
        std::fs::write(&config, "data_dir = \"data\"\n").unwrap();
        let env = Env { dir, config };
        let store = env.store();
        store
            .add_domain(&Domain::parse("b.example").unwrap(), &[])
            .unwrap();
        store.add_address(&addr("Bob@b.example"), &[]).unwrap();
        env
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open_in(&self.dir.path().join("data")).unwrap()
    }

    fn run_with(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config)];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, stdin)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run_with(args, b"").ok().stdout_text()
    }

    fn fails(&self, args: &[&str], stdin: &[u8], code: i32, stderr: &str) {
        let run = self.run_with(args, stdin);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end(), stderr, "{args:?}");
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

const PASSWORD: &str = "correct horse battery staple";

/// The generated password in `password: X  (shown once ...)`.
fn generated(line: &str) -> String {
    line.strip_prefix("password: ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no password line: {line}"))
        .to_string()
}

#[test]
fn portal_user_add_generate_prints_a_working_password_once() {
    let env = Env::new();
    let out = env.ok(&[
        "portal-user",
        "add",
        "bob@B.EXAMPLE",
        "--generate",
        "--email",
        "bob@mail.example",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("added portal user Bob@b.example"));
    let password = generated(lines.next().unwrap());
    assert_eq!(password.len(), 24);
    assert_eq!(lines.next(), None);
    let user = env
        .store()
        .verify_portal_login(&addr("bob@b.example"), &password)
        .unwrap();
    assert_eq!(
        user.settings
            .notify_to()
            .map(ToString::to_string)
            .as_deref(),
        Some("bob@mail.example")
    );
    let list = env.ok(&["portal-user", "list"]);
    assert!(!list.contains(&password));
    assert!(
        list.starts_with("ADDRESS        NOTIFY  EMAIL             STATE    ADDED\n"),
        "{list}"
    );
    assert!(
        list.contains("Bob@b.example  on      bob@mail.example  enabled  "),
        "{list}"
    );
}

#[test]
fn portal_user_add_reads_the_password_from_stdin_and_honours_no_notify() {
    let env = Env::new();
    let run = env
        .run_with(
            &[
                "portal-user",
                "add",
                "bob@b.example",
                "--password-stdin",
                "--no-notify",
            ],
            format!("{PASSWORD}\n").as_bytes(),
        )
        .ok();
    assert_eq!(run.stdout_text(), "added portal user Bob@b.example\n");
    let list = env.json(&["portal-user", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let u = &list[0];
    assert_eq!(u["address"], "Bob@b.example");
    assert_eq!(u["email"], Value::Null);
    assert_eq!(u["notify"], false);
    assert_eq!(u["disabled"], false);
    assert_eq!(u["disabled_at"], Value::Null);
    assert!(u["added_at"].as_str().unwrap().ends_with('Z'));
    env.store()
        .verify_portal_login(&addr("bob@b.example"), PASSWORD)
        .unwrap();
    env.fails(
        &["portal-user", "add", "BOB@b.example", "--generate"],
        b"",
        1,
        "hisp: portal user BOB@b.example already exists",
    );
}

#[test]
fn portal_user_add_refuses_an_address_that_is_not_local_naming_it() {
    let env = Env::new();
    env.fails(
        &["portal-user", "add", "carol@b.example", "--generate"],
        b"",
        1,
        "hisp: address carol@b.example is not a local address (`hisp address list` shows \
         them, `hisp address add carol@b.example` adds it)",
    );
    let run = env.run_with(
        &[
            "portal-user",
            "add",
            "bob@b.example",
            "--generate",
            "--email",
            "bob@mail.example\nBcc: x@y.example",
        ],
        b"",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid e-mail address"),
        "{}",
        run.stderr
    );
    assert_eq!(env.ok(&["portal-user", "list"]), "");
    let run = env.run_with(&["portal-user", "add", "bob@b.example"], b"");
    assert_eq!(run.code, 2, "a password source is required: {}", run.stderr);
}

#[test]
fn portal_user_passwd_replaces_the_password_and_disable_stops_logins() {
    let env = Env::new();
    env.run_with(
        &["portal-user", "add", "bob@b.example", "--password-stdin"],
        format!("{PASSWORD}\n").as_bytes(),
    )
    .ok();
    let out = env.ok(&["portal-user", "passwd", "bob@b.example", "--generate"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("changed the password of portal user Bob@b.example")
    );
    let new = generated(lines.next().unwrap());
    let store = env.store();
    let bob = addr("bob@b.example");
    assert!(store
        .verify_portal_login(&bob, PASSWORD)
        .unwrap_err()
        .is_bad_credentials());
    store.verify_portal_login(&bob, &new).unwrap();
    env.fails(
        &[
            "portal-user",
            "passwd",
            "carol@b.example",
            "--password-stdin",
        ],
        format!("{PASSWORD}\n").as_bytes(),
        1,
        "hisp: portal user carol@b.example not found",
    );

    assert_eq!(
        env.ok(&["portal-user", "disable", "BOB@b.example"]),
        "disabled portal user Bob@b.example\n"
    );
    match store.verify_portal_login(&bob, &new) {
        Err(StoreError::Disabled { .. }) => {}
        other => panic!("{other:?}"),
    }
    let list = env.json(&["portal-user", "list", "--json"]);
    assert_eq!(list[0]["disabled"], true);
    assert!(list[0]["disabled_at"].is_string());
    assert!(env.ok(&["portal-user", "list"]).contains("disabled"));
    env.fails(
        &["portal-user", "disable", "carol@b.example"],
        b"",
        1,
        "hisp: portal user carol@b.example not found",
    );

    // Every change, and each login tried above, is in the audit trail.
    let kinds: Vec<String> = env
        .json(&["audit", "export", "--json", "--address", "bob@b.example"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "portal-user-added",
            "portal-password-changed",
            "login-failed",
            "login",
            "portal-user-disabled",
            "login-failed"
        ]
    );
}

/// `sqlite3 FILE SQL`, which must succeed.
fn sqlite3(db: &std::path::Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn audit_verify_passes_after_real_mail_and_names_the_row_changed_with_sqlite3() {
    let (a, b) = two_sites(peers);
    let mut serve_a = Serve::start(&a, "a");
    let mut serve_b = Serve::start(&b, "b");
    let out = Swaks::to(a.submission, "pat@a.example", "doc@b.example")
        .auth("portal-a")
        .args(["--header", "Message-Id: <audit-1@a.example>"])
        .args(["--header", "Subject: audited"])
        .run();
    assert!(out.queued(), "{}\n{}", out.text, serve_a.log());
    wait_for_inbox(&b, "doc@b.example", 1, Duration::from_secs(60), &[&serve_b]);
    // Until A has B's MDNs, A's tracking still moves.
    eventually(
        Duration::from_secs(60),
        || {
            let run = a.run(&["message", "status", "<audit-1@a.example>", "--json"], b"");
            let json: Value = serde_json::from_slice(&run.ok().stdout).ok()?;
            (json[0]["recipients"][0]["state"] == "delivered").then_some(())
        },
        || format!("not delivered:\n{}\n{}", serve_a.log(), serve_b.log()),
    );
    serve_a.terminate();
    serve_b.terminate();

    for site in [&a, &b] {
        let run = site.run(&["audit", "verify"], b"").ok();
        let line = run.stdout_text();
        let n: u64 = line
            .strip_prefix("audit chain intact: ")
            .and_then(|r| r.strip_suffix(" events\n"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(n >= 4, "{line}");
    }

    // B's events about the doctor: the message was queued, delivered, and
    // answered with MDNs.
    let events = b
        .run(
            &["audit", "export", "--json", "--address", "doc@b.example"],
            b"",
        )
        .ok();
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    let delivered = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "delivered")
        .unwrap_or_else(|| panic!("{events:#}"));
    assert_eq!(delivered["address"], "doc@b.example");
    assert_eq!(delivered["message_id"], "<audit-1@a.example>");
    assert_eq!(delivered["hash"].as_str().unwrap().len(), 64);
    let row = delivered["id"].as_i64().unwrap();
    let text = b.run(&["audit", "export"], b"").ok().stdout_text();
    assert!(text.starts_with("ID  AT"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{row} ")))
        .unwrap_or_else(|| panic!("{text}"));
    for part in [
        "delivered",
        "doc@b.example",
        "<audit-1@a.example>",
        "folder inbox",
    ] {
        assert!(line.contains(part), "{line}");
    }

    // The table refuses the change; someone who goes around that is caught.
    let db = b.path("data/hisp.db");
    let refused = Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "UPDATE audit_events SET detail = 'nothing' WHERE id = {row}"
        ))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("append-only"));
    sqlite3(
        &db,
        &format!(
            "DROP TRIGGER audit_events_no_update; \
             UPDATE audit_events SET detail = 'nothing happened' WHERE id = {row};"
        ),
    );
    let run = b.run(&["audit", "verify"], b"");
    assert_eq!(run.code, 1, "{}", run.stdout_text());
    assert_eq!(run.stdout_text(), "");
    assert_eq!(
        run.stderr.lines().last().unwrap_or_default(),
        format!(
            "hisp: audit event {row} breaks the chain: its hash does not match its content \
             and the event before it: it, or the event before it, was changed or removed \
             after it was written ({} events before it are intact)",
            row - 1
        )
    );
    a.run(&["audit", "verify"], b"").ok();
}

#[test]
fn audit_export_since_takes_rfc_3339_and_leaves_out_older_events() {
    let env = Env::new();
    env.run_with(
        &["portal-user", "add", "bob@b.example", "--password-stdin"],
        format!("{PASSWORD}\n").as_bytes(),
    )
    .ok();
    let all = env.json(&["audit", "export", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["kind"], "portal-user-added");
    assert_eq!(all[0]["message"], Value::Null);
    let later = env.json(&[
        "audit",
        "export",
        "--json",
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(later, Value::Array(vec![]));
    let earlier = env.json(&[
        "audit",
        "export",
        "--json",
        "--since",
        "2000-01-01T00:00:00+01:00",
    ]);
    assert_eq!(earlier, all);
    let run = env.run_with(&["audit", "export", "--since", "yesterday"], b"");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("not an RFC 3339 time"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.ok(&["audit", "verify"]),
        "audit chain intact: 1 events\n"
    );
}

/// An audit detail can quote a peer (an SMTP reply, an MDN's disposition):
/// `hisp audit export` prints its control characters escaped, as the other
/// commands print mail, one line per event; `--json` keeps the exact text.
#[test]
fn audit_export_escapes_control_characters_a_peer_put_in_a_detail() {
    let env = Env::new();
    let detail = "relay refused: 550 no\x1b[2J\r\nINFO forged\u{202e}\x07";
    env.store()
        .audit(AuditKind::Failed, None, None, detail)
        .unwrap();
    let text = env.ok(&["audit", "export"]);
    assert!(
        !text.contains(['\x1b', '\x07', '\r', '\u{202e}']),
        "{text:?}"
    );
    assert!(
        text.contains(r"relay refused: 550 no\x1b[2J\r\nINFO forged\u{202e}\x07"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2, "header and one row: {text}");
    let json = env.json(&["audit", "export", "--json"]);
    assert_eq!(json[0]["detail"], detail, "JSON carries the exact text");
    assert_eq!(
        env.ok(&["audit", "verify"]),
        "audit chain intact: 1 events\n"
    );
}
