//! `hisp store migrate`, run as the real binary: a database as an older hisp
//! left it (made with the `sqlite3` command line from that version's
//! migration files) is brought to the current schema keeping its data; a
//! current one is left as it is; one from a newer hisp is refused.
//! With `[store] url`, the same on a PostgreSQL database of the test server
//! (`hisp-testpg`), the password from `HISP_STORE_PASSWORD` or `[store]
//! password_file`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hisp_store::SCHEMA_VERSION;
use serde_json::Value;

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

    fn db(&self) -> PathBuf {
        self.dir.path().join("data").join("hisp.db")
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
}

/// `sqlite3 FILE` reading `sql` from stdin, which must succeed.
fn sqlite3(db: &Path, sql: &str) -> String {
    let mut child = Command::new("sqlite3")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The SQLite migration files of the store, `V<n>__<name>.sql`, by version.
fn migration_files() -> Vec<(i64, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hisp-store/migrations/sqlite");
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let version = name[1..name.find("__").unwrap()].parse().unwrap();
            (version, p)
        })
        .collect();
    files.sort();
    files
}

/// A database as a hisp of schema version 4 left it: that version's
/// history table (version and time only), a domain with an address, a
/// queued outbound message and the audit events of its queueing, which
/// version 4 did not chain yet.
fn version_4_database(db: &Path) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut sql = String::from(
        "BEGIN;
         CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);\n",
    );
    for (version, file) in migration_files().into_iter().take(4) {
        sql.push_str(&std::fs::read_to_string(file).unwrap());
        sql.push_str(&format!(
            "\nINSERT INTO schema_version VALUES ({version}, 1700000000);\n"
        ));
    }
    sql.push_str(
        "INSERT INTO domains (id, name, added_at) VALUES (1, 'a.example', 1700000001);
         INSERT INTO addresses (domain_id, local_part, added_at) VALUES (1, 'Alice', 1700000002);
         INSERT INTO messages (id, direction, message_id, envelope_from, received_at, size, body)
             VALUES (1, 'outbound', '1@a.example', 'alice@a.example', 1700000003, 4, X'68690d0a');
         INSERT INTO message_tracking (message, expect) VALUES (1, 'mail');
         INSERT INTO queue (id, message, state, attempts, next_attempt_at, updated_at)
             VALUES (1, 1, 'pending', 0, 1700000003, 1700000003);
         INSERT INTO recipients (message, address, state, queued_at)
             VALUES (1, 'bob@b.example', 'queued', 1700000003);
         INSERT INTO audit_events (at, kind, message_id, message, detail)
             VALUES (1700000003, 'queued', '1@a.example', 1,
                     'outbound from alice@a.example to bob@b.example (4 bytes)');
         INSERT INTO audit_events (at, kind, message_id, message, detail)
             VALUES (1700000004, 'deferred', '1@a.example', 1, 'b.example: no answer');
         COMMIT;",
    );
    sqlite3(db, &sql);
}

