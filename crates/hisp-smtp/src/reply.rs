//! SMTP replies: the code, the enhanced status code (RFC 3463) and a reason a person
//! understands, chosen in one place for every refusal the gateway and the sessions give.

use std::fmt;

/// An enhanced status code `class.subject.detail` (RFC 3463 §2).
pub type Enhanced = (u8, u16, u16);

/// One SMTP reply, possibly multi-line.
///
/// `text` holds the human reason; a `\n` in it splits the reply into several lines, each
/// carrying the same code (RFC 5321 §4.2.1). Every reply built by the constructors below
/// carries an enhanced status code, except the greeting and the EHLO/HELO replies for
/// which RFC 2034 §3 excludes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2.2).
    pub code: u16,
    /// The enhanced status code (RFC 3463), if any.
    pub enhanced: Option<Enhanced>,
    /// The human-readable text; `\n` separates lines.
    pub text: String,
}

/// Whether a reply accepts, defers or refuses (RFC 5321 §4.2.1, first digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 2xx or 3xx: the command was accepted.
    Positive,
    /// 4xx: try again later.
    Temporary,
    /// 5xx (and anything unexpected): do not repeat.
    Permanent,
}

impl Reply {
    /// A reply with the given code, enhanced code and text.
    pub fn new(code: u16, enhanced: Enhanced, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: text.into(),
        }
    }

    /// A reply without an enhanced status code (greeting, EHLO/HELO: RFC 2034 §3).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// Classifies the reply by its first digit.
    pub fn severity(&self) -> Severity {
        match self.code / 100 {
            2 | 3 => Severity::Positive,
            4 => Severity::Temporary,
            _ => Severity::Permanent,
        }
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.severity() == Severity::Positive
    }

    /// `250 2.0.0 Ok`.
    pub fn ok() -> Self {
        Reply::new(250, (2, 0, 0), "Ok")
    }

    /// `250 2.0.0 Ok: queued as <id>`: the message is committed durably.
    pub fn ok_queued(id: &str) -> Self {
        Reply::new(250, (2, 0, 0), format!("Ok: queued as {id}"))
    }

    /// `250 2.1.0` for an accepted MAIL FROM.
    pub fn sender_ok() -> Self {
        Reply::new(250, (2, 1, 0), "Sender ok")
    }

    /// `250 2.1.5` for an accepted RCPT TO.
    pub fn recipient_ok() -> Self {
        Reply::new(250, (2, 1, 5), "Recipient ok")
    }

    /// `354` inviting the message text (RFC 5321 §4.1.1.4).
    pub fn start_data() -> Self {
        Reply::new(354, (2, 0, 0), "End data with <CR><LF>.<CR><LF>")
    }

    /// `221 2.0.0` answering QUIT.
    pub fn bye() -> Self {
        Reply::new(221, (2, 0, 0), "Bye")
    }

    /// `252 2.5.0`: VRFY is not answered, the address would be tried (RFC 5321 §3.5.3).
    pub fn vrfy_cannot_verify() -> Self {
        Reply::new(
            252,
            (2, 5, 0),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    /// `220 2.0.0 Ready to start TLS` (RFC 3207 §4).
    pub fn ready_for_tls() -> Self {
        Reply::new(220, (2, 0, 0), "Ready to start TLS")
    }

    /// `235 2.7.0 Authentication successful` (RFC 4954 §6).
    pub fn auth_ok() -> Self {
        Reply::new(235, (2, 7, 0), "Authentication successful")
    }

    /// `550 5.1.1 <addr>: not a Direct address: <reason>`: no usable trusted certificate.
    pub fn not_direct(addr: &str, reason: &str) -> Self {
        Reply::new(
            550,
            (5, 1, 1),
            format!("<{addr}>: not a Direct address: {reason}"),
        )
    }

    /// `451 4.4.3 <addr>: ...`: certificate discovery failed for now (DNS or LDAP down).
    pub fn temporary_discovery(addr: &str, reason: &str) -> Self {
        Reply::new(
            451,
            (4, 4, 3),
            format!(
                "<{addr}>: certificate discovery failed temporarily, try again later: {reason}"
            ),
        )
    }

    /// `530 5.7.0 Authentication required` (RFC 4954 §6).
    pub fn auth_required() -> Self {
        Reply::new(530, (5, 7, 0), "Authentication required")
    }

    /// `535 5.7.8`: wrong user name or password (RFC 4954 §6).
    pub fn auth_failed() -> Self {
        Reply::new(
            535,
            (5, 7, 8),
            "Authentication credentials invalid: wrong user name or password",
        )
    }

    /// `538 5.7.11`: AUTH offered only over TLS or from loopback (RFC 4954 §6).
    pub fn encryption_required() -> Self {
        Reply::new(
            538,
            (5, 7, 11),
            "Encryption required for requested authentication mechanism: use STARTTLS first",
        )
    }

    /// `504 5.5.4`: unknown SASL mechanism (RFC 4954 §4).
    pub fn unsupported_mechanism() -> Self {
        Reply::new(
            504,
            (5, 5, 4),
            "Unrecognized authentication mechanism: use PLAIN or LOGIN",
        )
    }

    /// `501 5.7.0`: the client cancelled the SASL exchange with `*` (RFC 4954 §4).
    pub fn auth_cancelled() -> Self {
        Reply::new(501, (5, 7, 0), "Authentication cancelled")
    }

    /// `550 5.7.1 <addr>: relaying denied`: the backbone takes mail for local domains only.
    pub fn relay_denied(addr: &str) -> Self {
        Reply::new(
            550,
            (5, 7, 1),
            format!("<{addr}>: relaying denied: this server accepts mail for its own domains only"),
        )
    }

    /// `550 5.7.1 <addr>: ...`: the authenticated account may not send as this address.
    pub fn sender_not_owned(addr: &str) -> Self {
        Reply::new(
            550,
            (5, 7, 1),
            format!("<{addr}>: sender address not owned by the authenticated account"),
        )
    }

    /// `552 5.3.4`: the message exceeds the size limit (RFC 1870 §6).
    pub fn too_big(limit: usize) -> Self {
        Reply::new(
            552,
            (5, 3, 4),
            format!("Message size exceeds fixed maximum message size of {limit} octets"),
        )
    }

    /// `452 4.5.3 Too many recipients` (RFC 5321 §4.5.3.1.10).
    pub fn too_many_recipients(limit: usize) -> Self {
        Reply::new(
            452,
            (4, 5, 3),
            format!("Too many recipients: at most {limit} per message"),
        )
    }

    /// `503 5.5.1 Bad sequence of commands` with the reason.
    pub fn bad_sequence(reason: &str) -> Self {
        Reply::new(
            503,
            (5, 5, 1),
            format!("Bad sequence of commands: {reason}"),
        )
    }

    /// `500 5.5.2`: command not recognised.
    pub fn unknown_command() -> Self {
        Reply::new(500, (5, 5, 2), "Command not recognized")
    }

    /// `501 5.5.4` with the reason: syntax error in parameters or arguments.
    pub fn syntax_error(reason: &str) -> Self {
        Reply::new(501, (5, 5, 4), format!("Syntax error: {reason}"))
    }

    /// `555 5.5.4`: a MAIL or RCPT parameter this server does not support (RFC 5321 §4.1.1.11).
    pub fn unsupported_parameter(param: &str) -> Self {
        Reply::new(
            555,
            (5, 5, 4),
            format!("Parameter {param} not recognized or not implemented"),
        )
    }

    /// `502 5.5.1`: command recognised but not implemented here.
    pub fn not_implemented(command: &str) -> Self {
        Reply::new(502, (5, 5, 1), format!("{command} not implemented"))
    }

    /// `500 5.5.2`: the command line exceeds the limit (RFC 5321 §4.5.3.1.4).
    pub fn line_too_long(limit: usize) -> Self {
        Reply::new(
            500,
            (5, 5, 2),
            format!("Line too long: at most {limit} octets including CRLF"),
        )
    }

    /// `554 5.6.0`: a text line of the message exceeds the limit (RFC 5321 §4.5.3.1.6).
    pub fn data_line_too_long(limit: usize) -> Self {
        Reply::new(
            554,
            (5, 6, 0),
            format!("Message refused: a text line exceeds {limit} octets including CRLF"),
        )
    }

    /// `421 4.4.2`: no command within the timeout (RFC 5321 §4.5.3.2.7).
    pub fn timeout() -> Self {
        Reply::new(
            421,
            (4, 4, 2),
            "Timeout waiting for command, closing connection",
        )
    }

    /// `421 4.4.2`: the session reached the end of its life (RFC 5321 §3.8: the server
    /// may close with 421).
    pub fn session_expired() -> Self {
        Reply::new(
            421,
            (4, 4, 2),
            "Session time limit reached, closing connection",
        )
    }

    /// `421 4.7.0`: too many commands that did not move a mail transaction on.
    pub fn no_progress() -> Self {
        Reply::new(
            421,
            (4, 7, 0),
            "Too many commands without progress, closing connection",
        )
    }

    /// `421 4.7.0`: this client address holds as many sessions as it may.
    pub fn too_many_connections_from(ip: std::net::IpAddr) -> Self {
        Reply::new(
            421,
            (4, 7, 0),
            format!("Too many connections from {ip}, try again later"),
        )
    }

    /// `454 4.7.0` with the reason: AUTH refused for now without checking the password
    /// (RFC 4954 §6: 454 4.7.0 is a temporary authentication failure).
    pub fn auth_temporarily_refused(reason: &str) -> Self {
        Reply::new(454, (4, 7, 0), reason.to_string())
    }

    /// `421 4.3.2`: the server is shutting down.
    pub fn shutting_down() -> Self {
        Reply::new(
            421,
            (4, 3, 2),
            "Service shutting down, closing connection; try again later",
        )
    }

    /// `454 4.7.0`: TLS is not available now (RFC 3207 §4).
    pub fn tls_unavailable() -> Self {
        Reply::new(454, (4, 7, 0), "TLS not available")
    }

    /// `451 4.3.0`: a local error; the client should try again later.
    pub fn local_error(reason: &str) -> Self {
        Reply::new(
            451,
            (4, 3, 0),
            format!("Local error in processing, try again later: {reason}"),
        )
    }

    /// Maps a refusal cause to its reply: the one place where 4xx vs 5xx is decided for
    /// the causes the gateway reports (STYLE.md, maddy-style).
    pub fn refusal(cause: &Refusal) -> Self {
        match cause {
            Refusal::NotDirect { address, reason } => Reply::not_direct(address, reason),
            Refusal::DiscoveryUnavailable { address, reason } => {
                Reply::temporary_discovery(address, reason)
            }
            Refusal::AuthRequired => Reply::auth_required(),
            Refusal::BadCredentials => Reply::auth_failed(),
            Refusal::RelayDenied { address } => Reply::relay_denied(address),
            Refusal::SenderNotOwned { address } => Reply::sender_not_owned(address),
            Refusal::TooBig { limit } => Reply::too_big(*limit),
            Refusal::MessagePolicy { reason } => {
                Reply::new(550, (5, 7, 1), format!("Message refused: {reason}"))
            }
            Refusal::BadHeader { reason } => {
                Reply::new(554, (5, 6, 0), format!("Message refused: {reason}"))
            }
            Refusal::LocalError { reason } => Reply::local_error(reason),
            Refusal::AuthThrottled { reason } | Refusal::AuthBusy { reason } => {
                Reply::auth_temporarily_refused(reason)
            }
        }
    }

    /// Writes the reply in wire form, CRLF-terminated, one line per `\n` in the text
    /// (RFC 5321 §4.2.1: `code-text` on every line but the last, `code SP text` on it).
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let lines: Vec<&str> = self.text.split('\n').collect();
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.push_str(&self.code.to_string());
            out.push(sep);
            if let Some((c, s, d)) = self.enhanced {
                out.push_str(&format!("{c}.{s}.{d} "));
            }
            out.push_str(line.trim_end_matches('\r'));
            out.push_str("\r\n");
        }
        out
    }

    /// Parses one complete reply (all its lines, each with its CRLF or LF) as sent by a
    /// server. The enhanced code is recognised when every line carries it.
    pub fn parse(lines: &[String]) -> Option<Reply> {
        let mut code = None;
        let mut enhanced: Option<Option<Enhanced>> = None;
        let mut texts = Vec::new();
        for line in lines {
            let line = line.trim_end_matches(['\r', '\n']);
            let c: u16 = line.get(..3)?.parse().ok()?;
            if *code.get_or_insert(c) != c {
                return None;
            }
            let rest = line.get(4..).unwrap_or("");
            let (enh, text) = split_enhanced(rest);
            enhanced = Some(match enhanced {
                None => enh,
                Some(prev) if prev == enh => prev,
                Some(_) => None,
            });
            texts.push(if enh.is_some() { text } else { rest }.to_string());
        }
        Some(Reply {
            code: code?,
            enhanced: enhanced.flatten(),
            text: texts.join("\n"),
        })
    }
}

