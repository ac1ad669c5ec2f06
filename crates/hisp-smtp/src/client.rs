//! The delivering client: messages to one host, with STARTTLS when offered (or
//! required), and every recipient's result classified for the retry logic.
//!
//! [`deliver`] and [`deliver_to`] send one message over a session of its own.
//! [`OutboundSession`] is one open session that can carry several transactions
//! (RSET between them, RFC 5321 §4.1.1.5), with MAIL FROM and the RCPT TOs in one
//! write when the server offers PIPELINING (RFC 2920); [`SessionCache`] keeps such
//! sessions for a few seconds per destination so that the next message to the same
//! server needs no new connect, EHLO and STARTTLS.
//!
//! Every network step has a deadline (RFC 5321 §4.5.3.2): connecting, each command
//! written and its reply read, the TLS handshake, each block of the message text
//! written, and the reply to the final dot. A peer that stalls at any step is a
//! temporary failure of this delivery ([`ClientError::is_temporary`]), never a wait
//! without end.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::ToSocketAddrs;
use tokio_rustls::rustls::ClientConfig as TlsClientConfig;
use tracing::{debug, info_span, Instrument};

use crate::lines::{read_line, Line};
use crate::reply::{Reply, Severity};

mod cache;
mod session;

pub use cache::{CacheStats, ReuseSettings, SessionCache};
pub use session::OutboundSession;

/// Longest reply line the client reads.
const MAX_REPLY_LINE: usize = 4096;

/// The message text is written in blocks of this size, each under the data block
/// deadline, so that a slow but moving peer is not cut while a stalled one is.
const DATA_BLOCK: usize = 64 * 1024;

/// Settings of the delivering client.
#[derive(Clone)]
pub struct ClientConfig {
    /// The name given in EHLO.
    pub helo_name: String,
    /// TLS settings for STARTTLS; `None` never starts TLS.
    pub tls: Option<Arc<TlsClientConfig>>,
    /// Refuse to send in clear text: if STARTTLS is not offered or fails, nothing is sent.
    pub require_tls: bool,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for the greeting, for writing each command and reading its reply,
    /// and for the STARTTLS handshake (RFC 5321 §4.5.3.2.1-4 and .7: 5 minutes; DATA
    /// initiation is given the same, not the 2 minutes of §4.5.3.2.4, so that one
    /// setting covers every command).
    pub command_timeout: Duration,
    /// Time allowed for each block of the message text to be taken by the peer (RFC
    /// 5321 §4.5.3.2.5: 3 minutes for each write).
    pub data_block_timeout: Duration,
    /// Time allowed for the reply to the final dot (RFC 5321 §4.5.3.2.6: 10 minutes).
    pub data_timeout: Duration,
}

impl ClientConfig {
    /// Defaults: opportunistic TLS when `tls` is given, RFC 5321 timeouts.
    pub fn new(helo_name: impl Into<String>, tls: Option<Arc<TlsClientConfig>>) -> Self {
        ClientConfig {
            helo_name: helo_name.into(),
            tls,
            require_tls: false,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_block_timeout: Duration::from_secs(180),
            data_timeout: Duration::from_secs(600),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("helo_name", &self.helo_name)
            .field("tls", &self.tls.is_some())
            .field("require_tls", &self.require_tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("data_block_timeout", &self.data_block_timeout)
            .field("data_timeout", &self.data_timeout)
            .finish_non_exhaustive()
    }
}

/// One server to deliver to: the address connected to and the name its TLS
/// certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The name checked against the server's certificate after STARTTLS: the mail
    /// exchanger's host name for MX routing, the IP address for a static route.
    pub name: String,
}

impl Peer {
    /// A peer known by its address alone: its certificate must name the IP address.
    pub fn by_address(addr: SocketAddr) -> Self {
        Peer {
            addr,
            name: addr.ip().to_string(),
        }
    }

