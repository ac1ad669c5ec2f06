//! What a submitted message must be before hisp accepts it (DATA on the
//! submission port): one From naming one address, equal to MAIL FROM and
//! granted to the account; a Sender, if any, naming one address the account
//! is also granted (it changes nothing about From); every envelope recipient
//! named in To or Cc (Direct allows no Bcc), a valid Date and Message-ID. A
//! missing Message-ID is added.

use hisp_store::{Account, DirectAddress, PortalUser};
use mail_parser::{Addr, HeaderName, HeaderValue};

use crate::header_view::HeaderView;

/// Why a submitted message is refused. The gateway maps each to an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The message has no parsable header block.
    #[error("the message has no header fields")]
    NoHeaders,
    /// No From, or more than one (RFC 5322 §3.6: exactly one).
    #[error("the message must have exactly one From header field, it has {0}")]
    FromCount(usize),
    /// The From address is not the envelope sender (a Sender field does not
    /// change that).
    #[error("the From address {from} is not the envelope sender {mail_from}")]
    FromMismatch {
        /// The header address.
        from: String,
        /// MAIL FROM.
        mail_from: String,
    },
    /// The From address is not one the account is granted (any more).
    #[error("the From address {from} is not an address the account {account} may send as")]
    FromNotGranted {
        /// The header address.
        from: String,
        /// The authenticated account.
        account: String,
    },
    /// More than one Sender field, or one not naming exactly one mailbox.
    #[error("the Sender header field may appear once and must name one mailbox (RFC 5322 §3.6.2)")]
    BadSender,
    /// The Sender names an address the account is not granted.
    #[error("the Sender address {sender} is not an address the account {account} may send as")]
    SenderNotGranted {
        /// The Sender address.
        sender: String,
        /// The authenticated account.
        account: String,
    },
    /// An envelope recipient does not appear in To or Cc.
    #[error("{0} is not named in To or Cc: Direct messages may not have Bcc recipients")]
    HiddenRecipient(String),
    /// A Bcc header field is present.
    #[error("the message has a Bcc header field: Direct messages may not have Bcc recipients")]
    BccPresent,
    /// Date missing or unparsable.
    #[error("the message needs one valid Date header field (RFC 5322 §3.6.1)")]
    BadDate,
    /// More than one Message-ID, or one that does not parse.
    #[error("the Message-ID header field is not valid (RFC 5322 §3.6.4)")]
    BadMessageId,
}

/// A submission that passed: the message (with a Message-ID added when it
/// had none) and its Message-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The message to queue.
    pub message: Vec<u8>,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// True when hisp added the Message-ID.
    pub message_id_added: bool,
}

/// Who submits a message, as far as the header policy asks: a name for
/// refusals, and the addresses it may send as. A submission account
/// ([`Account`], SMTP AUTH) and a portal account ([`PortalUser`], which
/// sends as its own address only) are judged by the same rules.
pub trait SendingAccount {
    /// How refusals name the account.
    fn account_name(&self) -> String;
    /// Whether it may use `address` as From (and Sender).
    fn may_send_as(&self, address: &DirectAddress) -> bool;
}

impl SendingAccount for Account {
    fn account_name(&self) -> String {
        self.name.to_string()
    }
    fn may_send_as(&self, address: &DirectAddress) -> bool {
        Account::may_send_as(self, address)
    }
}

impl SendingAccount for PortalUser {
    fn account_name(&self) -> String {
        format!("portal:{}", self.address)
    }
    fn may_send_as(&self, address: &DirectAddress) -> bool {
        &self.address == address
    }
}

/// Checks a submitted message against its envelope and the `account` that
/// submits it (its grants as read at DATA). `id_domain` is used for a
/// Message-ID hisp must add.
pub fn check_submission(
    message: &[u8],
    mail_from: &str,
    recipients: &[String],
    id_domain: &str,
    account: &dyn SendingAccount,
) -> Result<Submission, PolicyError> {
    check_header(
        &HeaderView::parse(message),
        mail_from,
        recipients,
        id_domain,
        account,
    )
}