#[test]
fn store_migrate_brings_a_version_4_database_to_the_current_schema_keeping_its_data() {
    let env = Env::new();
    version_4_database(&env.db());

    let out = env.ok(&["store", "migrate"]);
    let mut expected: Vec<String> = migration_files()[4..]
        .iter()
        .map(|(version, file)| {
            let stem = file.file_stem().unwrap().to_str().unwrap();
            let name = &stem[stem.find("__").unwrap() + 2..];
            format!("applied migration {version} ({name})")
        })
        .collect();
    expected.push(format!(
        "the schema of {} is at version {SCHEMA_VERSION} (was 4)",
        env.db().display()
    ));
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    assert!(out.starts_with("applied migration 5 (portal_and_audit_chain)\n"));

    // Every version is recorded, with a checksum, the old ones too.
    let history = sqlite3(
        &env.db(),
        "SELECT version, length(checksum) FROM schema_version ORDER BY version;",
    );
    let want: String = (1..=SCHEMA_VERSION).map(|v| format!("{v}|64\n")).collect();
    assert_eq!(history, want);

    // The data is there, read through the current schema.
    let domains = env.json(&["domain", "list", "--json"]);
    assert_eq!(domains[0]["domain"], "a.example");
    let addresses = env.json(&["address", "list", "--json"]);
    assert_eq!(addresses[0]["address"], "Alice@a.example");
    let queue = env.json(&["queue", "list", "--json"]);
    assert_eq!(queue[0]["message_id"], "<1@a.example>");
    assert_eq!(queue[0]["recipients"][0]["address"], "bob@b.example");
    assert_eq!(queue[0]["recipients"][0]["state"], "queued");
    // The old events were chained by version 5, and the chain holds.
    assert_eq!(
        env.ok(&["audit", "verify"]),
        "audit chain intact: 2 events\n"
    );
    let events = env.json(&["audit", "export", "--json"]);
    let kinds: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["kind"])
        .collect();
    assert_eq!(kinds, ["queued", "deferred"]);
}