    /// The peer as logs and errors name it: `name [ip]`, or the IP address alone.
    pub fn label(&self) -> String {
        let ip = self.addr.ip().to_string();
        if self.name == ip {
            ip
        } else {
            format!("{} [{ip}]", self.name)
        }
    }
}

/// The envelope of an outbound message.
#[derive(Debug, Clone)]
pub struct OutboundEnvelope {
    /// Id for logs (the queue's message id).
    pub id: String,
    /// The reverse-path; empty for `<>`.
    pub mail_from: String,
    /// The recipients on this host.
    pub rcpt_to: Vec<String>,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// The server accepted the message for this recipient (250 to RCPT and to the dot).
    Delivered(Reply),
    /// A 4xx reply: retry later.
    Temporary(Reply),
    /// A 5xx reply: do not retry; a DSN is due.
    Permanent(Reply),
}

impl RecipientOutcome {
    fn from_failure(reply: Reply) -> Self {
        match reply.severity() {
            Severity::Temporary => RecipientOutcome::Temporary(reply),
            _ => RecipientOutcome::Permanent(reply),
        }
    }
}

/// The result of one delivery attempt for each recipient.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// Each recipient with its outcome, in the envelope's order.
    pub recipients: Vec<(String, RecipientOutcome)>,
    /// Whether the message went over TLS.
    pub tls: bool,
}

/// The stage of the dialogue at which a whole-transaction failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting or the greeting.
    Connect,
    /// EHLO/HELO.
    Ehlo,
    /// RSET before another transaction on a session that served one (RFC 5321
    /// §4.1.1.5).
    Reset,
    /// STARTTLS and the TLS handshake.
    StartTls,
    /// MAIL FROM.
    MailFrom,
    /// DATA (before the message text).
    Data,
    /// The message text and the reply to the final dot.
    Message,
}