/// [`check_submission`] of a message whose header is parsed already.
pub fn check_header(
    view: &HeaderView<'_>,
    mail_from: &str,
    recipients: &[String],
    id_domain: &str,
    account: &dyn SendingAccount,
) -> Result<Submission, PolicyError> {
    let message = view.bytes();
    let parsed = view.parsed().ok_or(PolicyError::NoHeaders)?;
    let headers = parsed.headers();
    let count = |name: &HeaderName| headers.iter().filter(|h| &h.name == name).count();

    let from_count = count(&HeaderName::From);
    if from_count != 1 {
        return Err(PolicyError::FromCount(from_count));
    }
    let from_addrs = addresses(parsed.header(HeaderName::From));
    // Applicability Statement 1.3: the signer's certificate is bound to the
    // From address, and receivers judge the message by it. So From is the
    // envelope sender, one address the account is granted, whatever a
    // Sender field says (trusting a Sender equal to MAIL FROM instead would
    // let an account sign mail "From" anybody).
    let envelope_sender = DirectAddress::parse(mail_from).ok();
    let from = match (&from_addrs[..], envelope_sender) {
        ([one], Some(envelope)) if DirectAddress::parse(one).is_ok_and(|f| f == envelope) => {
            envelope
        }
        _ => {
            return Err(PolicyError::FromMismatch {
                from: from_addrs.join(", "),
                mail_from: mail_from.to_string(),
            })
        }
    };
    if !account.may_send_as(&from) {
        return Err(PolicyError::FromNotGranted {
            from: from.to_string(),
            account: account.account_name(),
        });
    }
    // RFC 5322 §3.6.2: at most one Sender, one mailbox. It may name the
    // agent (a desk, a delegate) only when the account is granted it too.
    let sender_count = count(&HeaderName::Sender);
    if sender_count > 0 {
        let sender_addrs = addresses(parsed.header(HeaderName::Sender));
        let [sender] = &sender_addrs[..] else {
            return Err(PolicyError::BadSender);
        };
        if sender_count > 1 {
            return Err(PolicyError::BadSender);
        }
        if !DirectAddress::parse(sender).is_ok_and(|s| account.may_send_as(&s)) {
            return Err(PolicyError::SenderNotGranted {
                sender: sender.clone(),
                account: account.account_name(),
            });
        }
    }

    if count(&HeaderName::Bcc) > 0 {
        return Err(PolicyError::BccPresent);
    }
    let mut named = addresses(parsed.header(HeaderName::To));
    named.extend(addresses(parsed.header(HeaderName::Cc)));
    for rcpt in recipients {
        if !named.contains(&rcpt.to_ascii_lowercase()) {
            return Err(PolicyError::HiddenRecipient(rcpt.clone()));
        }
    }

    if count(&HeaderName::Date) != 1
        || !matches!(
            parsed.header(HeaderName::Date),
            Some(HeaderValue::DateTime(_))
        )
    {
        return Err(PolicyError::BadDate);
    }

    match count(&HeaderName::MessageId) {
        0 => {
            let id = new_message_id(id_domain);
            let field = format!("Message-ID: <{id}>\r\n");
            Ok(Submission {
                message: after_trace_fields(message, field.as_bytes()),
                message_id: id,
                message_id_added: true,
            })
        }
        1 => match parsed.header(HeaderName::MessageId) {
            Some(HeaderValue::Text(id)) if !id.is_empty() && !id.contains(char::is_whitespace) => {
                Ok(Submission {
                    message: message.to_vec(),
                    message_id: id.to_string(),
                    message_id_added: false,
                })
            }
            _ => Err(PolicyError::BadMessageId),
        },
        _ => Err(PolicyError::BadMessageId),
    }
}

