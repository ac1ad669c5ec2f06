//! The delivering client against the real listener: in clear, over STARTTLS, STARTTLS
//! required against a server that does not offer it, and per-recipient classification.

mod common;

use std::time::Duration;

use hisp_smtp::client::{deliver, ClientConfig, ClientError, OutboundEnvelope, RecipientOutcome};
use hisp_smtp::{Role, ServerConfig};

const MESSAGE: &[u8] = b"From: doctor@b.example\nTo: patient@a.example\nSubject: results\n\nLine one.\n.hidden dot line\n..two dots\n.\nlast line\n";

fn envelope(rcpts: &[&str]) -> OutboundEnvelope {
    OutboundEnvelope {
        id: "test-1".into(),
        mail_from: "doctor@b.example".into(),
        rcpt_to: rcpts.iter().map(|s| s.to_string()).collect(),
    }
}

/// The stored message without the Received field the server prepends.
fn body_of(stored: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(stored);
    let start = text.find("From: ").expect("header From");
    text[start..].as_bytes().to_vec()
}

fn crlf(text: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(text)
        .replace('\n', "\r\n")
        .into_bytes()
}

#[tokio::test]
async fn delivers_in_clear_with_dot_stuffing_round_trip_rfc5321_4_5_2() {
    let server = common::start(
        ServerConfig::new(Role::Backbone, "mx.a.example"),
        common::TestPolicy::default(),
    )
    .await;
    let config = ClientConfig::new("hisp-b.example", None);
    let report = deliver(
        &config,
        "127.0.0.1",
        server.addr.port(),
        &envelope(&["patient@a.example"]),
        MESSAGE,
    )
    .await
    .unwrap();
    assert!(!report.tls);
    assert!(matches!(&report.recipients[0].1, RecipientOutcome::Delivered(r) if r.code == 250));
    let stored = server.policy.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(body_of(&stored[0].message), crlf(MESSAGE));
    assert!(!stored[0].tls);
    server.stop().await;
}

#[tokio::test]
async fn uses_starttls_when_offered_rfc3207() {
    let (config, cert) = common::config_with_tls(Role::Backbone);
    let server = common::start(config, common::TestPolicy::default()).await;
    let roots = hisp_smtp::tls::client_config_with_roots(&cert).unwrap();
    let mut config = ClientConfig::new("hisp-b.example", Some(roots));
    config.require_tls = true;
    let report = deliver(
        &config,
        "127.0.0.1",
        server.addr.port(),
        &envelope(&["patient@a.example"]),
        MESSAGE,
    )
    .await
    .unwrap();
    assert!(report.tls);
    assert!(matches!(
        report.recipients[0].1,
        RecipientOutcome::Delivered(_)
    ));
    let stored = server.policy.stored.lock().unwrap().clone();
    assert!(stored[0].tls);
    assert!(String::from_utf8_lossy(&stored[0].message).contains("with ESMTPS id"));
    server.stop().await;
}

#[tokio::test]
async fn required_tls_refuses_to_send_in_clear_to_a_server_without_starttls() {
    let server = common::start(
        ServerConfig::new(Role::Backbone, "mx.a.example"),
        common::TestPolicy::default(),
    )
    .await;
    let (_, cert) = common::config_with_tls(Role::Backbone);
    let roots = hisp_smtp::tls::client_config_with_roots(&cert).unwrap();
    let mut config = ClientConfig::new("hisp-b.example", Some(roots));
    config.require_tls = true;
    let err = deliver(
        &config,
        "127.0.0.1",
        server.addr.port(),
        &envelope(&["patient@a.example"]),
        MESSAGE,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::TlsRequired { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(server.policy.stored.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn untrusted_server_certificate_fails_the_handshake() {
    let (config, _cert) = common::config_with_tls(Role::Backbone);
    let server = common::start(config, common::TestPolicy::default()).await;
    let (other_cert, _) = common::test_cert();
    let roots = hisp_smtp::tls::client_config_with_roots(&other_cert).unwrap();
    let config = ClientConfig::new("hisp-b.example", Some(roots));
    let err = deliver(
        &config,
        "127.0.0.1",
        server.addr.port(),
        &envelope(&["patient@a.example"]),
        MESSAGE,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err}");
    assert!(server.policy.stored.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn classifies_each_recipient_as_delivered_temporary_or_permanent() {
    let server = common::start(
        ServerConfig::new(Role::Backbone, "mx.a.example"),
        common::TestPolicy::default(),
    )
    .await;
    let config = ClientConfig::new("hisp-b.example", None);
    let report = deliver(
        &config,
        "127.0.0.1",
        server.addr.port(),
        &envelope(&[
            "patient@a.example",
            "x@dnsdown.example",
            "y@elsewhere.example",
        ]),
        MESSAGE,
    )
    .await
    .unwrap();
    let outcomes: Vec<_> = report.recipients.iter().map(|(_, o)| o.clone()).collect();
    assert!(matches!(&outcomes[0], RecipientOutcome::Delivered(_)));
    assert!(
        matches!(&outcomes[1], RecipientOutcome::Temporary(r) if r.enhanced == Some((4, 4, 3)))
    );
    assert!(
        matches!(&outcomes[2], RecipientOutcome::Permanent(r) if r.enhanced == Some((5, 7, 1)))
    );
    let stored = server.policy.stored.lock().unwrap().clone();
    assert_eq!(
        stored[0].envelope.rcpt_to,
        vec!["patient@a.example".to_string()]
    );
    server.stop().await;
}

#[tokio::test]
async fn connection_refused_is_temporary() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = ClientConfig::new("hisp-b.example", None);
    let err = deliver(
        &config,
        "127.0.0.1",
        port,
        &envelope(&["patient@a.example"]),
        MESSAGE,
    )
    .await
    .unwrap_err();
    assert!(err.is_temporary(), "{err}");
}

#[tokio::test]
async fn shutdown_lets_a_running_transaction_finish_and_stops_accepting() {
    let policy = common::TestPolicy {
        data_delay: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let server = common::start(ServerConfig::new(Role::Backbone, "mx.a.example"), policy).await;
    let addr = server.addr;
    let delivery = tokio::spawn(async move {
        let config = ClientConfig::new("hisp-b.example", None);
        deliver(
            &config,
            "127.0.0.1",
            addr.port(),
            &envelope(&["patient@a.example"]),
            MESSAGE,
        )
        .await
    });
    // Stop while the message is being committed (inside data()).
    server.policy.data_entered.notified().await;
    let report = server.stop().await;
    let result = delivery.await.unwrap().unwrap();
    assert!(matches!(
        result.recipients[0].1,
        RecipientOutcome::Delivered(_)
    ));
    assert_eq!(report.aborted, 0);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