#[test]
fn store_migrate_twice_says_the_schema_is_current_and_applies_nothing() {
    let env = Env::new();
    let first = env.json(&["store", "migrate", "--json"]);
    assert_eq!(first["from"], 0);
    assert_eq!(first["to"], SCHEMA_VERSION);
    assert_eq!(first["database"], s(&env.db()));
    let versions: Vec<i64> = first["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    assert_eq!(first["applied"][0]["name"], "directory");

    let history = || sqlite3(&env.db(), "SELECT * FROM schema_version;");
    let before = history();
    assert_eq!(
        env.ok(&["store", "migrate"]),
        format!(
            "the schema of {} is current: version {SCHEMA_VERSION}, nothing to apply\n",
            env.db().display()
        )
    );
    let again = env.json(&["store", "migrate", "--json"]);
    assert_eq!(again["from"], SCHEMA_VERSION);
    assert_eq!(again["to"], SCHEMA_VERSION);
    assert_eq!(again["applied"], Value::Array(Vec::new()));
    assert_eq!(history(), before);
}

#[test]
fn store_migrate_refuses_a_database_from_a_newer_hisp_with_exit_1_leaving_it_untouched() {
    let env = Env::new();
    env.ok(&["store", "migrate"]);
    let newer = SCHEMA_VERSION + 1;
    sqlite3(
        &env.db(),
        &format!("INSERT INTO schema_version (version, applied_at) VALUES ({newer}, 0);"),
    );
    let before = sqlite3(&env.db(), "SELECT * FROM schema_version;");
    let run = env.run(&["store", "migrate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let db = env.db().display().to_string();
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "hisp: cannot open the store {db}: the database {db} has schema version {newer}, \
             but this hisp knows versions up to {SCHEMA_VERSION}: use a newer hisp"
        )
    );
    assert!(run.stdout.is_empty());
    assert_eq!(sqlite3(&env.db(), "SELECT * FROM schema_version;"), before);
}

#[test]
fn store_migrate_refuses_a_migration_changed_after_it_was_applied() {
    let env = Env::new();
    env.ok(&["store", "migrate"]);
    sqlite3(
        &env.db(),
        "UPDATE schema_version SET checksum = 'ab' WHERE version = 2;",
    );
    let run = env.run(&["store", "migrate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the schema history of {} does not fit this hisp at version 2: migration 2 \
             (users_queue_mailboxes) was applied with checksum ab, but this hisp's is ",
            env.db().display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn store_migrate_without_a_data_dir_says_how_to_configure_one() {
    let env = Env::new();
    std::fs::write(&env.config, "").unwrap();
    let run = env.run(&["store", "migrate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("hisp: no data_dir configured"),
        "{}",
        run.stderr
    );
}

/// A database on the test server owned by a role of its own, which logs in
/// with `password` (the schema is the owner's to change).
fn postgres_with_role(password: &str) -> (hisp_testpg::TestDatabase, String) {
    let db = hisp_testpg::TestDatabase::new();
    let role = format!("{}_owner", db.name());
    db.admin()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}';
             ALTER DATABASE {} OWNER TO {role};",
            db.name()
        ))
        .unwrap();
    (db, role)
}

/// A config naming only the PostgreSQL store (no data_dir).
fn postgres_config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let config = dir.join("hisp.toml");
    std::fs::write(&config, format!("[store]\nurl = \"{url}\"\n{extra}")).unwrap();
    config
}

fn migrate_postgres(config: &Path, password: Option<&str>, json: bool) -> Run {
    let mut args = vec!["--config", config.to_str().unwrap(), "store", "migrate"];
    if json {
        args.push("--json");
    }
    let mut cmd = hisp_cmd(args);
    cmd.env_remove("HISP_STORE_PASSWORD");
    if let Some(password) = password {
        cmd.env("HISP_STORE_PASSWORD", password);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn store_migrate_with_a_postgres_url_migrates_it_then_says_it_is_current_password_from_the_environment(
) {
    let (db, role) = postgres_with_role("pw-from-env");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}?sslmode=require", db.url_for(&role));
    let config = postgres_config(dir.path(), &url, "");

    // The server wants a password over TCP: without one nothing happens.
    let run = migrate_postgres(&config, None, false);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot open the PostgreSQL store {url}")),
        "{}",
        run.stderr
    );

    let out = migrate_postgres(&config, Some("pw-from-env"), false)
        .ok()
        .stdout_text();
    assert_eq!(
        out,
        format!(
            "applied migration 1 (schema)\napplied migration 2 (change_signals)\n\
             the schema of {url} is at version {} (a new database)\n",
            hisp_store::POSTGRES_SCHEMA_VERSION
        )
    );
    let owner: String = db
        .admin()
        .query_one(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'queue'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(owner, role);

    let again: Value = serde_json::from_slice(
        &migrate_postgres(&config, Some("pw-from-env"), true)
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(again["database"], url.as_str());
    assert_eq!(again["from"], hisp_store::POSTGRES_SCHEMA_VERSION);
    assert_eq!(again["to"], hisp_store::POSTGRES_SCHEMA_VERSION);
    assert_eq!(again["applied"], serde_json::json!([]));
    assert_eq!(
        migrate_postgres(&config, Some("pw-from-env"), false)
            .ok()
            .stdout_text(),
        format!(
            "the schema of {url} is current: version {}, nothing to apply\n",
            hisp_store::POSTGRES_SCHEMA_VERSION
        )
    );

    // A database a newer hisp migrated is refused with exit 1.
    db.admin()
        .execute(
            "INSERT INTO schema_version VALUES (99, 1, 'from_the_future', 'ab')",
            &[],
        )
        .unwrap();
    let run = migrate_postgres(&config, Some("pw-from-env"), false);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "the database {url} has schema version 99, but this hisp knows versions up to {}",
            hisp_store::POSTGRES_SCHEMA_VERSION
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn store_migrate_with_a_postgres_url_reads_the_password_file_when_the_environment_has_none() {
    let (db, role) = postgres_with_role("pw-from-file");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db-password"), "pw-from-file\n").unwrap();
    let url = format!("{}?sslmode=disable", db.url_for(&role));
    let config = postgres_config(dir.path(), &url, "password_file = \"db-password\"\n");
    let report: Value =
        serde_json::from_slice(&migrate_postgres(&config, None, true).ok().stdout).unwrap();
    assert_eq!(
        (report["from"].as_i64(), report["to"].as_i64()),
        (Some(0), Some(hisp_store::POSTGRES_SCHEMA_VERSION))
    );
    assert_eq!(report["applied"][0]["name"], "schema");
    // The environment wins over the file.
    let run = migrate_postgres(&config, Some("not-the-password"), false);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
}
