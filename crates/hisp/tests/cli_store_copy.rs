//! `hisp store copy` and `hisp store check`, run as the real binary: an
//! installation made with the real CLI (and mail filed through the store
//! library, as `hisp serve` files it) copied to a database of the test
//! server (`hisp-testpg`), the counts it prints (text and `--json`) held
//! to `sqlite3`'s, the check passing and then failing after a row is
//! changed in PostgreSQL, and bad arguments refused with a message.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hisp_store::{Folder, MessageDirection, SqliteStore, Store};
use hisp_testpg::TestDatabase;
use serde_json::Value;
use time::OffsetDateTime;

/// A temporary directory with a config whose data_dir is `data/`.
struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hisp.toml");
        std::fs::write(&config, format!("data_dir = \"data\"\n{extra}")).unwrap();
        Env { dir, config }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `hisp --config ... ARGS` with `stdin`, HISP_STORE_PASSWORD set to
    /// `password` (or removed).
    fn run(&self, args: &[&str], password: Option<&str>, stdin: &[u8]) -> Run {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut cmd = hisp_cmd(all);
        cmd.env_remove("HISP_STORE_PASSWORD");
        if let Some(password) = password {
            cmd.env("HISP_STORE_PASSWORD", password);
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args, None, b"").ok().stdout_text()
    }
}

/// An installation made as an administrator makes one: a CA, a domain and
/// two addresses with certificates, a submission account and a portal
/// account; then, through the store as `hisp serve` would, mail queued,
/// filed into a mailbox and one entry disregarded.
fn installation(env: &Env) {
    let ca = env.dir.path().join("ca");
    env.ok(&[
        "cert",
        "ca",
        "--cn",
        "Copy Test CA",
        "--out",
        ca.to_str().unwrap(),
    ]);
    let ca = ca.to_str().unwrap();
    env.ok(&["domain", "add", "a.example", "--cert-from", ca]);
    env.ok(&["address", "add", "alice@a.example", "--cert-from", ca]);
    env.ok(&["address", "add", "Bob@a.example", "--cert-from", ca]);
    env.run(
        &["user", "add", "relay", "--password-stdin"],
        None,
        b"a submission password\n",
    )
    .ok();
    env.run(
        &["portal-user", "add", "alice@a.example", "--password-stdin"],
        None,
        b"alice's portal password\n",
    )
    .ok();
    env.ok(&["anchor", "add", "a.example", &format!("{ca}/ca.pem")]);

    let store = SqliteStore::open_in(&env.data()).unwrap();
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let alice = hisp_store::DirectAddress::parse("alice@a.example").unwrap();
    let doc = hisp_store::DirectAddress::parse("doc@b.example").unwrap();
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&alice),
            std::slice::from_ref(&doc),
            b"From: alice@a.example\r\nTo: doc@b.example\r\nMessage-ID: <1@a.example>\r\n\r\nhi\r\n",
            at,
        )
        .unwrap();
    for (n, folder) in [(1, Folder::Inbox), (2, Folder::Inbox), (3, Folder::Sent)] {
        store
            .deliver_to_mailbox(
                &alice,
                format!("From: doc@b.example\r\nTo: alice@a.example\r\nMessage-ID: <{n}@b.example>\r\nSubject: n{n}\r\n\r\nbody {n}\r\n").as_bytes(),
                folder,
                at,
            )
            .unwrap();
    }
    let first = store.mailbox(&alice, Folder::Inbox).unwrap()[0].id;
    store.move_to(first, Folder::Disregarded).unwrap();
}