/// A failure that affects every recipient of the attempt.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection or a read/write failed.
    #[error("{stage:?}: connection to {host}: {source}")]
    Io {
        /// Where it happened.
        stage: Stage,
        /// The host.
        host: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// No reply within the timeout.
    #[error("{stage:?}: {host} did not answer in time")]
    Timeout {
        /// Where it happened.
        stage: Stage,
        /// The host.
        host: String,
    },
    /// The peer stopped reading: a command or a block of the message could not be
    /// written within its deadline.
    #[error("{stage:?}: {host} stopped taking data (a write did not finish in time)")]
    WriteTimeout {
        /// Where it happened.
        stage: Stage,
        /// The host.
        host: String,
    },
    /// The TLS handshake after STARTTLS did not finish within the command deadline.
    #[error("TLS handshake with {host} did not finish in time")]
    TlsTimeout {
        /// The host.
        host: String,
    },
    /// The server answered something that is not an SMTP reply.
    #[error("{stage:?}: {host} sent a malformed reply")]
    Protocol {
        /// Where it happened.
        stage: Stage,
        /// The host.
        host: String,
    },
    /// The server refused the whole transaction.
    #[error("{stage:?}: {host} refused: {reply}")]
    Rejected {
        /// Where it happened.
        stage: Stage,
        /// The host.
        host: String,
        /// The server's reply.
        reply: Reply,
    },
    /// TLS is required but the server does not offer STARTTLS, or no TLS is configured.
    #[error("{host} does not offer STARTTLS and TLS is required: nothing sent")]
    TlsRequired {
        /// The host.
        host: String,
    },
    /// The TLS handshake failed (certificate not trusted, protocol error).
    #[error("TLS handshake with {host}: {source}")]
    Tls {
        /// The host.
        host: String,
        /// The handshake error.
        #[source]
        source: io::Error,
    },
    /// The host name is not valid for TLS.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

impl ClientError {
    /// Whether a later attempt may succeed.
    ///
    /// Connection, timeout and TLS failures are temporary (the peer may come back or be
    /// fixed; the queue's lifetime bounds the retries, as Postfix defers them), and so
    /// is a connection closed in the middle of the dialogue. A refusal is temporary for
    /// a 4xx reply and permanent for 5xx.
    pub fn is_temporary(&self) -> bool {
        match self {
            ClientError::Rejected { reply, .. } => reply.severity() == Severity::Temporary,
            ClientError::Protocol { .. } | ClientError::ServerName(_) => false,
            _ => true,
        }
    }
}

/// What the client's connection is: plain TCP or TLS after STARTTLS, behind one type
/// so that an [`OutboundSession`] can be kept whichever it is.
trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for T {}

/// A connection's reader and writer for the client side, and what the connection
/// has shown of its health.
struct Wire<S> {
    reader: BufReader<S>,
    host: String,
    timeout: Duration,
    /// The peer closed or reset the connection, or said 421 (RFC 5321 §3.8: it is
    /// closing the transmission channel).
    closed_by_peer: bool,
    /// A deadline passed or the peer sent something that is not SMTP: the dialogue
    /// cannot go on.
    failed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(stream: S, host: &str, timeout: Duration) -> Self {
        Wire {
            reader: BufReader::new(stream),
            host: host.to_string(),
            timeout,
            closed_by_peer: false,
            failed: false,
        }
    }

    /// Whether another command may be sent.
    fn is_open(&self) -> bool {
        !self.closed_by_peer && !self.failed
    }

    /// Notes what `result` says of the connection's health, and passes it on.
    fn note<T>(&mut self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        match &result {
            Err(ClientError::Io { .. }) => self.closed_by_peer = true,
            Err(ClientError::Rejected { reply, .. }) if reply.code == 421 => {
                self.closed_by_peer = true
            }
            Err(ClientError::Rejected { .. }) => {}
            Err(_) => self.failed = true,
            Ok(_) => {}
        }
        result
    }

    fn io_err(&self, stage: Stage, source: io::Error) -> ClientError {
        ClientError::Io {
            stage,
            host: self.host.clone(),
            source,
        }
    }

    /// Writes `bytes` in blocks of at most `block`, each (with the final flush) within
    /// `timeout`: a peer that stops reading is a [`ClientError::WriteTimeout`].
    async fn send(
        &mut self,
        stage: Stage,
        bytes: &[u8],
        block: usize,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let result = self.send_unnoted(stage, bytes, block, timeout).await;
        self.note(result)
    }

    async fn send_unnoted(
        &mut self,
        stage: Stage,
        bytes: &[u8],
        block: usize,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let stream = self.reader.get_mut();
        let mut result = Ok(());
        for chunk in bytes.chunks(block.max(1)) {
            result = match tokio::time::timeout(timeout, stream.write_all(chunk)).await {
                Ok(r) => r.map_err(Some),
                Err(_) => Err(None),
            };
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = match tokio::time::timeout(timeout, stream.flush()).await {
                Ok(r) => r.map_err(Some),
                Err(_) => Err(None),
            };
        }
        result.map_err(|e| match e {
            Some(e) => self.io_err(stage, e),
            None => ClientError::WriteTimeout {
                stage,
                host: self.host.clone(),
            },
        })
    }

    async fn command(&mut self, stage: Stage, line: &str) -> Result<Reply, ClientError> {
        debug!(command = %line.split(':').next().unwrap_or(line), "send");
        let bytes = format!("{line}\r\n");
        self.send(stage, bytes.as_bytes(), bytes.len(), self.timeout)
            .await?;
        self.reply(stage, self.timeout).await
    }

    /// Reads one (possibly multi-line) reply (RFC 5321 §4.2.1); a 421 marks the
    /// connection closed by the peer.
    async fn reply(&mut self, stage: Stage, timeout: Duration) -> Result<Reply, ClientError> {
        let result = self.reply_unnoted(stage, timeout).await;
        if let Ok(reply) = &result {
            if reply.code == 421 {
                self.closed_by_peer = true;
            }
        }
        self.note(result)
    }

    async fn reply_unnoted(
        &mut self,
        stage: Stage,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let read = async {
            let mut lines = Vec::new();
            let mut buf = Vec::new();
            loop {
                match read_line(&mut self.reader, MAX_REPLY_LINE, &mut buf).await {
                    Ok(Line::Complete) => {}
                    Ok(Line::TooLong) => return Err(None),
                    // A connection closed before the reply is complete is a broken
                    // connection, not a malformed reply: temporary.
                    Ok(Line::Eof) => {
                        return Err(Some(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed before a complete reply",
                        )))
                    }
                    Err(e) => return Err(Some(e)),
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                let last = text.as_bytes().get(3) != Some(&b'-');
                lines.push(text);
                if last {
                    return Ok(lines);
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Err(_) => Err(ClientError::Timeout {
                stage,
                host: self.host.clone(),
            }),
            Ok(Err(Some(e))) => Err(self.io_err(stage, e)),
            Ok(Err(None)) => Err(ClientError::Protocol {
                stage,
                host: self.host.clone(),
            }),
            Ok(Ok(lines)) => Reply::parse(&lines).ok_or(ClientError::Protocol {
                stage,
                host: self.host.clone(),
            }),
        }
    }

    fn refused(&self, stage: Stage, reply: Reply) -> ClientError {
        ClientError::Rejected {
            stage,
            host: self.host.clone(),
            reply,
        }
    }

    /// EHLO, falling back to HELO on a 5xx (RFC 5321 §3.2); returns the extension
    /// keywords, upper-cased.
    async fn ehlo(&mut self, name: &str) -> Result<Vec<String>, ClientError> {
        let reply = self.command(Stage::Ehlo, &format!("EHLO {name}")).await?;
        if reply.code == 250 {
            return Ok(reply
                .text
                .lines()
                .skip(1)
                .map(|l| l.trim().to_ascii_uppercase())
                .collect());
        }
        if reply.severity() == Severity::Permanent {
            let helo = self.command(Stage::Ehlo, &format!("HELO {name}")).await?;
            if helo.code == 250 {
                return Ok(Vec::new());
            }
            return Err(self.refused(Stage::Ehlo, helo));
        }
        Err(self.refused(Stage::Ehlo, reply))
    }
}

/// Delivers `message` (RFC 5322 text, CRLF or LF line endings) to `host:port`.
///
/// Recipients refused at RCPT get their own outcome; the outcome of the final dot applies
/// to every accepted recipient. A failure before any recipient could be tried is an
/// error for all of them.
pub async fn deliver(
    config: &ClientConfig,
    host: &str,
    port: u16,
    envelope: &OutboundEnvelope,
    message: &[u8],
) -> Result<DeliveryReport, ClientError> {
    let span = info_span!("smtp_deliver", msg_id = %envelope.id, host = %host, port);
    deliver_inner(config, (host, port), host, host, envelope, message)
        .instrument(span)
        .await
}

/// Delivers `message` to `peer`: connects to its address and, after STARTTLS, checks
/// the server's certificate against its name (RFC 3207 §4.1; for a mail exchanger
/// found by MX, the exchanger's host name, not the address it resolved to).
///
/// Otherwise as [`deliver`].
pub async fn deliver_to(
    config: &ClientConfig,
    peer: &Peer,
    envelope: &OutboundEnvelope,
    message: &[u8],
) -> Result<DeliveryReport, ClientError> {
    let label = peer.label();
    let span =
        info_span!("smtp_deliver", msg_id = %envelope.id, host = %label, port = peer.addr.port());
    deliver_inner(config, peer.addr, &peer.name, &label, envelope, message)
        .instrument(span)
        .await
}

/// Opens a session to `addr` (TLS checked against `tls_name`, the peer named `host` in
/// errors), sends the one message and ends the session with QUIT when it is still open.
async fn deliver_inner(
    config: &ClientConfig,
    addr: impl ToSocketAddrs,
    tls_name: &str,
    host: &str,
    envelope: &OutboundEnvelope,
    message: &[u8],
) -> Result<DeliveryReport, ClientError> {
    let mut session = OutboundSession::open_at(config, addr, tls_name, host).await?;
    let report = session.send(config, envelope, message).await;
    session.quit().await;
    report
}

/// The message text in wire form: CRLF line endings, a dot doubled at the start of a
/// line (RFC 5321 §4.5.2), and the end-of-data marker.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 50 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_leading_dots_and_ends_with_marker_rfc5321_4_5_2() {
        assert_eq!(
            dot_stuff(b"a\n.b\r\n..\nend"),
            b"a\r\n..b\r\n...\r\nend\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    /// A loopback peer that answers with `script` (reply lines sent after each line
    /// read, the first before any) and then holds the connection without reading.
    async fn stalling_peer(script: &'static [&'static str]) -> SocketAddr {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let mut line = String::new();
            for (i, reply) in script.iter().enumerate() {
                if i > 0 {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
                write.write_all(reply.as_bytes()).await.unwrap();
            }
            // Neither read nor close until the test is over.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop((read, write));
        });
        addr
    }

    fn short_deadlines(tls: Option<Arc<TlsClientConfig>>) -> ClientConfig {
        let mut config = ClientConfig::new("client.test", tls);
        config.command_timeout = Duration::from_millis(300);
        config.data_block_timeout = Duration::from_millis(300);
        config.data_timeout = Duration::from_millis(300);
        config
    }

    fn envelope() -> OutboundEnvelope {
        OutboundEnvelope {
            id: "<t@client.test>".into(),
            mail_from: "a@a.test".into(),
            rcpt_to: vec!["b@b.test".into()],
        }
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_after_data_is_a_temporary_write_timeout_rfc_5321_4_5_3_2_5()
    {
        let addr = stalling_peer(&[
            "220 peer\r\n",
            "250 peer\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
        ])
        .await;
        // Far more than the socket buffers between the two ends can hold.
        let message = vec![b'x'; 16 << 20];
        let started = std::time::Instant::now();
        let err = deliver_to(
            &short_deadlines(None),
            &Peer::by_address(addr),
            &envelope(),
            &message,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::WriteTimeout {
                    stage: Stage::Message,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_temporary());
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_peer_silent_after_starttls_is_a_temporary_tls_timeout() {
        let addr =
            stalling_peer(&["220 peer\r\n", "250-peer\r\n250 STARTTLS\r\n", "220 go\r\n"]).await;
        let roots = crate::tls::client_config_with_roots(b"").unwrap();
        let err = deliver_to(
            &short_deadlines(Some(roots)),
            &Peer::by_address(addr),
            &envelope(),
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::TlsTimeout { .. }), "{err}");
        assert!(err.is_temporary());
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_greeting_is_temporary() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            drop(stream);
        });
        let err = deliver_to(
            &short_deadlines(None),
            &Peer::by_address(addr),
            &envelope(),
            b"x",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::Io { .. }), "{err}");
        assert!(err.is_temporary());
    }

    #[test]
    fn a_peer_is_named_by_host_and_address() {
        let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
        assert_eq!(Peer::by_address(addr).label(), "127.0.0.1");
        let mx = Peer {
            addr,
            name: "mx.b.test".into(),
        };
        assert_eq!(mx.label(), "mx.b.test [127.0.0.1]");
    }

    #[test]
    fn classifies_4xx_as_temporary_and_5xx_as_permanent() {
        let t = RecipientOutcome::from_failure(Reply::new(451, (4, 4, 3), "x"));
        assert!(matches!(t, RecipientOutcome::Temporary(_)));
        let p = RecipientOutcome::from_failure(Reply::new(550, (5, 1, 1), "x"));
        assert!(matches!(p, RecipientOutcome::Permanent(_)));
    }
}
