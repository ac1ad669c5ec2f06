//! The delivering client: one message to one host, with STARTTLS when offered (or
//! required), and every recipient's result classified for the retry logic.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig as TlsClientConfig;
use tokio_rustls::TlsConnector;
use tracing::{debug, info, info_span, Instrument};

use crate::lines::{read_line, Line};
use crate::reply::{Reply, Severity};

/// Longest reply line the client reads.
const MAX_REPLY_LINE: usize = 4096;

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
    /// Time allowed for each reply to a command (RFC 5321 §4.5.3.2 suggests 5 minutes).
    pub command_timeout: Duration,
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
            .finish_non_exhaustive()
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
    /// fixed; the queue's lifetime bounds the retries, as Postfix defers them). A refusal
    /// is temporary for a 4xx reply and permanent for 5xx.
    pub fn is_temporary(&self) -> bool {
        match self {
            ClientError::Rejected { reply, .. } => reply.severity() == Severity::Temporary,
            ClientError::Protocol { .. } | ClientError::ServerName(_) => false,
            _ => true,
        }
    }
}

/// A connection's reader and writer for the client side.
struct Wire<S> {
    reader: BufReader<S>,
    host: String,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(stream: S, host: &str, timeout: Duration) -> Self {
        Wire {
            reader: BufReader::new(stream),
            host: host.to_string(),
            timeout,
        }
    }

    fn io_err(&self, stage: Stage, source: io::Error) -> ClientError {
        ClientError::Io {
            stage,
            host: self.host.clone(),
            source,
        }
    }

    async fn send(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), ClientError> {
        let stream = self.reader.get_mut();
        let r = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        }
        .await;
        r.map_err(|e| self.io_err(stage, e))
    }

    async fn command(&mut self, stage: Stage, line: &str) -> Result<Reply, ClientError> {
        debug!(command = %line.split(':').next().unwrap_or(line), "send");
        self.send(stage, format!("{line}\r\n").as_bytes()).await?;
        self.reply(stage, self.timeout).await
    }

    /// Reads one (possibly multi-line) reply (RFC 5321 §4.2.1).
    async fn reply(&mut self, stage: Stage, timeout: Duration) -> Result<Reply, ClientError> {
        let read = async {
            let mut lines = Vec::new();
            let mut buf = Vec::new();
            loop {
                match read_line(&mut self.reader, MAX_REPLY_LINE, &mut buf).await {
                    Ok(Line::Complete) => {}
                    Ok(_) => return Err(None),
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
    deliver_inner(config, host, port, envelope, message)
        .instrument(span)
        .await
}

async fn deliver_inner(
    config: &ClientConfig,
    host: &str,
    port: u16,
    envelope: &OutboundEnvelope,
    message: &[u8],
) -> Result<DeliveryReport, ClientError> {
    let io_err = |source| ClientError::Io {
        stage: Stage::Connect,
        host: host.to_string(),
        source,
    };
    let tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ClientError::Timeout {
            stage: Stage::Connect,
            host: host.to_string(),
        })?
        .map_err(io_err)?;
    let mut wire = Wire::new(tcp, host, config.command_timeout);
    let greeting = wire.reply(Stage::Connect, config.command_timeout).await?;
    if greeting.code != 220 {
        let _ = wire.command(Stage::Connect, "QUIT").await;
        return Err(wire.refused(Stage::Connect, greeting));
    }
    let extensions = wire.ehlo(&config.helo_name).await?;
    let offers_tls = extensions.iter().any(|e| e == "STARTTLS");
    let tls = match (&config.tls, offers_tls) {
        (Some(tls), true) => tls.clone(),
        _ => {
            if config.require_tls {
                // Nothing is sent in clear when TLS is required.
                let _ = wire.command(Stage::StartTls, "QUIT").await;
                return Err(ClientError::TlsRequired {
                    host: host.to_string(),
                });
            }
            return transact(&mut wire, config, envelope, message, false).await;
        }
    };
    let reply = wire.command(Stage::StartTls, "STARTTLS").await?;
    if reply.code != 220 {
        if config.require_tls {
            let _ = wire.command(Stage::StartTls, "QUIT").await;
            return Err(wire.refused(Stage::StartTls, reply));
        }
        return transact(&mut wire, config, envelope, message, false).await;
    }
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| ClientError::ServerName(host.to_string()))?;
    let stream = TlsConnector::from(tls)
        .connect(name, wire.reader.into_inner())
        .await
        .map_err(|source| ClientError::Tls {
            host: host.to_string(),
            source,
        })?;
    let mut wire = Wire::new(stream, host, config.command_timeout);
    // RFC 3207 §4.2: the client discards what it knew and sends EHLO again.
    wire.ehlo(&config.helo_name).await?;
    transact(&mut wire, config, envelope, message, true).await
}

/// MAIL, RCPT for each recipient, DATA, the message, QUIT.
async fn transact<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    config: &ClientConfig,
    envelope: &OutboundEnvelope,
    message: &[u8],
    tls: bool,
) -> Result<DeliveryReport, ClientError> {
    let reply = wire
        .command(
            Stage::MailFrom,
            &format!("MAIL FROM:<{}>", envelope.mail_from),
        )
        .await?;
    if reply.code != 250 {
        let _ = wire.command(Stage::MailFrom, "QUIT").await;
        return Err(wire.refused(Stage::MailFrom, reply));
    }
    let mut recipients = Vec::new();
    let mut accepted = Vec::new();
    for rcpt in &envelope.rcpt_to {
        let reply = wire
            .command(Stage::MailFrom, &format!("RCPT TO:<{rcpt}>"))
            .await?;
        if reply.code == 250 || reply.code == 251 {
            accepted.push(recipients.len());
            recipients.push((rcpt.clone(), RecipientOutcome::Delivered(reply)));
        } else {
            info!(rcpt = %rcpt, reply = %reply, "recipient refused");
            recipients.push((rcpt.clone(), RecipientOutcome::from_failure(reply)));
        }
    }
    if accepted.is_empty() {
        let _ = wire.command(Stage::Data, "QUIT").await;
        return Ok(DeliveryReport { recipients, tls });
    }
    let reply = wire.command(Stage::Data, "DATA").await?;
    if reply.code != 354 {
        let _ = wire.command(Stage::Data, "QUIT").await;
        for &i in &accepted {
            recipients[i].1 = RecipientOutcome::from_failure(reply.clone());
        }
        return Ok(DeliveryReport { recipients, tls });
    }
    wire.send(Stage::Message, &dot_stuff(message)).await?;
    let reply = wire.reply(Stage::Message, config.data_timeout).await?;
    info!(reply = %reply, tls, "message sent");
    if reply.code != 250 {
        for &i in &accepted {
            recipients[i].1 = RecipientOutcome::from_failure(reply.clone());
        }
    } else {
        for &i in &accepted {
            recipients[i].1 = RecipientOutcome::Delivered(reply.clone());
        }
    }
    let _ = wire.command(Stage::Message, "QUIT").await;
    Ok(DeliveryReport { recipients, tls })
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

    #[test]
    fn classifies_4xx_as_temporary_and_5xx_as_permanent() {
        let t = RecipientOutcome::from_failure(Reply::new(451, (4, 4, 3), "x"));
        assert!(matches!(t, RecipientOutcome::Temporary(_)));
        let p = RecipientOutcome::from_failure(Reply::new(550, (5, 1, 1), "x"));
        assert!(matches!(p, RecipientOutcome::Permanent(_)));
    }
}
