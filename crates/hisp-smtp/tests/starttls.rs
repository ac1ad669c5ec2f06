//! STARTTLS on the listener, driven by hand: the session restarts after the handshake
//! (RFC 3207 §4.2) and clear-text commands pipelined after STARTTLS are not executed.

mod common;

use hisp_smtp::Role;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut BufReader<S>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.trim_end().to_string());
        if last {
            return lines;
        }
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut BufReader<S>, text: &str) {
    conn.get_mut().write_all(text.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn session_restarts_after_starttls_and_injected_commands_are_dropped_rfc3207_4_2() {
    let (config, cert) = common::config_with_tls(Role::Submission);
    let server = common::start(config, common::TestPolicy::default()).await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    assert!(reply(&mut conn).await[0].starts_with("220 "));
    send(&mut conn, "EHLO portal.example\r\n").await;
    let ehlo = reply(&mut conn).await;
    assert!(ehlo.iter().any(|l| l == "250-STARTTLS"), "{ehlo:?}");
    send(&mut conn, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").await;
    assert_eq!(
        reply(&mut conn).await,
        ["235 2.7.0 Authentication successful"]
    );
    // A command injected behind STARTTLS in the same packet.
    send(&mut conn, "STARTTLS\r\nMAIL FROM:<patient@a.example>\r\n").await;
    assert_eq!(reply(&mut conn).await, ["220 2.0.0 Ready to start TLS"]);

    let roots = hisp_smtp::tls::client_config_with_roots(&cert).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = TlsConnector::from(roots)
        .connect(name, conn.into_inner())
        .await
        .unwrap();
    let mut conn = BufReader::new(tls);
    // EHLO and AUTH are forgotten, and the injected MAIL was never executed.
    send(&mut conn, "MAIL FROM:<patient@a.example>\r\n").await;
    assert_eq!(
        reply(&mut conn).await,
        ["503 5.5.1 Bad sequence of commands: send EHLO or HELO first"]
    );
    send(&mut conn, "EHLO portal.example\r\n").await;
    let ehlo = reply(&mut conn).await;
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert!(
        ehlo.iter().any(|l| l.ends_with("AUTH PLAIN LOGIN")),
        "{ehlo:?}"
    );
    send(&mut conn, "MAIL FROM:<patient@a.example>\r\n").await;
    assert_eq!(
        reply(&mut conn).await,
        ["530 5.7.0 Authentication required"]
    );
    send(&mut conn, "QUIT\r\n").await;
    assert_eq!(reply(&mut conn).await, ["221 2.0.0 Bye"]);
    drop(conn);
    server.stop().await;
}