/// `message` with `field` inserted after its leading trace fields
/// (Received, Return-Path), which stay on top (RFC 5321 §4.4).
pub(crate) fn after_trace_fields(message: &[u8], field: &[u8]) -> Vec<u8> {
    let mut at = 0;
    loop {
        let rest = &message[at..];
        let is_trace = [&b"Received:"[..], b"Return-Path:"]
            .iter()
            .any(|name| rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name));
        if !is_trace {
            break;
        }
        // The field ends at a line end not followed by folding white space.
        let mut end = at;
        loop {
            match message[end..].iter().position(|&b| b == b'\n') {
                Some(i) => end += i + 1,
                None => {
                    end = message.len();
                    break;
                }
            }
            if !matches!(message.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        at = end;
    }
    let mut out = Vec::with_capacity(message.len() + field.len());
    out.extend_from_slice(&message[..at]);
    out.extend_from_slice(field);
    out.extend_from_slice(&message[at..]);
    out
}

/// The addresses of an address header, lower-cased.
fn addresses(value: Option<&HeaderValue<'_>>) -> Vec<String> {
    let Some(HeaderValue::Address(list)) = value else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a: &Addr<'_>| a.address())
        .map(|a| a.to_ascii_lowercase())
        .collect()
}

/// A unique Message-ID: time, randomness and the domain.
pub(crate) fn new_message_id(domain: &str) -> String {
    let mut rnd = [0u8; 12];
    // The pool never runs dry on a running system; the clock alone would
    // still make the id unique enough to trace.
    let _ = openssl::rand::rand_bytes(&mut rnd);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    format!("{nanos:x}.{hex}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_goes_below_the_trace_fields() {
        let msg =
            b"Received: from a\r\n\tby b; date\r\nReturn-Path: <x@y>\r\nFrom: x@y\r\n\r\nbody\r\n";
        let out = after_trace_fields(msg, b"X-New: 1\r\n");
        assert_eq!(
            out,
            b"Received: from a\r\n\tby b; date\r\nReturn-Path: <x@y>\r\nX-New: 1\r\nFrom: x@y\r\n\r\nbody\r\n"
        );
        assert_eq!(
            after_trace_fields(b"From: x@y\r\n\r\n", b"X: 1\r\n"),
            b"X: 1\r\nFrom: x@y\r\n\r\n"
        );
        assert_eq!(
            after_trace_fields(b"Received: x", b"X: 1\r\n"),
            b"Received: xX: 1\r\n"
        );
    }

    const OK: &str = "From: Pat <pat@portal.example>\r\nTo: doc@clinic.example\r\nCc: nurse@clinic.example\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@portal.example>\r\n\r\nbody\r\n";

    fn rcpts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// An account granted `grants` (addresses or `@domain`).
    fn account(grants: &[&str]) -> Account {
        Account {
            id: hisp_store::UserId(1),
            name: hisp_store::UserName::parse("portal").unwrap(),
            request_final_delivery: true,
            grants: grants
                .iter()
                .map(|g| hisp_store::Grant::parse(g).unwrap())
                .collect(),
            added_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// [`check_submission`] for an account granted all of portal.example.
    fn check(
        message: &[u8],
        mail_from: &str,
        recipients: &[String],
        id_domain: &str,
    ) -> Result<Submission, PolicyError> {
        check_submission(
            message,
            mail_from,
            recipients,
            id_domain,
            &account(&["@portal.example"]),
        )
    }

    #[test]
    fn conforming_message_passes_unchanged() {
        let s = check(
            OK.as_bytes(),
            "Pat@Portal.example",
            &rcpts(&["doc@clinic.example", "NURSE@clinic.example"]),
            "portal.example",
        )
        .unwrap();
        assert_eq!(s.message, OK.as_bytes());
        assert_eq!(s.message_id, "m1@portal.example");
        assert!(!s.message_id_added);
    }

    #[test]
    fn from_must_be_the_envelope_sender() {
        let e = check(
            OK.as_bytes(),
            "eve@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "x",
        )
        .unwrap_err();
        assert!(matches!(e, PolicyError::FromMismatch { .. }), "{e}");
    }

    /// Applicability Statement 1.3 binds the signer to From: a Sender equal
    /// to MAIL FROM does not make another From acceptable.
    #[test]
    fn a_sender_field_does_not_stand_in_for_from() {
        let msg = OK
            .replace("Pat <pat@portal.example>", "anyone@anywhere.example")
            .replace("Subject", "Sender: pat@portal.example\r\nSubject");
        let e = check_submission(
            msg.as_bytes(),
            "pat@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "x",
            &account(&["pat@portal.example"]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PolicyError::FromMismatch {
                from: "anyone@anywhere.example".into(),
                mail_from: "pat@portal.example".into()
            }
        );
    }

    #[test]
    fn from_must_be_granted_to_the_account() {
        let e = check_submission(
            OK.as_bytes(),
            "pat@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "x",
            &account(&["desk@portal.example"]),
        )
        .unwrap_err();
        assert!(matches!(e, PolicyError::FromNotGranted { .. }), "{e}");
    }

    /// RFC 5322 §3.6.2: one Sender, one mailbox; hisp allows it only when
    /// the account is granted that address too.
    #[test]
    fn sender_must_be_one_address_the_account_is_granted() {
        let with = |sender: &str, grants: &[&str]| {
            let msg = OK.replace("Subject", &format!("{sender}Subject"));
            check_submission(
                msg.as_bytes(),
                "pat@portal.example",
                &rcpts(&["doc@clinic.example"]),
                "x",
                &account(grants),
            )
        };
        let both = ["pat@portal.example", "desk@portal.example"];
        assert!(with("Sender: Desk <DESK@portal.example>\r\n", &both).is_ok());
        assert_eq!(
            with("Sender: desk@portal.example\r\n", &["pat@portal.example"]).unwrap_err(),
            PolicyError::SenderNotGranted {
                sender: "desk@portal.example".into(),
                account: "portal".into()
            }
        );
        assert_eq!(
            with(
                "Sender: desk@portal.example\r\nSender: desk@portal.example\r\n",
                &both
            )
            .unwrap_err(),
            PolicyError::BadSender
        );
        assert_eq!(
            with("Sender: desk@portal.example, pat@portal.example\r\n", &both).unwrap_err(),
            PolicyError::BadSender
        );
        assert_eq!(
            with("Sender: nobody\r\n", &both).unwrap_err(),
            PolicyError::BadSender
        );
    }

    /// The checks read a bare LF as a line end, as sealing does (RFC 8551
    /// §3.1.1 canonical form): a Bcc after one is a Bcc field.
    #[test]
    fn a_bcc_after_a_bare_lf_is_a_bcc() {
        let msg = OK.replace(
            "Subject: hi\r\n",
            "Subject: hi\nBcc: boss@clinic.example\r\n",
        );
        assert_eq!(
            check(
                msg.as_bytes(),
                "pat@portal.example",
                &rcpts(&["doc@clinic.example"]),
                "x"
            )
            .unwrap_err(),
            PolicyError::BccPresent
        );
    }

    #[test]
    fn every_recipient_must_be_in_to_or_cc_no_bcc() {
        let e = check(
            OK.as_bytes(),
            "pat@portal.example",
            &rcpts(&["boss@clinic.example"]),
            "x",
        )
        .unwrap_err();
        assert_eq!(
            e,
            PolicyError::HiddenRecipient("boss@clinic.example".into())
        );
        let msg = OK.replace("Subject", "Bcc: boss@clinic.example\r\nSubject");
        let e = check(
            msg.as_bytes(),
            "pat@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "x",
        )
        .unwrap_err();
        assert_eq!(e, PolicyError::BccPresent);
    }

    #[test]
    fn exactly_one_from_rfc5322_3_6() {
        let msg = OK.replace("Subject", "From: other@portal.example\r\nSubject");
        assert_eq!(
            check(msg.as_bytes(), "pat@portal.example", &[], "x").unwrap_err(),
            PolicyError::FromCount(2)
        );
    }

    #[test]
    fn date_is_required_rfc5322_3_6_1() {
        let msg = OK.replace("Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n", "");
        assert_eq!(
            check(msg.as_bytes(), "pat@portal.example", &[], "x").unwrap_err(),
            PolicyError::BadDate
        );
    }

    #[test]
    fn missing_message_id_is_added() {
        let msg = OK.replace("Message-ID: <m1@portal.example>\r\n", "");
        let s = check(
            msg.as_bytes(),
            "pat@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "portal.example",
        )
        .unwrap();
        assert!(s.message_id_added);
        assert!(s.message_id.ends_with("@portal.example"));
        let text = String::from_utf8(s.message).unwrap();
        assert!(text.starts_with(&format!("Message-ID: <{}>\r\n", s.message_id)));
    }
}
