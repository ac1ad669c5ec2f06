//! `hisp message status` and `hisp message list`, run as the real binary
//! against a store in a temporary data directory. The local domain and the
//! sender's address are added through the CLI; messages are queued and their
//! recipients moved through the tracking states of the Implementation Guide
//! for Delivery Notification in Direct 1.0 through the store library, as the
//! gateway does, at chosen times.

mod common;

use std::path::PathBuf;

use common::*;
use hisp_store::{
    DirectAddress, Expectation, MessageDirection, MessageId, RecipientId, SqliteStore, Store,
    TrackingState,
};
use serde_json::Value;
use time::OffsetDateTime;

/// A temporary directory with a config whose data_dir is `data/`.
struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    /// A data directory with the local domain `a.example` and its address
    /// `alice@a.example`, added through the CLI.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hisp.toml");
        std::fs::write(&config, "data_dir = \"data\"\n").unwrap();
        let env = Env { dir, config };
        env.ok(&["domain", "add", "a.example"]);
        env.ok(&["address", "add", "alice@a.example"]);
        env
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open_in(&self.dir.path().join("data")).unwrap()
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config)];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, b"")
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args).ok().stdout_text()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Queues an outbound message from alice (or from `<>`) at `T0 + secs`.
    fn enqueue(
        &self,
        from: Option<&str>,
        id: &str,
        subject: &str,
        recipients: &[&str],
        secs: i64,
        expect: Expectation,
    ) {
        let recipients: Vec<DirectAddress> = recipients.iter().map(|r| addr(r)).collect();
        self.store()
            .enqueue_expecting(
                MessageDirection::Outbound,
                from.map(addr).as_ref(),
                &recipients,
                &message(id, subject),
                at(secs),
                expect,
            )
            .unwrap();
    }

    /// The row id of `recipient` of the newest message with Message-ID `id`.
    fn recipient(&self, id: &str, recipient: &str) -> RecipientId {
        let messages = self.store().tracked_message(&mid(id)).unwrap();
        messages[0]
            .recipients
            .iter()
            .find(|r| r.address == addr(recipient))
            .unwrap()
            .id
    }

    /// Moves a recipient through `steps`, each at `T0 + secs`.
    fn track(&self, id: &str, recipient: &str, steps: &[(TrackingState, i64, Option<&str>)]) {
        let rid = self.recipient(id, recipient);
        let store = self.store();
        for (state, secs, reason) in steps {
            store.track(rid, *state, at(*secs), *reason).unwrap();
        }
    }
}

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
}

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

fn mid(text: &str) -> MessageId {
    MessageId::parse(text).unwrap()
}

fn message(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: alice@a.example\r\n\
         To: doc@b.example\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{id}>\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
         \r\n\
         hello\r\n"
    )
    .into_bytes()
}

const MAIL: Expectation = Expectation::Mail {
    final_delivery: false,
};
const MAIL_FINAL: Expectation = Expectation::Mail {
    final_delivery: true,
};

const NO_SUCH_USER: &str = "550 5.1.1 <carol@c.example>: no such user";

/// `lab-1@a.example` to doc (processed) and carol (failed, sender notified).
fn one_processed_one_failed(env: &Env) {
    env.enqueue(
        Some("alice@a.example"),
        "lab-1@a.example",
        "lab results",
        &["doc@b.example", "carol@c.example"],
        0,
        MAIL_FINAL,
    );
    env.track(
        "lab-1@a.example",
        "doc@b.example",
        &[
            (TrackingState::Relayed, 10, None),
            (TrackingState::Processed, 60, None),
        ],
    );
    env.track(
        "lab-1@a.example",
        "carol@c.example",
        &[(TrackingState::Failed, 10, Some(NO_SUCH_USER))],
    );
    let carol = env.recipient("lab-1@a.example", "carol@c.example");
    let notice = env
        .store()
        .notify_sender(
            &addr("alice@a.example"),
            &message("dsn-1@a.example", "Delivery failed"),
            &[carol],
            at(20),
        )
        .unwrap();
    assert!(notice.is_some());
}