/// `sqlite3 FILE SQL`'s output.
fn sqlite3(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The tables `hisp store copy` printed, with their rows.
fn printed_counts(text: &str) -> Vec<(String, u64)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["table", "rows"], "{text}");
    lines
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            match cells.as_slice() {
                [table, rows] => Some((table.to_string(), rows.parse().unwrap())),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn store_copy_moves_a_cli_made_installation_and_check_exits_0_then_1_naming_a_changed_table() {
    let env = Env::new("");
    installation(&env);
    let db = TestDatabase::new();
    // Over TLS, as the URL asks.
    let to = format!("{}?sslmode=require", db.url());
    let from = format!("sqlite:{}", env.data().display());

    let out = env
        .run(
            &["store", "copy", "--from", &from, "--to", &to],
            Some(db.password()),
            b"",
        )
        .ok()
        .stdout_text();
    let counts = printed_counts(&out);
    let file = env.data().join("hisp.db");
    // Each printed count is what sqlite3 counts in the source.
    for (table, rows) in &counts {
        let n: u64 = sqlite3(&file, &format!("SELECT count(*) FROM {table}"))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(*rows, n, "{table}");
    }
    let named: Vec<&str> = counts.iter().map(|(t, _)| t.as_str()).collect();
    for table in [
        "domains",
        "addresses",
        "certificates",
        "anchors",
        "users",
        "user_grants",
        "portal_users",
        "messages",
        "queue",
        "recipients",
        "mailbox",
        "audit_events",
    ] {
        assert!(named.contains(&table), "{table} not printed: {out}");
    }
    assert_eq!(counts.iter().find(|(t, _)| t == "mailbox").unwrap().1, 3);
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert!(
        out.ends_with(&format!(
            "copied {total} rows in {} tables from {} to {to}\n",
            counts.len(),
            file.display()
        )),
        "{out}"
    );
    // The rows are in PostgreSQL, read by another client.
    let mailbox: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM mailbox WHERE address_key = 'alice@a.example'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(mailbox, 3);

    let check = env.run(
        &["store", "check", "--from", &from, "--to", &to],
        Some(db.password()),
        b"",
    );
    assert_eq!(check.code, 0, "{}{}", check.stderr, check.stdout_text());
    let text = check.stdout_text();
    assert!(text.starts_with("table"), "{text}");
    assert!(
        text.contains("audit chain of the destination: intact, "),
        "{text}"
    );
    assert!(text.contains("\nthe stores match: "), "{text}");
    assert!(!text.contains("DIFFERS"), "{text}");

    // A portal account's setting changed in PostgreSQL.
    db.admin()
        .execute("UPDATE portal_users SET notify = NOT notify", &[])
        .unwrap();
    let check = env.run(
        &["store", "check", "--from", &from, "--to", &to],
        Some(db.password()),
        b"",
    );
    assert_eq!(check.code, 1, "{}", check.stderr);
    let text = check.stdout_text();
    assert!(
        text.ends_with("the stores differ: portal_users\n"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("portal_users "))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["portal_users", "1", "1", "DIFFERS"]
    );
    let json: Value = serde_json::from_slice(
        &env.run(
            &["store", "check", "--from", &from, "--to", &to, "--json"],
            Some(db.password()),
            b"",
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(json["matches"], false);
    assert_eq!(json["differing"], serde_json::json!(["portal_users"]));
    assert_eq!(json["audit_chain"]["intact"], true);
}

#[test]
fn store_copy_json_prints_each_table_and_a_second_copy_is_refused_password_from_the_flag_and_the_config(
) {
    let env = Env::new("[store]\npassword_file = \"db-password\"\n");
    std::fs::write(env.dir.path().join("db-password"), "wrong\n").unwrap();
    installation(&env);
    let db = TestDatabase::new();
    std::fs::write(
        env.dir.path().join("flag-password"),
        format!("{}\n", db.password()),
    )
    .unwrap();
    let to = format!("{}?sslmode=disable", db.url());
    let from = format!("sqlite:{}", env.data().join("hisp.db").display());
    let flag = env.dir.path().join("flag-password");

    // The config's password file is wrong; the flag's wins.
    let run = env.run(&["store", "copy", "--from", &from, "--to", &to], None, b"");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    let json: Value = serde_json::from_slice(
        &env.run(
            &[
                "store",
                "copy",
                "--from",
                &from,
                "--to",
                &to,
                "--json",
                "--password-file",
                flag.to_str().unwrap(),
            ],
            None,
            b"",
        )
        .ok()
        .stdout,
    )
    .unwrap();
    assert_eq!(json["from"], env.data().join("hisp.db").to_str().unwrap());
    assert_eq!(json["to"], to.as_str());
    assert_eq!(json["source_schema"], hisp_store::SCHEMA_VERSION);
    assert_eq!(
        json["destination_schema"],
        hisp_store::POSTGRES_SCHEMA_VERSION
    );
    let tables = json["tables"].as_array().unwrap();
    assert_eq!(tables[0]["table"], "domains");
    assert_eq!(tables[0]["rows"], 1);
    let sum: u64 = tables.iter().map(|t| t["rows"].as_u64().unwrap()).sum();
    assert_eq!(json["rows"], sum);
    let addresses = tables.iter().find(|t| t["table"] == "addresses").unwrap();
    assert_eq!(addresses["rows"], 2);

    // The right password in the config's file now: check reads it.
    std::fs::write(
        env.dir.path().join("db-password"),
        format!("{}\n", db.password()),
    )
    .unwrap();
    let json: Value = serde_json::from_slice(
        &env.run(
            &["store", "check", "--from", &from, "--to", &to, "--json"],
            None,
            b"",
        )
        .ok()
        .stdout,
    )
    .unwrap();
    assert_eq!(json["matches"], true);
    assert_eq!(json["differing"], serde_json::json!([]));
    let first = &json["tables"][0];
    assert_eq!(first["table"], "domains");
    assert_eq!(first["source_rows"], 1);
    assert_eq!(first["destination_rows"], 1);
    assert_eq!(first["source_hash"], first["destination_hash"]);
    assert_eq!(first["source_hash"].as_str().unwrap().len(), 64);

    // Into a used database: refused, nothing changed.
    let before: i64 = db
        .admin()
        .query_one("SELECT count(*) FROM audit_events", &[])
        .unwrap()
        .get(0);
    let run = env.run(&["store", "copy", "--from", &from, "--to", &to], None, b"");
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains(&format!(
            "the destination {to} is not empty: table domains has 1 rows; hisp store copy \
             writes only into an empty database"
        )),
        "{}",
        run.stderr
    );
    let after: i64 = db
        .admin()
        .query_one("SELECT count(*) FROM audit_events", &[])
        .unwrap()
        .get(0);
    assert_eq!(after, before);
}

#[test]
fn store_copy_and_check_refuse_bad_arguments_with_a_message_and_no_panic() {
    let env = Env::new("");
    env.ok(&["domain", "add", "a.example"]);
    let file = env.data().join("hisp.db");
    let from = format!("sqlite:{}", file.display());
    let db = TestDatabase::new();
    let to = format!("{}?sslmode=disable", db.url());
    // A port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = format!("postgres://hisp@127.0.0.1:{port}/hisp?sslmode=disable");
    let missing = env.dir.path().join("no-such.db");
    let missing_from = format!("sqlite:{}", missing.display());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--from", file.to_str().unwrap(), "--to", &to],
            format!(
                "hisp: --from must name the SQLite store as sqlite:PATH (a database file or a \
                 data directory), not '{}'",
                file.display()
            ),
        ),
        (
            vec!["--from", &from, "--to", "mysql://hisp@db/hisp"],
            "hisp: --to must name the PostgreSQL database as postgres://USER@HOST:PORT/DB, not \
             'mysql://hisp@db/hisp'"
                .to_string(),
        ),
        (
            vec!["--from", &from, "--to", "postgres://hisp:secret@db/hisp"],
            "hisp: --to: invalid PostgreSQL URL 'postgres://hisp:***@db/hisp': it holds a \
             password, which must not be written in the URL; give the password in \
             HISP_STORE_PASSWORD, --password-file or [store] password_file"
                .to_string(),
        ),
        (
            vec!["--from", &missing_from, "--to", &to],
            format!(
                "no SQLite store at {}: the file does not exist",
                missing.display()
            ),
        ),
        (
            vec!["--from", &from, "--to", &unreachable],
            format!("{unreachable}: database error while connecting to the database"),
        ),
    ];
    for command in ["copy", "check"] {
        for (args, message) in &cases {
            let mut all = vec!["store", command];
            all.extend_from_slice(args);
            let run = env.run(&all, Some(db.password()), b"");
            assert_eq!(run.code, 1, "{all:?}: {}", run.stderr);
            assert!(run.stdout.is_empty(), "{all:?}");
            assert!(run.stderr.starts_with("hisp: "), "{all:?}: {}", run.stderr);
            assert!(
                run.stderr.contains(message.as_str()),
                "{all:?}: {}",
                run.stderr
            );
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }
    }
    assert!(!missing.exists());
    // Nothing reached the test database.
    let tables: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    // A check of a store never copied: the destination is not migrated.
    let run = env.run(
        &["store", "check", "--from", &from, "--to", &to],
        Some(db.password()),
        b"",
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "the destination {to} has schema version 0, but this hisp compares version {}: copy \
             into it with hisp store copy",
            hisp_store::POSTGRES_SCHEMA_VERSION
        )),
        "{}",
        run.stderr
    );
}

