//! The command loop of one SMTP session: sequence, syntax and limits. Decisions go to
//! the [`Policy`].

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use smtp_proto::{Request, AUTH_LOGIN, AUTH_PLAIN};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::{Role, ServerConfig};
use crate::conn::Conn;
use crate::data::{read_data, DataOutcome};
use crate::lines::Line;
use crate::policy::Policy;
use crate::reply::Reply;
use crate::sasl;
use crate::session::{BodyType, Envelope, Helo, Session};

/// RFC 4954 §4: an AUTH command line with its initial response may be 12288 octets.
const MAX_AUTH_LINE: usize = 12288;

/// How a pass of the command loop ended.
pub(crate) enum End {
    /// The session is over; close the connection.
    Close,
    /// The client asked for TLS and got 220; hand the stream to the TLS handshake.
    StartTls,
}

/// What one command asks the loop to do next.
enum Next {
    Continue,
    Close,
    StartTls,
}

/// The state of one session between commands.
pub(crate) struct Dialogue {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) session: Session,
    /// The mail transaction in progress, from MAIL to the end of DATA or RSET.
    txn: Option<Envelope>,
    txn_count: u32,
    auth_failures: u32,
    bad_commands: u32,
    /// Commands since the last accepted message that did not move a transaction on.
    without_progress: u32,
}

impl Dialogue {
    pub(crate) fn new(
        config: Arc<ServerConfig>,
        policy: Arc<dyn Policy>,
        session: Session,
    ) -> Self {
        Dialogue {
            config,
            policy,
            session,
            txn: None,
            txn_count: 0,
            auth_failures: 0,
            bad_commands: 0,
            without_progress: 0,
        }
    }

    /// RFC 3207 §4.2: after the TLS handshake the server discards what it knew from the
    /// client (EHLO, AUTH, any transaction).
    pub(crate) fn restart_after_tls(&mut self) {
        self.session.tls = true;
        self.session.helo = None;
        self.session.account = None;
        self.txn = None;
    }

    fn tls_offered(&self) -> bool {
        self.config.tls.is_some() && !self.session.tls
    }

    /// AUTH is offered on submission over TLS, or in clear to a loopback peer if allowed.
    fn auth_offered(&self) -> bool {
        self.config.role == Role::Submission
            && (self.session.tls
                || (self.config.auth_on_loopback_without_tls && self.session.peer_is_loopback()))
    }

