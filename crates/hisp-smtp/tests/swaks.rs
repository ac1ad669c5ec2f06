//! swaks, an independent SMTP client, submits to the real listener: AUTH PLAIN over
//! loopback, STARTTLS + AUTH, pipelining, and the refusal of unauthenticated submission.

mod common;

use hisp_smtp::{Role, ServerConfig};
use tokio::process::Command;

async fn swaks(port: u16, extra: &[&str]) -> (bool, String) {
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--ehlo",
            "portal.example",
            "--from",
            "patient@a.example",
            "--to",
            "doctor@b.example",
        ])
        .args([
            "--header",
            "Subject: from swaks",
            "--body",
            "Hello from swaks.\n.leading dot\n",
        ])
        .args(["--timeout", "10"])
        .args(extra)
        .output()
        .await
        .expect("run swaks (apt-get install swaks; tests/run.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const AUTH: &[&str] = &[
    "--auth",
    "PLAIN",
    "--auth-user",
    "alice",
    "--auth-password",
    "secret",
];

#[tokio::test]
async fn swaks_submits_with_auth_plain_over_loopback() {
    let server = common::start(
        ServerConfig::new(Role::Submission, "mx.a.example"),
        common::TestPolicy::default(),
    )
    .await;
    let (ok, out) = swaks(server.addr.port(), AUTH).await;
    assert!(ok, "{out}");
    let stored = server.policy.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1, "{out}");
    assert_eq!(stored[0].account.as_deref(), Some("alice"));
    assert!(!stored[0].tls);
    let text = String::from_utf8_lossy(&stored[0].message);
    assert!(text.contains("\r\n.leading dot\r\n"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn swaks_submits_with_starttls_and_auth_rfc3207_rfc4954() {
    let (mut config, _) = common::config_with_tls(Role::Submission);
    config.auth_on_loopback_without_tls = false;
    let server = common::start(config, common::TestPolicy::default()).await;
    let mut args = vec!["--tls"];
    args.extend_from_slice(AUTH);
    let (ok, out) = swaks(server.addr.port(), &args).await;
    assert!(ok, "{out}");
    let stored = server.policy.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1, "{out}");
    assert!(stored[0].tls);
    assert!(String::from_utf8_lossy(&stored[0].message).contains("with ESMTPSA id"));
    server.stop().await;
}

#[tokio::test]
async fn swaks_pipelines_a_transaction_rfc2920() {
    let server = common::start(
        ServerConfig::new(Role::Submission, "mx.a.example"),
        common::TestPolicy::default(),
    )
    .await;
    let mut args = vec!["--pipeline"];
    args.extend_from_slice(AUTH);
    let (ok, out) = swaks(server.addr.port(), &args).await;
    assert!(ok, "{out}");
    assert_eq!(server.policy.stored.lock().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn swaks_without_auth_gets_530_5_7_0() {
    let server = common::start(
        ServerConfig::new(Role::Submission, "mx.a.example"),
        common::TestPolicy::default(),
    )
    .await;
    let (ok, out) = swaks(server.addr.port(), &[]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("<** 530 5.7.0 Authentication required"),
        "{out}"
    );
    assert!(server.policy.stored.lock().unwrap().is_empty());
    server.stop().await;
}