/// Splits a leading `c.s.d ` enhanced code off a reply line's text.
fn split_enhanced(rest: &str) -> (Option<Enhanced>, &str) {
    let (head, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut parts = head.split('.');
    let parsed = (|| {
        let c: u8 = parts.next()?.parse().ok()?;
        let s: u16 = parts.next()?.parse().ok()?;
        let d: u16 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !(2..=5).contains(&c) {
            return None;
        }
        Some((c, s, d))
    })();
    match parsed {
        Some(e) => (Some(e), text),
        None => (None, rest),
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.enhanced {
            Some((c, s, d)) => write!(f, "{} {c}.{s}.{d} {}", self.code, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Why the gateway refuses a command or a message; [`Reply::refusal`] maps each to its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No usable, trusted certificate bound to the recipient.
    NotDirect {
        /// The recipient address.
        address: String,
        /// Why discovery or trust validation found nothing usable.
        reason: String,
    },
    /// Discovery failed for a reason that may pass (DNS or LDAP unreachable).
    DiscoveryUnavailable {
        /// The recipient address.
        address: String,
        /// What failed.
        reason: String,
    },
    /// MAIL before AUTH on submission.
    AuthRequired,
    /// Wrong user name or password.
    BadCredentials,
    /// A recipient outside the local domains on the backbone.
    RelayDenied {
        /// The recipient address.
        address: String,
    },
    /// MAIL FROM an address the account may not use.
    SenderNotOwned {
        /// The sender address.
        address: String,
    },
    /// The message exceeds the size limit.
    TooBig {
        /// The limit in octets.
        limit: usize,
    },
    /// The message breaks a Direct policy (From differs from MAIL FROM, Bcc recipients).
    MessagePolicy {
        /// What is wrong, for the sender.
        reason: String,
    },
    /// The message header is malformed (no From, two From, bad Date).
    BadHeader {
        /// What is wrong, for the sender.
        reason: String,
    },
    /// A local failure (store unavailable); temporary.
    LocalError {
        /// What failed.
        reason: String,
    },
    /// Too many failed logins from the client's address or for the account: AUTH is
    /// refused, without checking the password, until the throttle window ends.
    AuthThrottled {
        /// Whose failures, and when to try again.
        reason: String,
    },
    /// No place to check a password came free in time (password checks run a few at a
    /// time).
    AuthBusy {
        /// What to do.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_reply_uses_hyphen_on_all_but_last_line_rfc5321_4_2_1() {
        let r = Reply::new(250, (2, 0, 0), "one\ntwo\nthree");
        assert_eq!(
            r.to_wire(),
            "250-2.0.0 one\r\n250-2.0.0 two\r\n250 2.0.0 three\r\n"
        );
    }

    #[test]
    fn refusals_carry_enhanced_codes_rfc3463() {
        assert_eq!(
            Reply::not_direct("a@b.example", "no certificate").to_wire(),
            "550 5.1.1 <a@b.example>: not a Direct address: no certificate\r\n"
        );
        assert_eq!(
            Reply::auth_required().to_wire(),
            "530 5.7.0 Authentication required\r\n"
        );
        assert_eq!(
            Reply::ok_queued("X1").to_string(),
            "250 2.0.0 Ok: queued as X1"
        );
        assert_eq!(Reply::too_big(10).enhanced, Some((5, 3, 4)));
        assert_eq!(
            Reply::refusal(&Refusal::DiscoveryUnavailable {
                address: "a@b".into(),
                reason: "SERVFAIL".into()
            })
            .code,
            451
        );
    }

    #[test]
    fn parses_multi_line_reply_with_enhanced_codes() {
        let lines = vec!["250-2.0.0 a\r\n".to_string(), "250 2.0.0 b\r\n".to_string()];
        let r = Reply::parse(&lines).expect("valid reply");
        assert_eq!(r, Reply::new(250, (2, 0, 0), "a\nb"));
        let r = Reply::parse(&["220 host ESMTP\r\n".to_string()]).expect("valid");
        assert_eq!(r, Reply::plain(220, "host ESMTP"));
    }
}
