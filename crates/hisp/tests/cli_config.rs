//! A catalogue of bad configuration files, each with the exact error it must
//! give, run through the real binary. Every error names the file, and the
//! parser's part names the line and column.

mod common;

use common::*;

/// (case, file contents, expected stderr with `{path}` for the file's path).
const BAD_CONFIGS: &[(&str, &str, &str)] = &[
    (
        "unknown top-level key",
        "copy_subject = true\n",
        "hisp: bad config file {path}: TOML parse error at line 1, column 1
  |
1 | copy_subject = true
  | ^^^^^^^^^^^^
unknown field `copy_subject`, expected one of `data_dir`, `log`, `smime`, `discovery`, `trust`, `dns_responder`, `smtp`, `tracking`, `route`, `notify`, `portal`, `queue`, `store`",
    ),
    (
        "misspelt key in [smime]",
        "data_dir = \"x\"\n[smime]\nciper = \"aes256-cbc\"\n",
        "hisp: bad config file {path}: TOML parse error at line 3, column 1
  |
3 | ciper = \"aes256-cbc\"
  | ^^^^^
unknown field `ciper`, expected one of `cipher`, `key_transport`, `copy_subject`",
    ),
    (
        "unknown table",
        "[smtpd]\nport = 25\n",
        "hisp: bad config file {path}: TOML parse error at line 1, column 2
  |
1 | [smtpd]
  |  ^^^^^
unknown field `smtpd`, expected one of `data_dir`, `log`, `smime`, `discovery`, `trust`, `dns_responder`, `smtp`, `tracking`, `route`, `notify`, `portal`, `queue`, `store`",
    ),
    (
        "unknown key in [smtp]",
        "[smtp]\nport = 25\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 1
  |
2 | port = 25
  | ^^^^
unknown field `port`, expected one of `submission_listen`, `backbone_listen`, `hostname`, `max_message_size`, `tls_cert`, `tls_key`, `relay_tls`, `relay_ca_file`, `seal_local_mail`, `mx_routing`, `relay_port`, `relay_connect_timeout_secs`, `relay_command_timeout_secs`, `relay_data_block_timeout_secs`, `relay_data_timeout_secs`, `relay_attempt_timeout_secs`, `relay_concurrency`, `max_connections`, `max_connections_per_address`, `max_commands_without_progress`, `max_session_secs`, `tls_handshake_timeout_secs`, `max_concurrent_auth`, `auth_failure_window_secs`, `max_auth_failures_per_address`, `max_auth_failures_per_account`, `relay_session_idle_secs`, `relay_session_max_messages`, `backbone_max_message_size`",
    ),
    (
        "route without a port",
        "[[route]]\ndomain = \"b.example\"\nto = \"127.0.0.1\"\n",
        "hisp: bad config file {path}: TOML parse error at line 3, column 6
  |
3 | to = \"127.0.0.1\"
  |      ^^^^^^^^^^^
invalid socket address syntax",
    ),
    (
        "route without a domain",
        "[[route]]\nto = \"127.0.0.1:25\"\n",
        "hisp: bad config file {path}: TOML parse error at line 1, column 1
  |
1 | [[route]]
  | ^^^^^^^^^
missing field `domain`",
    ),
    (
        "bad cipher name",
        "[smime]\ncipher = \"des3\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 10
  |
2 | cipher = \"des3\"
  |          ^^^^^^
unknown cipher 'des3': use aes256-cbc, aes128-cbc or aes256-gcm",
    ),
    (
        "receive-only cipher is not a sending default",
        "[smime]\ncipher = \"aes192-cbc\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 10
  |
2 | cipher = \"aes192-cbc\"
  |          ^^^^^^^^^^^^
unknown cipher 'aes192-cbc': use aes256-cbc, aes128-cbc or aes256-gcm",
    ),
    (
        "bad key transport",
        "[smime]\nkey_transport = \"rsa\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 17
  |
2 | key_transport = \"rsa\"
  |                 ^^^^^
unknown key transport 'rsa': use pkcs1, oaep-sha1 or oaep-sha256",
    ),
    (
        "wrong type for a boolean",
        "[smime]\ncopy_subject = \"yes\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 16
  |
2 | copy_subject = \"yes\"
  |                ^^^^^
invalid type: string \"yes\", expected a boolean",
    ),
    (
        "wrong type for a log level",
        "[log]\nlevel = 3\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 9
  |
2 | level = 3
  |         ^
invalid type: integer `3`, expected a string",
    ),
    (
        "unknown log level",
        "[log]\nlevel = \"loud\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 9
  |
2 | level = \"loud\"
  |         ^^^^^^
unknown log level 'loud': use error, warn, info, debug or trace",
    ),
    (
        "wrong type for data_dir",
        "data_dir = 7\n",
        "hisp: bad config file {path}: TOML parse error at line 1, column 12
  |
1 | data_dir = 7
  |            ^
invalid type: integer `7`, expected a path (a string)",
    ),
    (
        "table where a value belongs",
        "[smime.cipher]\nname = \"aes256-cbc\"\n",
        "hisp: bad config file {path}: TOML parse error at line 1, column 1
  |
1 | [smime.cipher]
  | ^^^^^^^^^^^^^^
invalid type: map, expected a string",
    ),
    (
        "TOML syntax error",
        "[smime\n",
        "hisp: bad config file {path}: TOML parse error at line 1, column 7
  |
1 | [smime
  |       ^
invalid table header
expected `.`, `]`",
    ),
    (
        "wrong type for a size names the kind in words",
        "[smtp]\nmax_message_size = \"big\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 20
  |
2 | max_message_size = \"big\"
  |                    ^^^^^
invalid type: string \"big\", expected a whole number (0 or more)",
    ),
    (
        "negative size",
        "[smtp]\nmax_message_size = -1\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 20
  |
2 | max_message_size = -1
  |                    ^^
invalid value: integer `-1`, expected a whole number (0 or more)",
    ),
    (
        "port out of range",
        "[smtp]\nrelay_port = 70000\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 14
  |
2 | relay_port = 70000
  |              ^^^^^
invalid value: integer `70000`, expected a whole number from 0 to 65535",
    ),
    (
        "fraction where whole seconds belong",
        "[discovery]\ntimeout_secs = 1.5\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 16
  |
2 | timeout_secs = 1.5
  |                ^^^
invalid type: floating point `1.5`, expected a whole number (0 or more)",
    ),
    (
        "duration written with a unit",
        "[tracking]\nmdn_timeout_secs = \"1h\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 20
  |
2 | mdn_timeout_secs = \"1h\"
  |                    ^^^^
invalid type: string \"1h\", expected a whole number (0 or more)",
    ),
    (
        "unknown log format",
        "[log]\nformat = \"xml\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 10
  |
2 | format = \"xml\"
  |          ^^^^^
unknown log format 'xml': use text or json",
    ),
    (
        "a password in [store] url (the line is not quoted, so the password is not shown)",
        "[store]\nurl = \"postgres://hisp:s3cret@db.example/hisp\"\n",
        "hisp: bad config file {path}: [store] url at line 2: invalid PostgreSQL URL 'postgres://hisp:***@db.example/hisp': it holds a password, which must not be written in the URL; give the password in the environment variable HISP_STORE_PASSWORD or in the file named by [store] password_file",
    ),
    (
        "no connection in the store's pool",
        "[store]\npool_size = 0\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 13
  |
2 | pool_size = 0
  |             ^
pool_size is 0: the store needs at least one connection",
    ),
    (
        "unknown key in [store]",
        "[store]\npassword = \"x\"\n",
        "hisp: bad config file {path}: TOML parse error at line 2, column 1
  |
2 | password = \"x\"
  | ^^^^^^^^
unknown field `password`, expected one of `url`, `password_file`, `pool_size`, `instance`",
    ),
];

fn write_config(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    s(&path)
}

#[test]
fn bad_configs_are_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = s(&dir.path().join("never-written"));
    let mut failures = Vec::new();
    for (i, (case, text, expected)) in BAD_CONFIGS.iter().enumerate() {
        let path = write_config(&dir, &format!("bad-{i}.toml"), text);
        let run = hisp(
            ["--config", &path, "cert", "ca", "--cn", "x", "--out", &out],
            b"",
        );
        let expected = expected.replace("{path}", &path);
        if run.code != 1 || run.stderr.trim_end() != expected {
            failures.push(format!(
                "{case}: exit {}\n--- expected\n{expected}\n--- got\n{}",
                run.code, run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(!dir.path().join("never-written").exists());
}

#[test]
fn hisp_config_environment_variable_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "bad.toml", "[smime]\ncipher = \"rc2\"\n");
    let run = hisp_cmd(["cert", "ca", "--cn", "x"])
        .env("HISP_CONFIG", &path)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with(&format!(
            "hisp: bad config file {path}: TOML parse error at line 2"
        )),
        "{stderr}"
    );
}

#[test]
fn config_flag_wins_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_config(&dir, "bad.toml", "nonsense = 1\n");
    let good = write_config(&dir, "good.toml", "[log]\nlevel = \"error\"\n");
    let out = s(&dir.path().join("ca"));
    let run = hisp_cmd(["--config", &good, "cert", "ca", "--cn", "x", "--out", &out])
        .env("HISP_CONFIG", &bad)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn missing_config_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = s(&dir.path().join("absent.toml"));
    let run = hisp(
        [
            "--config",
            &path,
            "cert",
            "ca",
            "--cn",
            "x",
            "--out",
            "/nonexistent/x",
        ],
        b"",
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim_end(),
        format!("hisp: cannot read config file {path}: No such file or directory (os error 2)")
    );
}