    fn ehlo_reply(&self) -> String {
        let mut lines = vec![format!(
            "{} Hello {}",
            self.config.hostname,
            self.helo_name()
        )];
        lines.push("PIPELINING".into());
        lines.push(format!("SIZE {}", self.config.max_message_size));
        lines.push("8BITMIME".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        if self.tls_offered() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        // RFC 2034 §3: no enhanced code on the EHLO reply.
        Reply::plain(250, lines.join("\n")).to_wire()
    }

    fn helo_name(&self) -> &str {
        self.session.helo.as_ref().map_or("", |h| h.name.as_str())
    }

    /// Runs commands until the session ends or the client starts TLS.
    pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        conn: &mut Conn<S>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> io::Result<End> {
        let mut line = Vec::new();
        loop {
            conn.flush_if_idle().await?;
            let idle = self.txn.is_none();
            let read_max = self.config.max_line_length.max(MAX_AUTH_LINE);
            let timeout = self.config.command_timeout;
            let read = tokio::select! {
                biased;
                () = shutdown_requested(shutdown), if idle => {
                    conn.queue(&Reply::shutting_down());
                    conn.flush().await?;
                    return Ok(End::Close);
                }
                r = conn.read_line(read_max, timeout, &mut line) => r?,
            };
            let next = match read {
                None => {
                    conn.queue(&timed_out(conn.life_over()));
                    Next::Close
                }
                Some(Line::Eof) => return Ok(End::Close),
                Some(Line::TooLong) => {
                    self.bad_command(conn, Reply::line_too_long(self.config.max_line_length))
                }
                Some(Line::Complete) => self.command(conn, &line).await?,
            };
            match next {
                Next::Continue => {}
                Next::Close => {
                    conn.flush().await?;
                    return Ok(End::Close);
                }
                Next::StartTls => return Ok(End::StartTls),
            }
        }
    }

    /// Counts a malformed command and queues its reply; too many end the session.
    fn bad_command<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        reply: Reply,
    ) -> Next {
        conn.queue(&reply);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            conn.queue(&Reply::new(
                421,
                (4, 7, 0),
                "Too many errors, closing connection",
            ));
            return Next::Close;
        }
        Next::Continue
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        conn: &mut Conn<S>,
        line: &[u8],
    ) -> io::Result<Next> {
        let is_auth = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"AUTH");
        if !is_auth && line.len() > self.config.max_line_length {
            return Ok(self.bad_command(conn, Reply::line_too_long(self.config.max_line_length)));
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => return Ok(self.bad_command(conn, parse_error_reply(e))),
        };
        debug!(command = request.name(), "command");
        // MAIL and RCPT count when refused, DATA when there is no transaction to
        // take it; QUIT ends the session. Everything else (AUTH and STARTTLS too, which
        // a session needs once) counts as a command without progress.
        let counted = match request {
            Request::Mail { .. } | Request::Rcpt { .. } | Request::Quit => false,
            Request::Data => self.txn.as_ref().is_none_or(|e| e.rcpt_to.is_empty()),
            _ => true,
        };
        if counted && self.no_progress_limit_passed() {
            conn.queue(&Reply::no_progress());
            return Ok(Next::Close);
        }
        let next = match request {
            Request::Ehlo { host } => {
                self.greeted(&host, true);
                conn.queue_raw(&self.ehlo_reply());
                Next::Continue
            }
            Request::Helo { host } => {
                self.greeted(&host, false);
                conn.queue(&Reply::plain(250, self.config.hostname.clone()));
                Next::Continue
            }
            Request::Mail { from } => {
                let reply = self.mail(&from).await;
                if !reply.is_positive() && self.no_progress_limit_passed() {
                    conn.queue(&Reply::no_progress());
                    return Ok(Next::Close);
                }
                conn.queue(&reply);
                Next::Continue
            }
            Request::Rcpt { to } => {
                let reply = self.rcpt(&to.address).await;
                if !reply.is_positive() && self.no_progress_limit_passed() {
                    conn.queue(&Reply::no_progress());
                    return Ok(Next::Close);
                }
                conn.queue(&reply);
                Next::Continue
            }
            Request::Data => return self.data(conn).await,
            Request::Rset => {
                self.txn = None;
                conn.queue(&Reply::ok());
                Next::Continue
            }
            Request::Noop { .. } => {
                conn.queue(&Reply::ok());
                Next::Continue
            }
            Request::Quit => {
                conn.queue(&Reply::bye());
                Next::Close
            }
            Request::Vrfy { .. } => {
                conn.queue(&Reply::vrfy_cannot_verify());
                Next::Continue
            }
            Request::StartTls => self.starttls(conn).await?,
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.auth(conn, mechanism, &initial_response).await,
            other => {
                conn.queue(&Reply::not_implemented(other.name()));
                Next::Continue
            }
        };
        Ok(next)
    }

    /// Counts one command without progress; true when that passes the limit (the
    /// session then ends with [`Reply::no_progress`]).
    fn no_progress_limit_passed(&mut self) -> bool {
        self.without_progress += 1;
        if self.without_progress > self.config.max_commands_without_progress {
            info!(
                commands = self.without_progress,
                "too many commands without progress"
            );
            return true;
        }
        false
    }

    /// EHLO and HELO reset any transaction (RFC 5321 §4.1.4).
    fn greeted(&mut self, host: &str, extended: bool) {
        self.session.helo = Some(Helo {
            name: host.to_string(),
            extended,
        });
        self.txn = None;
    }

    async fn mail(&mut self, from: &smtp_proto::MailFrom<Cow<'_, str>>) -> Reply {
        if self.session.helo.is_none() {
            return Reply::bad_sequence("send EHLO or HELO first");
        }
        if self.txn.is_some() {
            return Reply::bad_sequence("nested MAIL command");
        }
        // RFC 4954 §6 / RFC 6409 §4.3: submission requires authentication.
        if self.config.role == Role::Submission && self.session.account.is_none() {
            return Reply::auth_required();
        }
        for (flag, name) in [
            (smtp_proto::MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
            (smtp_proto::MAIL_SMTPUTF8, "SMTPUTF8"),
            (smtp_proto::MAIL_REQUIRETLS, "REQUIRETLS"),
        ] {
            if from.flags & flag != 0 {
                return Reply::unsupported_parameter(name);
            }
        }
        // RFC 1870 §6: a declared size over the limit is refused at MAIL.
        if from.size > self.config.max_message_size {
            return Reply::too_big(self.config.max_message_size);
        }
        if let Err(reply) = self.policy.mail_from(&self.session, &from.address).await {
            info!(from = %from.address, reply = %reply, "MAIL refused");
            return reply;
        }
        self.txn_count += 1;
        self.txn = Some(Envelope {
            id: format!("{}.{}", self.session.id, self.txn_count),
            mail_from: from.address.to_string(),
            rcpt_to: Vec::new(),
            body: if from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0 {
                BodyType::EightBitMime
            } else {
                BodyType::SevenBit
            },
            declared_size: (from.size > 0).then_some(from.size),
        });
        Reply::sender_ok()
    }

    async fn rcpt(&mut self, to: &str) -> Reply {
        let Some(envelope) = self.txn.as_ref() else {
            return Reply::bad_sequence("need MAIL before RCPT");
        };
        if envelope.rcpt_to.len() >= self.config.max_recipients {
            return Reply::too_many_recipients(self.config.max_recipients);
        }
        if to.is_empty() {
            return Reply::new(501, (5, 1, 3), "Empty recipient address");
        }
        match self.policy.rcpt_to(&self.session, envelope, to).await {
            Ok(()) => {
                if let Some(e) = self.txn.as_mut() {
                    e.rcpt_to.push(to.to_string());
                }
                Reply::recipient_ok()
            }
            Err(reply) => {
                info!(rcpt = %to, reply = %reply, "RCPT refused");
                reply
            }
        }
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        conn: &mut Conn<S>,
    ) -> io::Result<Next> {
        let Some(envelope) = self.txn.clone() else {
            conn.queue(&Reply::bad_sequence("need MAIL and RCPT before DATA"));
            return Ok(Next::Continue);
        };
        if envelope.rcpt_to.is_empty() {
            // RFC 5321 §3.3: DATA without an accepted recipient gets 503 or 554.
            conn.queue(&Reply::new(554, (5, 5, 1), "No valid recipients"));
            return Ok(Next::Continue);
        }
        conn.queue(&Reply::start_data());
        conn.flush().await?;
        let span = info_span!("message", msg_id = %envelope.id, from = %envelope.mail_from);
        let end = conn.end();
        let reading = read_data(
            &mut conn.reader,
            self.config.max_message_size,
            self.config.max_data_line_length,
            self.config.data_timeout,
        );
        let outcome = match end {
            Some(end) => match tokio::time::timeout_at(end, reading).await {
                Ok(outcome) => outcome?,
                Err(_) => {
                    span.in_scope(|| info!("session time limit reached during DATA"));
                    conn.queue(&Reply::session_expired());
                    return Ok(Next::Close);
                }
            },
            None => reading.await?,
        };
        self.txn = None;
        let reply = match outcome {
            DataOutcome::Message(message) => {
                let message = self.with_trace_field(&envelope, message);
                let reply = self
                    .policy
                    .data(&self.session, &envelope, message)
                    .instrument(span.clone())
                    .await;
                span.in_scope(|| info!(rcpts = envelope.rcpt_to.len(), reply = %reply, "DATA"));
                if reply.is_positive() {
                    // A message accepted is progress: the count starts again.
                    self.without_progress = 0;
                }
                reply
            }
            DataOutcome::TooBig => Reply::too_big(self.config.max_message_size),
            DataOutcome::LineTooLong => Reply::data_line_too_long(self.config.max_data_line_length),
            DataOutcome::Eof => return Ok(Next::Close),
            DataOutcome::Timeout => {
                conn.queue(&Reply::timeout());
                return Ok(Next::Close);
            }
        };
        conn.queue(&reply);
        Ok(Next::Continue)
    }

    /// RFC 5321 §4.4: the receiving server prepends a `Received:` field.
    fn with_trace_field(&self, envelope: &Envelope, message: Vec<u8>) -> Vec<u8> {
        if !self.config.add_received {
            return message;
        }
        // RFC 3848 §1: ESMTP, with S for TLS and A for authentication.
        let mut with = String::from("ESMTP");
        if self.session.tls {
            with.push('S');
        }
        if self.session.account.is_some() {
            with.push('A');
        }
        let date = hisp_date::rfc5322(OffsetDateTime::now_utc());
        let helo: String = self
            .helo_name()
            .chars()
            .filter(|c| !c.is_control() && *c != '(' && *c != ')')
            .collect();
        let field = format!(
            "Received: from {} ({})\r\n\tby {} (hisp) with {} id {};\r\n\t{}\r\n",
            if helo.is_empty() { "unknown" } else { &helo },
            self.session.peer.ip(),
            self.config.hostname,
            with,
            envelope.id,
            date
        );
        let mut out = Vec::with_capacity(field.len() + message.len());
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(&message);
        out
    }

    async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
    ) -> io::Result<Next> {
        if self.config.tls.is_none() {
            conn.queue(&Reply::not_implemented("STARTTLS"));
            return Ok(Next::Continue);
        }
        if self.session.tls {
            conn.queue(&Reply::bad_sequence("TLS already active"));
            return Ok(Next::Continue);
        }
        conn.queue(&Reply::ready_for_tls());
        conn.flush().await?;
        if conn.has_buffered_input() {
            // Commands pipelined after STARTTLS arrived in clear text and could be an
            // injection; they are dropped with the buffer (RFC 3207 §4.2 restarts clean).
            warn!("discarding clear-text input pipelined after STARTTLS");
        }
        Ok(Next::StartTls)
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        conn: &mut Conn<S>,
        mechanism: u64,
        initial: &str,
    ) -> io::Result<Next> {
        let refusal = if self.config.role != Role::Submission {
            Some(Reply::not_implemented("AUTH"))
        } else if self.session.helo.as_ref().is_none_or(|h| !h.extended) {
            Some(Reply::bad_sequence("send EHLO first"))
        } else if self.session.account.is_some() {
            // RFC 4954 §4: AUTH after a successful AUTH gets 503.
            Some(Reply::bad_sequence("already authenticated"))
        } else if self.txn.is_some() {
            // RFC 4954 §4: no AUTH during a mail transaction.
            Some(Reply::bad_sequence(
                "AUTH not permitted during a mail transaction",
            ))
        } else if !self.auth_offered() {
            Some(Reply::encryption_required())
        } else if mechanism != AUTH_PLAIN && mechanism != AUTH_LOGIN {
            Some(Reply::unsupported_mechanism())
        } else {
            None
        };
        if let Some(reply) = refusal {
            conn.queue(&reply);
            return Ok(Next::Continue);
        }
        let (user, password) = if mechanism == AUTH_PLAIN {
            let response = match self.sasl_step(conn, initial, "").await? {
                Ok(r) => r,
                Err(next) => return Ok(next),
            };
            match sasl::plain(&response) {
                Ok(c) => c,
                Err(e) => {
                    conn.queue(&Reply::new(
                        501,
                        (5, 5, 2),
                        format!("Invalid AUTH response: {e}"),
                    ));
                    return Ok(Next::Continue);
                }
            }
        } else {
            let user = match self.sasl_step(conn, initial, "Username:").await? {
                Ok(u) => u,
                Err(next) => return Ok(next),
            };
            let password = match self.sasl_step(conn, "", "Password:").await? {
                Ok(p) => p,
                Err(next) => return Ok(next),
            };
            match (sasl::text(user), sasl::text(password)) {
                (Ok(u), Ok(p)) => (u, p),
                _ => {
                    conn.queue(&Reply::new(
                        501,
                        (5, 5, 2),
                        "Invalid AUTH response: not UTF-8",
                    ));
                    return Ok(Next::Continue);
                }
            }
        };
        match self
            .policy
            .authenticate(&self.session, &user, &password)
            .await
        {
            Ok(account) => {
                info!(user = %account.name, "authenticated");
                self.session.account = Some(account);
                conn.queue(&Reply::auth_ok());
                Ok(Next::Continue)
            }
            Err(reply) => {
                self.auth_failures += 1;
                warn!(user = %user, failures = self.auth_failures, "authentication failed");
                conn.queue(&reply);
                if self.auth_failures >= self.config.max_auth_failures {
                    conn.queue(&Reply::new(
                        421,
                        (4, 7, 0),
                        "Too many authentication failures",
                    ));
                    return Ok(Next::Close);
                }
                Ok(Next::Continue)
            }
        }
    }

    /// One SASL step: the initial response if given, otherwise a `334` challenge and the
    /// client's line. `Err` with what the session does next when the exchange ended:
    /// cancelled or bad base64 (the reply is queued, the session goes on), a timeout (421
    /// queued, the session closes) or the client closing.
    async fn sasl_step<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Conn<S>,
        initial: &str,
        challenge: &str,
    ) -> io::Result<Result<Vec<u8>, Next>> {
        let text = if initial.is_empty() {
            conn.queue_raw(&format!("334 {}\r\n", sasl::encode(challenge)));
            conn.flush().await?;
            let mut line = Vec::new();
            match conn
                .read_line(MAX_AUTH_LINE, self.config.command_timeout, &mut line)
                .await?
            {
                Some(Line::Complete) => String::from_utf8_lossy(&line).trim().to_string(),
                Some(Line::TooLong) => {
                    conn.queue(&Reply::line_too_long(MAX_AUTH_LINE));
                    return Ok(Err(Next::Continue));
                }
                Some(Line::Eof) => return Ok(Err(Next::Close)),
                None => {
                    // RFC 5321 §3.8: 421, then close, as for a command timeout.
                    conn.queue(&timed_out(conn.life_over()));
                    return Ok(Err(Next::Close));
                }
            }
        } else {
            initial.to_string()
        };
        // RFC 4954 §4: a lone "*" cancels the exchange with 501.
        if text == "*" {
            conn.queue(&Reply::auth_cancelled());
            return Ok(Err(Next::Continue));
        }
        match sasl::decode(&text) {
            Ok(d) => Ok(Ok(d)),
            Err(e) => {
                conn.queue(&Reply::new(
                    501,
                    (5, 5, 2),
                    format!("Invalid AUTH response: {e}"),
                ));
                Ok(Err(Next::Continue))
            }
        }
    }
}