/// A data directory holding one address with `message` queued outbound
/// and filed in its Inbox.
fn store_with(dir: &Path, message: &[u8]) {
    let store = SqliteStore::open_in(dir).unwrap();
    store
        .add_domain(&hisp_store::Domain::parse("a.example").unwrap(), &[])
        .unwrap();
    let alice = hisp_store::DirectAddress::parse("alice@a.example").unwrap();
    store.add_address(&alice, &[]).unwrap();
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    store
        .enqueue(
            MessageDirection::Outbound,
            Some(&alice),
            &[hisp_store::DirectAddress::parse("doc@b.example").unwrap()],
            message,
            at,
        )
        .unwrap();
    store
        .deliver_to_mailbox(&alice, message, Folder::Inbox, at)
        .unwrap();
}

/// A message of `len` bytes: 76-column lines, each piece of 64 KiB unlike
/// the others (its number in it).
fn message_of(len: usize) -> Vec<u8> {
    let mut m =
        b"From: alice@a.example\r\nTo: doc@b.example\r\nMessage-ID: <big@a.example>\r\n\r\n"
            .to_vec();
    let line = [b'x'; 74];
    let mut n = 0u64;
    while m.len() < len {
        if m.len() % 65_536 < 76 {
            n += 1;
            m.extend_from_slice(format!("{n:016x}\r\n").as_bytes());
        }
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    m.truncate(len);
    m
}

/// Runs `hisp store copy` under GNU time (Debian's `time`) and returns its
/// peak resident set in bytes. Measured by a small parent: a child forked
/// from the test process itself would report the test process's own peak
/// (Linux keeps the larger resident set across `execve`).
fn copy_peak_rss(data: &Path, db: &TestDatabase) -> u64 {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is missing: install Debian's time package (tests/run.sh does)"
    );
    let from = format!("sqlite:{}", data.display());
    let to = format!("{}?sslmode=disable", db.url());
    let out = Command::new(time)
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_hisp"))
        .args(["store", "copy", "--from", &from, "--to", &to])
        .env_remove("HISP_CONFIG")
        .env("HISP_STORE_PASSWORD", db.password())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // time's line (KiB) is the last line of stderr.
    let kib: u64 = stderr.lines().last().unwrap().trim().parse().unwrap();
    kib * 1024
}