#[test]
fn shipped_config_is_accepted() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/hisp.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = s(&dir.path().join("ca"));
    hisp(
        [
            "--config", shipped, "cert", "ca", "--cn", "x", "--out", &out,
        ],
        b"",
    )
    .ok();
}

#[test]
fn empty_config_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "empty.toml", "");
    let out = s(&dir.path().join("ca"));
    hisp(
        ["--config", &path, "cert", "ca", "--cn", "x", "--out", &out],
        b"",
    )
    .ok();
}

/// An MDN timeout under a minute would fail every recipient as soon as it is
/// relayed: `hisp serve` refuses to start, saying why, before it listens.
#[test]
fn serve_refuses_an_mdn_timeout_under_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "short.toml",
        "data_dir = \"data\"\n[tracking]\nmdn_timeout_secs = 5\n",
    );
    let run = hisp(["--config", &path, "serve"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[tracking] mdn_timeout_secs is 5: at least 60 seconds"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("data").exists(), "nothing was set up");
}

/// A zero relay deadline would fail every delivery at that step, and no
/// concurrency would send nothing: `hisp serve` refuses to start, naming
/// the key, before it sets anything up.
#[test]
fn serve_refuses_a_zero_relay_deadline_or_concurrency() {
    for (key, reason) in [
        ("relay_command_timeout_secs", "give at least 1 second"),
        ("relay_data_block_timeout_secs", "give at least 1 second"),
        ("relay_concurrency", "give at least 1,"),
        ("relay_session_max_messages", "give at least 1 (1 sends"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("data_dir = \"data\"\n[smtp]\n{key} = 0\n");
        let path = write_config(&dir, "zero.toml", &text);
        let run = hisp(["--config", &path, "serve"], b"");
        assert_eq!(run.code, 1, "{key}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("[smtp] {key} is 0: {reason}")),
            "{}",
            run.stderr
        );
        assert!(!dir.path().join("data").exists(), "nothing was set up");
    }
}

/// A queue engine that could never send (no concurrency, no destination
/// slot, no wait between retries, a longest wait shorter than the first)
/// stops `hisp serve` at start, naming the key, before anything is set up.
#[test]
fn serve_refuses_a_queue_that_could_not_run() {
    for (line, reason) in [
        (
            "concurrency = 0",
            "[queue] concurrency is 0: give at least 1",
        ),
        (
            "per_destination = 0",
            "[queue] per_destination is 0: it must be at least 1",
        ),
        (
            "retry_base_secs = 0",
            "[queue] retry_base_secs is 0: it must be at least 1",
        ),
        (
            "retry_base_secs = 600\nretry_max_secs = 60",
            "[queue] retry_max_secs (60) is less than retry_base_secs (600)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("data_dir = \"data\"\n[queue]\n{line}\n");
        let path = write_config(&dir, "queue.toml", &text);
        let run = hisp(["--config", &path, "serve"], b"");
        assert_eq!(run.code, 1, "{line}: {}", run.stderr);
        assert!(run.stderr.contains(reason), "{line}: {}", run.stderr);
        assert!(!dir.path().join("data").exists(), "nothing was set up");
    }
}

/// `[notify] smtp` without `[portal] public_url` (the one thing a notice
/// says), a smart host without a port, or a bad sender stops `hisp serve`
/// at start, naming the key, before anything is set up.
#[test]
fn serve_refuses_notices_without_a_portal_url_or_with_a_bad_smart_host() {
    let url = "[portal]\npublic_url = \"https://portal.example.org/\"\n";
    for (notify, portal, reason) in [
        (
            "smtp = \"127.0.0.1:25\"\n",
            "",
            "[notify] smtp is set but [portal] public_url is not",
        ),
        (
            "smtp = \"127.0.0.1\"\n",
            url,
            "[notify] smtp \"127.0.0.1\": give the smart host as host:port",
        ),
        (
            "smtp = \"127.0.0.1:25\"\nfrom = \"no-reply\"\n",
            url,
            "[notify] from \"no-reply\" is not a usable address",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("data_dir = \"data\"\n[notify]\n{notify}{portal}");
        let path = write_config(&dir, "notify.toml", &text);
        let run = hisp(["--config", &path, "serve"], b"");
        assert_eq!(run.code, 1, "{notify}: {}", run.stderr);
        assert!(run.stderr.contains(reason), "{}", run.stderr);
        assert!(!dir.path().join("data").exists(), "nothing was set up");
    }
}

/// With `[store] url` every command works on that PostgreSQL database; one
/// that cannot be reached stops `hisp serve` and the other commands with
/// exit 1 naming the database and the cause, before anything is set up (no
/// SQLite file is made in its place).
#[test]
fn serve_with_an_unreachable_postgres_store_exits_1_naming_it_and_makes_no_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "pg.toml",
        "data_dir = \"data\"\n[store]\nurl = \"postgres://hisp@127.0.0.1:1/hisp\"\n",
    );
    for command in [&["serve"][..], &["domain", "list"][..]] {
        let mut args = vec!["--config", path.as_str()];
        args.extend(command);
        let run = hisp(args, b"");
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with(
                "hisp: cannot open the PostgreSQL store postgres://hisp@127.0.0.1:1/hisp: \
                 database error while connecting to the database: "
            ),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
    }
    assert!(!dir.path().join("data").exists(), "nothing was set up");
}
