//! SMTP dialogues kept as files under `tests/dialogues/`, each run over a real socket
//! against the listener with the test policy.
//!
//! Format, one directive per line:
//! - `# ...` comment; blank lines are ignored.
//! - `@role submission|backbone`, `@max-size N`, `@max-recipients N`,
//!   `@no-loopback-auth`: server settings, before the first `C:`.
//! - `C: text` sends `text` CRLF; consecutive `C:` lines go out in one write (pipelining).
//!   `{x*N}` in the text expands to N times `x`.
//! - `S: pattern` expects one reply line; a pattern ending in `*` matches by prefix.
//! - `S*: pattern` accepts zero or more reply lines matching the pattern.
//! - `S: <EOF>` expects the server to close the connection.
//! - `M: text` expects the last committed message to contain the line `text`.

mod common;

use std::path::Path;
use std::time::Duration;

use hisp_smtp::{Role, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn matches(pattern: &str, line: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => line.starts_with(prefix),
        None => line == pattern,
    }
}

enum Step {
    Send(Vec<String>),
    Expect(String),
    ExpectMany(String),
    Message(String),
}

fn parse(text: &str) -> (ServerConfig, Vec<Step>) {
    let mut config = ServerConfig::new(Role::Submission, "mx.test.example");
    let mut steps: Vec<Step> = Vec::new();
    for raw in text.lines() {
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(d) = raw.strip_prefix('@') {
            let mut parts = d.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("role"), Some("backbone")) => config.role = Role::Backbone,
                (Some("role"), Some("submission")) => config.role = Role::Submission,
                (Some("max-size"), Some(n)) => config.max_message_size = n.parse().unwrap(),
                (Some("max-recipients"), Some(n)) => config.max_recipients = n.parse().unwrap(),
                (Some("no-loopback-auth"), None) => config.auth_on_loopback_without_tls = false,
                _ => panic!("unknown directive {raw:?}"),
            }
        } else if let Some(c) = raw.strip_prefix("C:") {
            let line = common::expand(c.strip_prefix(' ').unwrap_or(c));
            match steps.last_mut() {
                Some(Step::Send(lines)) => lines.push(line),
                _ => steps.push(Step::Send(vec![line])),
            }
        } else if let Some(p) = raw.strip_prefix("S*: ") {
            steps.push(Step::ExpectMany(p.to_string()));
        } else if let Some(p) = raw.strip_prefix("S: ") {
            steps.push(Step::Expect(p.to_string()));
        } else if let Some(m) = raw.strip_prefix("M: ") {
            steps.push(Step::Message(m.to_string()));
        } else {
            panic!("unknown line {raw:?}");
        }
    }
    (config, steps)
}

async fn run(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    let (config, steps) = parse(&text);
    let server = common::start(config, common::TestPolicy::default()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut conn = BufReader::new(tcp);
    let mut pending: Option<String> = None;
    let mut transcript = String::new();
    let result = async {
        for step in &steps {
            match step {
                Step::Send(lines) => {
                    let mut batch = String::new();
                    for l in lines {
                        transcript.push_str(&format!("C: {}\n", &l[..l.len().min(80)]));
                        batch.push_str(l);
                        batch.push_str("\r\n");
                    }
                    conn.get_mut().write_all(batch.as_bytes()).await.unwrap();
                }
                Step::Expect(p) | Step::ExpectMany(p) => {
                    let many = matches!(step, Step::ExpectMany(_));
                    loop {
                        let line = match pending.take() {
                            Some(l) => l,
                            None => {
                                let mut l = String::new();
                                let n = tokio::time::timeout(
                                    Duration::from_secs(10),
                                    conn.read_line(&mut l),
                                )
                                .await
                                .map_err(|_| format!("timeout waiting for {p:?}"))?
                                .map_err(|e| e.to_string())?;
                                if n == 0 {
                                    "<EOF>".to_string()
                                } else {
                                    if !l.ends_with("\r\n") {
                                        return Err(format!("reply line without CRLF: {l:?}"));
                                    }
                                    l.trim_end_matches("\r\n").to_string()
                                }
                            }
                        };
                        if matches(p, &line) {
                            transcript.push_str(&format!("S: {line}\n"));
                            if many {
                                continue;
                            }
                            break;
                        }
                        if many {
                            pending = Some(line);
                            break;
                        }
                        return Err(format!("expected {p:?}, got {line:?}"));
                    }
                }
                Step::Message(m) => {
                    let stored = server.policy.stored.lock().unwrap();
                    let last = stored.last().ok_or("no message committed")?;
                    let text = String::from_utf8_lossy(&last.message);
                    if !text.split("\r\n").any(|l| l == m) {
                        return Err(format!("message lacks line {m:?}:\n{text}"));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    drop(conn);
    let report = server.stop().await;
    assert_eq!(
        report.aborted,
        0,
        "{}: a session outlived the test",
        path.display()
    );
    result.map_err(|e| format!("{e}\n--- transcript ---\n{transcript}"))
}

#[tokio::test]
async fn dialogues_from_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "dialogue files missing");
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run(f).await {
            failures.push(format!("{}: {e}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dialogues failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