#[test]
fn store_copy_moves_25_mib_messages_without_holding_one_whole_in_memory() {
    const BIG: usize = 25 * 1024 * 1024;
    let small = tempfile::tempdir().unwrap();
    store_with(small.path(), &message_of(4 * 1024));
    let big = tempfile::tempdir().unwrap();
    store_with(big.path(), &message_of(BIG));

    let (small_db, big_db) = (TestDatabase::new(), TestDatabase::new());
    let baseline = copy_peak_rss(small.path(), &small_db);
    let peak = copy_peak_rss(big.path(), &big_db);
    // Two 25 MiB values (the queued message and its mailbox copy) went
    // through; holding even one of them whole would add 25 MiB.
    eprintln!("peak resident set: {peak} bytes for 2 x 25 MiB, {baseline} for 4 KiB");
    assert!(
        peak < baseline + 12 * 1024 * 1024,
        "peak resident set {peak} bytes copying 2 x 25 MiB against {baseline} for 4 KiB"
    );
    let bodies: Vec<i32> = big_db
        .admin()
        .query(
            "SELECT octet_length(body) FROM messages UNION ALL SELECT octet_length(body) FROM mailbox",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(bodies, [BIG as i32, BIG as i32]);
    let check = hisp_cmd([
        "store",
        "check",
        "--from",
        &format!("sqlite:{}", big.path().display()),
        "--to",
        &format!("{}?sslmode=disable", big_db.url()),
    ])
    .env("HISP_STORE_PASSWORD", big_db.password())
    .output()
    .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
