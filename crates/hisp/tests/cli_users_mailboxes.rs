//! `hisp user`, `hisp mailbox`, `hisp queue` and `hisp quarantine`, run as
//! the real binary against a store in a temporary data directory. Mail is
//! put in the store through the library, as the gateway will.

mod common;

use std::path::PathBuf;

use common::*;
use hisp_store::{
    DirectAddress, Domain, Envelope, Folder, MessageDirection, QuarantineReason, SqliteStore,
    Store, UserName,
};
use serde_json::Value;
use time::OffsetDateTime;

/// A temporary directory with a config whose data_dir is `data/`.
struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hisp.toml");
        std::fs::write(&config, "data_dir = \"data\"\n").unwrap();
        Env { dir, config }
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

    /// A local domain `b.example` with the address `bob@b.example`.
    fn with_bob(&self) {
        let store = self.store();
        store
            .add_domain(&Domain::parse("b.example").unwrap(), &[])
            .unwrap();
        store.add_address(&addr("bob@b.example"), &[]).unwrap();
    }
}

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

fn user(name: &str) -> UserName {
    UserName::parse(name).unwrap()
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn user_add_reads_the_password_from_stdin_and_stores_only_a_hash() {
    let env = Env::new();
    let run = env
        .run_with(
            &["user", "add", "portal", "--password-stdin"],
            format!("{PASSWORD}\n").as_bytes(),
        )
        .ok();
    assert_eq!(run.stdout_text(), "added user portal\n");
    let store = env.store();
    let account = store.verify_password(&user("portal"), PASSWORD).unwrap();
    assert!(account.request_final_delivery);
    let db = std::fs::read(env.dir.path().join("data/hisp.db")).unwrap();
    let wal = std::fs::read(env.dir.path().join("data/hisp.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()));
    }
}

#[test]
fn user_add_generate_prints_a_working_password_once() {
    let env = Env::new();
    let out = env.ok(&["user", "add", "ehr", "--generate", "--no-final-delivery"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("added user ehr"));
    let line = lines.next().unwrap();
    let password = line
        .strip_prefix("password: ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert_eq!(password.len(), 24);
    let account = env.store().verify_password(&user("ehr"), password).unwrap();
    assert!(!account.request_final_delivery);
    assert!(!env.ok(&["user", "list"]).contains(password));
}

#[test]
fn user_add_never_takes_a_password_from_the_command_line() {
    let env = Env::new();
    let run = env.run_with(&["user", "add", "portal"], b"");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--password-stdin") && run.stderr.contains("--generate"),
        "{}",
        run.stderr
    );
    let run = env.run_with(&["user", "add", "portal", PASSWORD], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn user_add_refuses_short_missing_and_duplicate() {
    let env = Env::new();
    env.fails(
        &["user", "add", "portal", "--password-stdin"],
        b"short\n",
        1,
        "hisp: the password must be at least 12 characters long",
    );
    env.fails(
        &["user", "add", "portal", "--password-stdin"],
        b"",
        1,
        "hisp: no password on stdin (give it as the first line)",
    );
    env.run_with(
        &["user", "add", "portal", "--password-stdin"],
        PASSWORD.as_bytes(),
    )
    .ok();
    env.fails(
        &["user", "add", "portal", "--password-stdin"],
        PASSWORD.as_bytes(),
        1,
        "hisp: user portal already exists",
    );
}

#[test]
fn user_grant_and_list_show_what_an_account_may_send_as() {
    let env = Env::new();
    env.with_bob();
    env.run_with(&["user", "add", "portal", "--generate"], b"")
        .ok();
    env.run_with(&["user", "add", "ehr", "--generate"], b"")
        .ok();
    assert_eq!(
        env.ok(&["user", "grant", "portal", "Bob@b.example"]),
        "user portal may send as Bob@b.example\n"
    );
    assert_eq!(
        env.ok(&["user", "grant", "portal", "@B.example"]),
        "user portal may send as @b.example\n"
    );
    env.fails(
        &["user", "grant", "portal", "carol@b.example"],
        b"",
        1,
        "hisp: address carol@b.example not found",
    );
    env.fails(
        &["user", "grant", "nobody", "@b.example"],
        b"",
        1,
        "hisp: user nobody not found",
    );
    assert_eq!(
        env.ok(&["user", "list"]),
        "USER    FINAL-DELIVERY  MAY-SEND-AS\n\
         ehr     yes             -\n\
         portal  yes             bob@b.example,@b.example\n"
    );
    let list = env.json(&["user", "list", "--json"]);
    let portal = &list[1];
    assert_eq!(portal["name"], "portal");
    assert_eq!(portal["request_final_delivery"], true);
    assert_eq!(
        portal["may_send_as"],
        serde_json::json!(["bob@b.example", "@b.example"])
    );
    let mut keys: Vec<&str> = portal
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["added_at", "may_send_as", "name", "request_final_delivery"]
    );
}

#[test]
fn user_set_final_delivery_changes_what_the_account_requests() {
    let env = Env::new();
    env.run_with(&["user", "add", "portal", "--generate"], b"")
        .ok();
    assert_eq!(
        env.ok(&["user", "set", "portal", "--final-delivery", "off"]),
        "USER    FINAL-DELIVERY  MAY-SEND-AS\n\
         portal  no              -\n"
    );
    assert!(
        !env.store()
            .user(&user("portal"))
            .unwrap()
            .request_final_delivery
    );
    let list = env.json(&["user", "list", "--json"]);
    assert_eq!(list[0]["name"], "portal");
    assert_eq!(list[0]["request_final_delivery"], false);
    let shown = env.json(&["user", "set", "portal", "--final-delivery", "on", "--json"]);
    assert_eq!(shown["name"], "portal");
    assert_eq!(shown["request_final_delivery"], true);
    assert_eq!(shown, env.json(&["user", "list", "--json"])[0]);
    env.fails(
        &["user", "set", "nobody", "--final-delivery", "off"],
        b"",
        1,
        "hisp: user nobody not found",
    );
    let run = env.run_with(&["user", "set", "portal", "--final-delivery", "maybe"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("[possible values: on, off]"),
        "{}",
        run.stderr
    );
    let run = env.run_with(&["user", "set", "portal"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--final-delivery"), "{}", run.stderr);
    assert!(
        env.store()
            .user(&user("portal"))
            .unwrap()
            .request_final_delivery
    );
}

const MESSAGE: &[u8] = b"From: Alice <alice@a.example>\r\n\
To: bob@b.example\r\n\
Subject: lab results\r\n\
Message-ID: <1@a.example>\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
\r\n\
hello bob\r\n";

#[test]
fn mailbox_list_and_show() {
    let env = Env::new();
    env.with_bob();
    let store = env.store();
    let id = store
        .deliver_to_mailbox(
            &addr("bob@b.example"),
            MESSAGE,
            Folder::Inbox,
            at(1_704_067_260),
        )
        .unwrap();
    let other = store
        .deliver_to_mailbox(
            &addr("bob@b.example"),
            MESSAGE,
            Folder::Inbox,
            at(1_704_067_320),
        )
        .unwrap();
    store.mark_read(other).unwrap();
    store.move_to(other, Folder::Disregarded).unwrap();
    assert_eq!(
        env.ok(&["mailbox", "list", "bob@b.example"]),
        format!(
            "ID  NEW  DATE                  FROM                     SIZE  SUBJECT\n\
             {id}   *    2024-01-01T00:00:00Z  Alice <alice@a.example>  {}   lab results\n",
            MESSAGE.len()
        )
    );
    let list = env.json(&[
        "mailbox",
        "list",
        "BOB@b.example",
        "--folder",
        "disregarded",
        "--json",
    ]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let e = &list[0];
    assert_eq!(e["id"], other.0);
    assert_eq!(e["folder"], "disregarded");
    assert_eq!(e["unread"], false);
    assert_eq!(e["message_id"], "<1@a.example>");
    assert_eq!(e["subject"], "lab results");
    assert_eq!(e["date"], "2024-01-01T00:00:00Z");
    assert_eq!(e["received_at"], "2024-01-01T00:02:00Z");
    assert_eq!(
        env.ok(&["mailbox", "list", "bob@b.example", "--folder", "sent"]),
        "Sent of bob@b.example is empty\n"
    );
    let run = env
        .run_with(&["mailbox", "show", &id.to_string()], b"")
        .ok();
    assert_eq!(run.stdout, MESSAGE);
    assert!(
        store.read_message(id).unwrap().entry.unread,
        "showing is not reading"
    );
    env.fails(
        &["mailbox", "show", "999"],
        b"",
        1,
        "hisp: mailbox message 999 not found",
    );
}

#[test]
fn queue_list_shows_each_recipient_tracking_state() {
    let env = Env::new();
    let store = env.store();
    assert_eq!(env.ok(&["queue", "list"]), "");
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example"), addr("carol@b.example")],
            MESSAGE,
            at(1_704_067_200),
        )
        .unwrap();
    assert_eq!(
        env.ok(&["queue", "list"]),
        "ID  DIRECTION  STATE    ATTEMPTS  MESSAGE-ID     FROM             RECIPIENT        TRACKING  REASON\n\
         1   outbound   pending  0         <1@a.example>  alice@a.example  bob@b.example    queued    \n\
         1   outbound   pending  0         <1@a.example>  alice@a.example  carol@b.example  queued    \n"
    );
    let list = env.json(&["queue", "list", "--json"]);
    let e = &list[0];
    assert_eq!(e["direction"], "outbound");
    assert_eq!(e["state"], "pending");
    assert_eq!(e["from"], "alice@a.example");
    assert_eq!(e["next_attempt_at"], "2024-01-01T00:00:00Z");
    assert_eq!(e["leased_until"], Value::Null);
    assert_eq!(e["recipients"][1]["address"], "carol@b.example");
    assert_eq!(e["recipients"][1]["state"], "queued");
    assert_eq!(
        e["recipients"][1]["reached_at"]["queued"],
        "2024-01-01T00:00:00Z"
    );
    assert_eq!(env.ok(&["queue", "list", "--state", "failed"]), "");
}

#[test]
fn quarantine_list_and_show() {
    let env = Env::new();
    let store = env.store();
    let envelope = Envelope {
        from: Some(addr("alice@a.example")),
        recipients: vec![addr("bob@b.example")],
        received_at: at(1_704_067_200),
    };
    let id = store
        .quarantine(
            MESSAGE,
            QuarantineReason::Tampered,
            "the signature of CN=alice does not verify",
            &envelope,
        )
        .unwrap();
    let text = env.ok(&["quarantine", "list"]);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("ID  QUARANTINED           FROM             REASON    DETAIL")
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("1   "), "{row}");
    assert!(
        row.ends_with("alice@a.example  tampered  the signature of CN=alice does not verify"),
        "{row}"
    );
    let list = env.json(&["quarantine", "list", "--json"]);
    assert_eq!(list[0]["reason"], "tampered");
    assert_eq!(list[0]["recipients"], serde_json::json!(["bob@b.example"]));
    assert_eq!(list[0]["message_id"], "<1@a.example>");
    let run = env
        .run_with(&["quarantine", "show", &id.to_string()], b"")
        .ok();
    assert_eq!(run.stdout, MESSAGE);
    let shown = env.json(&["quarantine", "show", &id.to_string(), "--json"]);
    assert_eq!(shown["detail"], "the signature of CN=alice does not verify");
    let b64 = shown["message_base64"].as_str().unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        MESSAGE
    );
    env.fails(
        &["quarantine", "show", "7"],
        b"",
        1,
        "hisp: quarantined message 7 not found",
    );
}

/// An empty folder says so instead of printing nothing (issue 10, "A
/// newcomer's first hour"); `--json` gives an empty array.
#[test]
fn mailbox_list_of_an_empty_folder_says_it_is_empty() {
    let env = Env::new();
    env.with_bob();
    assert_eq!(
        env.ok(&["mailbox", "list", "bob@b.example"]),
        "Inbox of bob@b.example is empty\n"
    );
    assert_eq!(
        env.json(&["mailbox", "list", "bob@b.example", "--json"]),
        serde_json::json!([])
    );
}

/// An address that is not local has no mailbox: an error naming it, exit 1,
/// rather than an empty listing that looks like no mail.
#[test]
fn mailbox_list_of_an_unknown_address_is_an_error_naming_it() {
    let env = Env::new();
    env.with_bob();
    for args in [
        &["mailbox", "list", "nobody@b.example"][..],
        &["mailbox", "list", "nobody@b.example", "--json"][..],
    ] {
        env.fails(
            args,
            b"",
            1,
            "hisp: nobody@b.example is not a local address: no mailbox \
             (`hisp address list` shows the local ones)",
        );
    }
}

/// `hisp mailbox show --json`: the entry as `mailbox list --json` gives it,
/// and the message as stored in base64.
#[test]
fn mailbox_show_json_gives_the_entry_and_the_message() {
    use base64::Engine;
    let env = Env::new();
    env.with_bob();
    let id = env
        .store()
        .deliver_to_mailbox(
            &addr("bob@b.example"),
            MESSAGE,
            Folder::Inbox,
            at(1_704_067_260),
        )
        .unwrap();
    let shown = env.json(&["mailbox", "show", &id.to_string(), "--json"]);
    let listed = env.json(&["mailbox", "list", "bob@b.example", "--json"]);
    let mut entry = shown.clone();
    let message = entry
        .as_object_mut()
        .unwrap()
        .remove("message_base64")
        .expect("message_base64");
    assert_eq!(entry, listed[0]);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(message.as_str().unwrap())
            .unwrap(),
        MESSAGE
    );
}
