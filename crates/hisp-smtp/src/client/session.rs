//! One open SMTP session as the delivering client: connected, greeted, EHLO (and
//! STARTTLS with a second EHLO) done once, then any number of mail transactions.

use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::TlsConnector;
use tracing::{debug, info};

use super::{
    dot_stuff, ClientConfig, ClientError, ClientStream, DeliveryReport, OutboundEnvelope, Peer,
    RecipientOutcome, Stage, Wire, DATA_BLOCK,
};
use crate::reply::Reply;

/// An open session with one SMTP server, ready for a mail transaction.
///
/// Every step keeps the deadlines of [`ClientConfig`] whether the session is new or
/// has served transactions before: each command written and answered within the
/// command deadline, each block of the message text within the data block deadline,
/// the reply to the final dot within the data deadline.
pub struct OutboundSession {
    wire: Wire<Box<dyn ClientStream>>,
    tls: bool,
    pipelining: bool,
    transactions: usize,
    handed_over: bool,
}

impl std::fmt::Debug for OutboundSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSession")
            .field("host", &self.wire.host)
            .field("tls", &self.tls)
            .field("pipelining", &self.pipelining)
            .field("transactions", &self.transactions)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl OutboundSession {
    /// Connects to `peer`, reads the greeting, sends EHLO and, when the server offers
    /// it and TLS is configured, STARTTLS with the certificate checked against the
    /// peer's name (RFC 3207 §4.1) and EHLO again (RFC 3207 §4.2).
    ///
    /// With [`ClientConfig::require_tls`], a server without STARTTLS (or refusing it)
    /// gets QUIT and nothing else: [`ClientError::TlsRequired`] or the refusal.
    pub async fn open(config: &ClientConfig, peer: &Peer) -> Result<Self, ClientError> {
        Self::open_at(config, peer.addr, &peer.name, &peer.label()).await
    }

    /// As [`open`](Self::open), to `addr`, TLS checked against `tls_name`, the peer
    /// named `host` in errors.
    pub(super) async fn open_at(
        config: &ClientConfig,
        addr: impl ToSocketAddrs,
        tls_name: &str,
        host: &str,
    ) -> Result<Self, ClientError> {
        let io_err = |source| ClientError::Io {
            stage: Stage::Connect,
            host: host.to_string(),
            source,
        };
        let tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                stage: Stage::Connect,
                host: host.to_string(),
            })?
            .map_err(io_err)?;
        let tcp: Box<dyn ClientStream> = Box::new(tcp);
        let mut wire = Wire::new(tcp, host, config.command_timeout);
        let greeting = wire.reply(Stage::Connect, config.command_timeout).await?;
        if greeting.code != 220 {
            let _ = wire.command(Stage::Connect, "QUIT").await;
            return Err(wire.refused(Stage::Connect, greeting));
        }
        let extensions = wire.ehlo(&config.helo_name).await?;
        let offers_tls = extensions.iter().any(|e| e == "STARTTLS");
        let plain = |wire, extensions: &[String]| OutboundSession {
            pipelining: offers_pipelining(extensions),
            wire,
            tls: false,
            transactions: 0,
            handed_over: false,
        };
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
                return Ok(plain(wire, &extensions));
            }
        };
        let reply = wire.command(Stage::StartTls, "STARTTLS").await?;
        if reply.code != 220 {
            if config.require_tls {
                let _ = wire.command(Stage::StartTls, "QUIT").await;
                return Err(wire.refused(Stage::StartTls, reply));
            }
            return Ok(plain(wire, &extensions));
        }
        let name = ServerName::try_from(tls_name.to_string())
            .map_err(|_| ClientError::ServerName(tls_name.to_string()))?;
        let handshake = TlsConnector::from(tls).connect(name, wire.reader.into_inner());
        let stream = tokio::time::timeout(config.command_timeout, handshake)
            .await
            .map_err(|_| ClientError::TlsTimeout {
                host: host.to_string(),
            })?
            .map_err(|source| ClientError::Tls {
                host: host.to_string(),
                source,
            })?;
        let stream: Box<dyn ClientStream> = Box::new(stream);
        let mut wire = Wire::new(stream, host, config.command_timeout);
        // RFC 3207 §4.2: the client discards what it knew and sends EHLO again.
        let extensions = wire.ehlo(&config.helo_name).await?;
        Ok(OutboundSession {
            pipelining: offers_pipelining(&extensions),
            wire,
            tls: true,
            transactions: 0,
            handed_over: false,
        })
    }

    /// One mail transaction: RSET first when the session served one before (RFC
    /// 5321 §4.1.1.5), then MAIL FROM, a RCPT TO for each recipient, DATA and the
    /// message. With PIPELINING offered, MAIL FROM and every RCPT TO go in one
    /// write and their replies are read in order (RFC 2920 §3.1); otherwise one
    /// command at a time. DATA waits for the replies either way.
    ///
    /// Recipients refused at RCPT get their own outcome; the outcome of the final
    /// dot applies to every accepted recipient. A failure before any recipient could
    /// be tried is an error for all of them. The session stays open for another
    /// transaction unless [`is_open`](Self::is_open) says otherwise.
    pub async fn send(
        &mut self,
        config: &ClientConfig,
        envelope: &OutboundEnvelope,
        message: &[u8],
    ) -> Result<DeliveryReport, ClientError> {
        self.handed_over = false;
        if self.transactions > 0 {
            self.reset().await?;
        }
        self.transactions += 1;
        let (mail, replies) = if self.pipelining {
            self.envelope_pipelined(envelope).await?
        } else {
            self.envelope_one_by_one(envelope).await?
        };
        if mail.code != 250 {
            return Err(self.wire.refused(Stage::MailFrom, mail));
        }
        let tls = self.tls;
        let mut recipients = Vec::new();
        let mut accepted = Vec::new();
        for (rcpt, reply) in envelope.rcpt_to.iter().zip(replies) {
            if reply.code == 250 || reply.code == 251 {
                accepted.push(recipients.len());
                recipients.push((rcpt.clone(), RecipientOutcome::Delivered(reply)));
            } else {
                info!(rcpt = %rcpt, reply = %reply, "recipient refused");
                recipients.push((rcpt.clone(), RecipientOutcome::from_failure(reply)));
            }
        }
        if accepted.is_empty() {
            return Ok(DeliveryReport { recipients, tls });
        }
        let reply = self.wire.command(Stage::Data, "DATA").await?;
        if reply.code != 354 {
            for &i in &accepted {
                recipients[i].1 = RecipientOutcome::from_failure(reply.clone());
            }
            return Ok(DeliveryReport { recipients, tls });
        }
        self.wire
            .send(
                Stage::Message,
                &dot_stuff(message),
                DATA_BLOCK,
                config.data_block_timeout,
            )
            .await?;
        // From here a broken connection leaves it unknown whether the server took
        // the message (RFC 1047): no one may send it again at once.
        self.handed_over = true;
        let reply = self.wire.reply(Stage::Message, config.data_timeout).await?;
        info!(reply = %reply, tls, "message sent");
        for &i in &accepted {
            recipients[i].1 = if reply.code == 250 {
                RecipientOutcome::Delivered(reply.clone())
            } else {
                RecipientOutcome::from_failure(reply.clone())
            };
        }
        Ok(DeliveryReport { recipients, tls })
    }

    /// MAIL FROM, then each RCPT TO after the reply to the one before; the RCPTs
    /// are sent only when MAIL FROM was accepted.
    async fn envelope_one_by_one(
        &mut self,
        envelope: &OutboundEnvelope,
    ) -> Result<(Reply, Vec<Reply>), ClientError> {
        let mail = self
            .wire
            .command(
                Stage::MailFrom,
                &format!("MAIL FROM:<{}>", envelope.mail_from),
            )
            .await?;
        let mut replies = Vec::new();
        if mail.code == 250 {
            for rcpt in &envelope.rcpt_to {
                let reply = self
                    .wire
                    .command(Stage::MailFrom, &format!("RCPT TO:<{rcpt}>"))
                    .await?;
                replies.push(reply);
            }
        }
        Ok((mail, replies))
    }

    /// MAIL FROM and every RCPT TO in one write, then their replies in order (RFC
    /// 2920 §3.1: the server answers each command of the group, so every reply is
    /// read even when MAIL FROM was refused).
    async fn envelope_pipelined(
        &mut self,
        envelope: &OutboundEnvelope,
    ) -> Result<(Reply, Vec<Reply>), ClientError> {
        let mut group = format!("MAIL FROM:<{}>\r\n", envelope.mail_from);
        for rcpt in &envelope.rcpt_to {
            group.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        }
        debug!(
            recipients = envelope.rcpt_to.len(),
            "send MAIL FROM and RCPT TO pipelined"
        );
        let timeout = self.wire.timeout;
        self.wire
            .send(Stage::MailFrom, group.as_bytes(), group.len(), timeout)
            .await?;
        let mail = self.wire.reply(Stage::MailFrom, timeout).await?;
        let mut replies = Vec::with_capacity(envelope.rcpt_to.len());
        for _ in &envelope.rcpt_to {
            replies.push(self.wire.reply(Stage::MailFrom, timeout).await?);
        }
        Ok((mail, replies))
    }

    /// RSET (RFC 5321 §4.1.1.5): whatever the last transaction left is dropped and
    /// the server is asked whether it is still there; anything but 250 is an error.
    pub async fn reset(&mut self) -> Result<(), ClientError> {
        let reply = self.wire.command(Stage::Reset, "RSET").await?;
        if reply.code == 250 {
            Ok(())
        } else {
            Err(self.wire.refused(Stage::Reset, reply))
        }
    }

    /// Ends the session: QUIT (RFC 5321 §4.1.1.10) when it is still open, waiting at
    /// most the command deadline for the reply, then closes the connection.
    pub async fn quit(mut self) {
        if self.is_open() {
            let _ = self.wire.command(Stage::Connect, "QUIT").await;
        }
    }

    /// Ends the session as [`quit`](Self::quit) does, waiting at most `wait` for
    /// the reply to QUIT.
    pub async fn quit_within(self, wait: Duration) {
        let _ = tokio::time::timeout(wait, self.quit()).await;
    }

    /// Whether another transaction may be tried: the peer has not closed the
    /// connection or said 421, and no deadline passed.
    pub fn is_open(&self) -> bool {
        self.wire.is_open()
    }

    /// Whether the peer closed or reset the connection, or said 421 (RFC 5321 §3.8).
    pub fn closed_by_peer(&self) -> bool {
        self.wire.closed_by_peer
    }

    /// Whether the last transaction's message text was written to the final dot: a
    /// failure after that leaves it unknown whether the server took the message.
    pub fn handed_over(&self) -> bool {
        self.handed_over
    }

    /// Whether the session runs over TLS (STARTTLS).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Whether the server offered PIPELINING (RFC 2920) in its last EHLO reply.
    pub fn pipelining(&self) -> bool {
        self.pipelining
    }

    /// How many transactions the session has begun.
    pub fn transactions(&self) -> usize {
        self.transactions
    }

    /// The peer as errors name it.
    pub fn host(&self) -> &str {
        &self.wire.host
    }
}

/// Whether the EHLO keywords offer PIPELINING (RFC 2920 §2).
fn offers_pipelining(extensions: &[String]) -> bool {
    extensions
        .iter()
        .any(|e| e.split_whitespace().next() == Some("PIPELINING"))
}