fn sorted_keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// The Message-IDs of a JSON list, in order.
fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect()
}

#[test]
fn status_shows_each_recipient_state_step_times_and_failure_reason() {
    let env = Env::new();
    one_processed_one_failed(&env);
    let expected = "\
Message-ID:      <lab-1@a.example>
From:            alice@a.example
Subject:         lab results
Queued at:       2024-01-01T00:00:00Z
Final delivery:  yes
Kind:            mail

  doc@b.example: processed
    queued      2024-01-01T00:00:00Z
    relayed     2024-01-01T00:00:10Z
    processed   2024-01-01T00:01:00Z

  carol@c.example: failed
    queued      2024-01-01T00:00:00Z
    failed      2024-01-01T00:00:10Z
    reason: 550 5.1.1 <carol@c.example>: no such user
    sender notified at 2024-01-01T00:00:20Z
";
    assert_eq!(
        env.ok(&["message", "status", "<lab-1@a.example>"]),
        expected
    );
    // The angle brackets are optional.
    assert_eq!(env.ok(&["message", "status", "lab-1@a.example"]), expected);
}

#[test]
fn status_json_has_the_documented_keys_with_steps_only_for_states_reached() {
    let env = Env::new();
    one_processed_one_failed(&env);
    let list = env.json(&["message", "status", "lab-1@a.example", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let m = &list[0];
    assert_eq!(
        sorted_keys(m),
        [
            "final_delivery",
            "from",
            "kind",
            "message_id",
            "received_at",
            "recipients",
            "subject"
        ]
    );
    assert_eq!(m["message_id"], "<lab-1@a.example>");
    assert_eq!(m["from"], "alice@a.example");
    assert_eq!(m["subject"], "lab results");
    assert_eq!(m["received_at"], "2024-01-01T00:00:00Z");
    assert_eq!(m["final_delivery"], true);
    assert_eq!(m["kind"], "mail");
    let doc = &m["recipients"][0];
    assert_eq!(
        sorted_keys(doc),
        ["address", "notified_at", "reason", "state", "steps"]
    );
    assert_eq!(doc["address"], "doc@b.example");
    assert_eq!(doc["state"], "processed");
    assert_eq!(doc["reason"], Value::Null);
    assert_eq!(doc["notified_at"], Value::Null);
    assert_eq!(
        doc["steps"],
        serde_json::json!({
            "queued": "2024-01-01T00:00:00Z",
            "relayed": "2024-01-01T00:00:10Z",
            "processed": "2024-01-01T00:01:00Z",
        })
    );
    let carol = &m["recipients"][1];
    assert_eq!(carol["address"], "carol@c.example");
    assert_eq!(carol["state"], "failed");
    assert_eq!(carol["reason"], NO_SUCH_USER);
    assert_eq!(carol["notified_at"], "2024-01-01T00:00:20Z");
    assert_eq!(
        carol["steps"],
        serde_json::json!({
            "queued": "2024-01-01T00:00:00Z",
            "failed": "2024-01-01T00:00:10Z",
        })
    );
}

#[test]
fn status_shows_every_outbound_message_sharing_a_message_id_newest_first() {
    let env = Env::new();
    env.enqueue(
        Some("alice@a.example"),
        "same@a.example",
        "first",
        &["doc@b.example"],
        0,
        MAIL,
    );
    env.enqueue(
        Some("alice@a.example"),
        "same@a.example",
        "second",
        &["eve@e.example"],
        30,
        MAIL,
    );
    let list = env.json(&["message", "status", "same@a.example", "--json"]);
    let subjects: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["second", "first"]);
    assert_eq!(list[0]["final_delivery"], false);
    assert_eq!(list[0]["recipients"][0]["address"], "eve@e.example");
    let text = env.ok(&["message", "status", "same@a.example"]);
    assert_eq!(text.matches("Message-ID:      <same@a.example>").count(), 2);
    assert!(
        text.contains("Final delivery:  no\nKind:            mail\n\n  eve@e.example: queued\n"),
        "{text}"
    );
    // Messages are separated by one blank line.
    assert!(
        text.contains("2024-01-01T00:00:30Z\n\nMessage-ID:      <same@a.example>\n"),
        "{text}"
    );
}

#[test]
fn status_of_an_unknown_message_id_is_not_found_with_exit_status_1() {
    let env = Env::new();
    one_processed_one_failed(&env);
    let run = env.run(&["message", "status", "nope@a.example"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "hisp: no outbound message with Message-ID <nope@a.example>"
    );
    assert!(run.stdout.is_empty());
    // Inbound mail is not tracked for its sender.
    env.store()
        .enqueue(
            MessageDirection::Inbound,
            Some(&addr("doc@b.example")),
            &[addr("alice@a.example")],
            &message("in-1@b.example", "reply"),
            at(5),
        )
        .unwrap();
    let run = env.run(&["message", "status", "<in-1@b.example>", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "hisp: no outbound message with Message-ID <in-1@b.example>"
    );
}

#[test]
fn status_refuses_a_malformed_message_id_as_bad_usage() {
    let env = Env::new();
    for bad in ["a b@c.example", "<>", "<a<b@c.example>"] {
        let run = env.run(&["message", "status", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "error: invalid value '{bad}' for '<MESSAGE-ID>': invalid Message-ID"
            )),
            "{bad}: {}",
            run.stderr
        );
    }
}

/// Three mails and one notification:
/// - `old@a.example` (T0): doc delivered;
/// - `mid@a.example` (T0+100): carol failed;
/// - `new@a.example` (T0+200): doc queued, eve relayed;
/// - `mdn-1@a.example` (T0+300): an MDN hisp sent, relayed.
fn four_messages(env: &Env) {
    env.enqueue(
        Some("alice@a.example"),
        "old@a.example",
        "old one",
        &["doc@b.example"],
        0,
        MAIL,
    );
    env.track(
        "old@a.example",
        "doc@b.example",
        &[
            (TrackingState::Relayed, 1, None),
            (TrackingState::Processed, 2, None),
            (TrackingState::Delivered, 2, None),
        ],
    );
    env.enqueue(
        Some("alice@a.example"),
        "mid@a.example",
        "middle one",
        &["carol@c.example"],
        100,
        MAIL_FINAL,
    );
    env.track(
        "mid@a.example",
        "carol@c.example",
        &[(TrackingState::Failed, 101, Some(NO_SUCH_USER))],
    );
    env.enqueue(
        Some("alice@a.example"),
        "new@a.example",
        "new one",
        &["doc@b.example", "eve@e.example"],
        200,
        MAIL,
    );
    env.track(
        "new@a.example",
        "eve@e.example",
        &[(TrackingState::Relayed, 201, None)],
    );
    env.enqueue(
        None,
        "mdn-1@a.example",
        "Processed: lab results",
        &["bob@b.example"],
        300,
        Expectation::Notification,
    );
    env.track(
        "mdn-1@a.example",
        "bob@b.example",
        &[(TrackingState::Relayed, 301, None)],
    );
}

#[test]
fn list_shows_mail_newest_first_one_line_each_without_notifications() {
    let env = Env::new();
    assert_eq!(env.ok(&["message", "list"]), "");
    four_messages(&env);
    assert_eq!(
        env.ok(&["message", "list"]),
        "\
RECEIVED              MESSAGE-ID       FROM             KIND  SUBJECT     RECIPIENTS
2024-01-01T00:03:20Z  <new@a.example>  alice@a.example  mail  new one     doc@b.example=queued,eve@e.example=relayed
2024-01-01T00:01:40Z  <mid@a.example>  alice@a.example  mail  middle one  carol@c.example=failed
2024-01-01T00:00:00Z  <old@a.example>  alice@a.example  mail  old one     doc@b.example=delivered
"
    );
    let list = env.json(&["message", "list", "--json"]);
    assert_eq!(
        ids(&list),
        ["<new@a.example>", "<mid@a.example>", "<old@a.example>"]
    );
    // The same shape as `message status --json`.
    let status = env.json(&["message", "status", "mid@a.example", "--json"]);
    assert_eq!(list[1], status[0]);
    assert_eq!(list[1]["final_delivery"], true);
}

#[test]
fn list_with_notifications_includes_the_mdns_and_dsns_hisp_sent() {
    let env = Env::new();
    four_messages(&env);
    let list = env.json(&["message", "list", "--notifications", "--json"]);
    assert_eq!(
        ids(&list),
        [
            "<mdn-1@a.example>",
            "<new@a.example>",
            "<mid@a.example>",
            "<old@a.example>"
        ]
    );
    let mdn = &list[0];
    assert_eq!(mdn["kind"], "notification");
    assert_eq!(mdn["from"], Value::Null);
    assert_eq!(mdn["final_delivery"], false);
    let text = env.ok(&["message", "list", "--notifications"]);
    let first = text.lines().nth(1).unwrap();
    assert_eq!(
        first,
        "2024-01-01T00:05:00Z  <mdn-1@a.example>  <>               notification  \
         Processed: lab results  bob@b.example=relayed"
    );
    // A notification is shown by `status` too.
    let status = env.ok(&["message", "status", "mdn-1@a.example"]);
    assert!(
        status.contains("From:            <>\n")
            && status.contains("Kind:            notification\n"),
        "{status}"
    );
}

#[test]
fn list_state_filters_by_any_recipient_in_that_state() {
    let env = Env::new();
    four_messages(&env);
    let failed = env.json(&["message", "list", "--state", "failed", "--json"]);
    assert_eq!(ids(&failed), ["<mid@a.example>"]);
    assert_eq!(failed[0]["recipients"][0]["reason"], NO_SUCH_USER);
    // A message is listed with all its recipients when any one matches.
    let queued = env.json(&["message", "list", "--state", "queued", "--json"]);
    assert_eq!(ids(&queued), ["<new@a.example>"]);
    assert_eq!(queued[0]["recipients"].as_array().unwrap().len(), 2);
    let delivered = env.json(&["message", "list", "--state", "delivered", "--json"]);
    assert_eq!(ids(&delivered), ["<old@a.example>"]);
    assert_eq!(
        env.ok(&["message", "list", "--state", "dispatched"]),
        "",
        "no recipient is dispatched"
    );
    let relayed = env.json(&[
        "message",
        "list",
        "--state",
        "relayed",
        "--notifications",
        "--json",
    ]);
    assert_eq!(ids(&relayed), ["<mdn-1@a.example>", "<new@a.example>"]);
}

#[test]
fn list_state_pending_is_any_recipient_not_yet_delivered_or_failed() {
    let env = Env::new();
    four_messages(&env);
    let pending = env.json(&["message", "list", "--state", "pending", "--json"]);
    assert_eq!(ids(&pending), ["<new@a.example>"]);
    let pending = env.json(&[
        "message",
        "list",
        "--state",
        "pending",
        "--notifications",
        "--json",
    ]);
    assert_eq!(ids(&pending), ["<mdn-1@a.example>", "<new@a.example>"]);
}

#[test]
fn list_refuses_an_unknown_state_naming_the_valid_ones() {
    let env = Env::new();
    let run = env.run(&["message", "list", "--state", "bogus"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: invalid value 'bogus' for '--state <STATE>'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "[possible values: queued, relayed, processed, dispatched, delivered, failed, pending]"
        ),
        "{}",
        run.stderr
    );
}