/// Resolves once shutdown has been requested; never if the handle is gone.
pub(crate) async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The reply when a read's deadline passed: the end of the session's life, or the
/// command timeout (RFC 5321 §4.5.3.2.7); logged.
fn timed_out(life_over: bool) -> Reply {
    if life_over {
        info!("session time limit reached");
        Reply::session_expired()
    } else {
        info!("command timeout");
        Reply::timeout()
    }
}

/// The reply to a command line the parser refused.
fn parse_error_reply(e: smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => Reply::unknown_command(),
        E::InvalidSenderAddress => Reply::new(501, (5, 1, 7), "Invalid sender address syntax"),
        E::InvalidRecipientAddress => {
            Reply::new(501, (5, 1, 3), "Invalid recipient address syntax")
        }
        E::SyntaxError { syntax } => Reply::syntax_error(&format!("expected {syntax}")),
        E::InvalidParameter { param } => Reply::syntax_error(&format!("invalid {param}")),
        E::UnsupportedParameter { param } => Reply::unsupported_parameter(&param),
        E::ResponseTooLong => Reply::line_too_long(512),
        E::NeedsMoreData { .. } | E::InvalidResponse { .. } => {
            Reply::syntax_error("incomplete command line")
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Role;
    use crate::fuzzing::{session, Setup};

    fn stalled(input: &[u8]) -> String {
        let setup = Setup {
            role: Role::Submission,
            loopback: true,
            stall: true,
            chunk: 0,
        };
        let out = session(setup, input);
        out.check().unwrap();
        String::from_utf8(out.replies).unwrap()
    }

    /// RFC 5321 §3.8 and §4.5.3.2.7: a client silent in the middle of an AUTH exchange
    /// gets one 421 and the connection is closed, as for a command timeout.
    #[test]
    fn auth_response_timeout_closes_the_session_rfc5321_3_8() {
        for (input, challenges) in [
            (&b"EHLO c.example\r\nAUTH PLAIN\r\n"[..], 1),
            (b"EHLO c.example\r\nAUTH LOGIN\r\n", 1),
            (b"EHLO c.example\r\nAUTH LOGIN YWxpY2U=\r\n", 1),
        ] {
            let replies = stalled(input);
            assert_eq!(replies.matches("\r\n334 ").count(), challenges, "{replies}");
            assert!(
                replies
                    .ends_with("\r\n421 4.4.2 Timeout waiting for command, closing connection\r\n"),
                "{replies}"
            );
            assert_eq!(replies.matches("421 ").count(), 1, "{replies}");
        }
    }

    fn backbone(input: &[u8]) -> String {
        let out = session(
            Setup {
                role: Role::Backbone,
                loopback: true,
                stall: false,
                chunk: 0,
            },
            input,
        );
        out.check().unwrap();
        String::from_utf8(out.replies).unwrap()
    }

    /// A client that only sends NOOP (or RSET, VRFY, ...) is closed with 421 4.7.0 once
    /// it passes `max_commands_without_progress` (50; the EHLO counts too).
    #[test]
    fn commands_without_progress_end_the_session_with_421_4_7_0() {
        let mut input = b"EHLO c.example\r\n".to_vec();
        for verb in ["NOOP", "RSET", "VRFY x", "HELP"].iter().cycle().take(60) {
            input.extend_from_slice(format!("{verb}\r\n").as_bytes());
        }
        let replies = backbone(&input);
        let answered = replies.lines().filter(|l| !l.starts_with("250-")).count();
        // Greeting, EHLO and 49 more, then the 421.
        assert_eq!(answered, 1 + 1 + 49 + 1, "{replies}");
        assert!(
            replies.ends_with(
                "\r\n421 4.7.0 Too many commands without progress, closing connection\r\n"
            ),
            "{replies}"
        );
    }

    /// Refused MAIL and RCPT, and DATA without a transaction, count as no progress.
    #[test]
    fn refused_transaction_commands_count_as_no_progress() {
        let mut input = b"EHLO c.example\r\n".to_vec();
        for _ in 0..60 {
            input.extend_from_slice(b"DATA\r\n");
        }
        let replies = backbone(&input);
        assert!(
            replies
                .ends_with("421 4.7.0 Too many commands without progress, closing connection\r\n"),
            "{replies}"
        );
    }

    /// An accepted message is progress: the count starts again after it.
    #[test]
    fn an_accepted_message_starts_the_count_again() {
        let mut input = b"EHLO c.example\r\n".to_vec();
        let noops = |input: &mut Vec<u8>| {
            for _ in 0..45 {
                input.extend_from_slice(b"NOOP\r\n");
            }
        };
        noops(&mut input);
        input.extend_from_slice(
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
        );
        noops(&mut input);
        input.extend_from_slice(b"QUIT\r\n");
        let replies = backbone(&input);
        assert!(replies.contains("250 2.0.0 Ok: queued as"), "{replies}");
        assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");
        assert!(!replies.contains("421 "), "{replies}");
    }

    /// A client that closes the connection in the middle of an AUTH exchange ends the
    /// session: nothing more is read or answered.
    #[test]
    fn auth_response_eof_ends_the_session() {
        let out = session(
            Setup {
                role: Role::Submission,
                loopback: true,
                stall: false,
                chunk: 0,
            },
            b"EHLO c.example\r\nAUTH PLAIN\r\n",
        );
        out.check().unwrap();
        let replies = String::from_utf8(out.replies).unwrap();
        assert!(replies.ends_with("\r\n334 \r\n"), "{replies}");
    }
}
