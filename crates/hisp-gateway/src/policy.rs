//! What a submitted message must be before hisp accepts it (DATA on the
//! submission port): one From equal to MAIL FROM (or a Sender equal to it),
//! every envelope recipient named in To or Cc (Direct allows no Bcc), a valid
//! Date and Message-ID. A missing Message-ID is added.

use mail_parser::{Addr, HeaderName, HeaderValue, MessageParser};

/// Why a submitted message is refused. The gateway maps each to an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The message has no parsable header block.
    #[error("the message has no header fields")]
    NoHeaders,
    /// No From, or more than one (RFC 5322 §3.6: exactly one).
    #[error("the message must have exactly one From header field, it has {0}")]
    FromCount(usize),
    /// The From (and Sender) address is not the envelope sender.
    #[error("the From address {from} is not the envelope sender {mail_from}")]
    FromMismatch {
        /// The header address.
        from: String,
        /// MAIL FROM.
        mail_from: String,
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

/// Checks a submitted message against its envelope. `id_domain` is used
/// for a Message-ID hisp must add.
pub fn check_submission(
    message: &[u8],
    mail_from: &str,
    recipients: &[String],
    id_domain: &str,
) -> Result<Submission, PolicyError> {
    let parsed = MessageParser::new()
        .with_address_headers()
        .with_date_headers()
        .with_message_ids()
        .parse_headers(message)
        .ok_or(PolicyError::NoHeaders)?;
    let headers = parsed.headers();
    let count = |name: &HeaderName| headers.iter().filter(|h| &h.name == name).count();

    let from_count = count(&HeaderName::From);
    if from_count != 1 {
        return Err(PolicyError::FromCount(from_count));
    }
    let from_addrs = addresses(parsed.header(HeaderName::From));
    let sender_addrs = addresses(parsed.header(HeaderName::Sender));
    let mail_from_lc = mail_from.to_ascii_lowercase();
    // Applicability Statement 1.3: the signer's certificate is bound to the
    // sender, so the header sender must be the envelope sender.
    let owned = from_addrs.len() == 1 && from_addrs[0] == mail_from_lc
        || sender_addrs.contains(&mail_from_lc);
    if !owned {
        return Err(PolicyError::FromMismatch {
            from: from_addrs.join(", "),
            mail_from: mail_from.to_string(),
        });
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

    #[test]
    fn conforming_message_passes_unchanged() {
        let s = check_submission(
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
        let e = check_submission(
            OK.as_bytes(),
            "eve@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "x",
        )
        .unwrap_err();
        assert!(matches!(e, PolicyError::FromMismatch { .. }), "{e}");
    }

    #[test]
    fn sender_may_stand_for_the_envelope_sender() {
        let msg = OK.replace("Subject", "Sender: desk@portal.example\r\nSubject");
        assert!(check_submission(
            msg.as_bytes(),
            "desk@portal.example",
            &rcpts(&["doc@clinic.example"]),
            "x"
        )
        .is_ok());
    }

    #[test]
    fn every_recipient_must_be_in_to_or_cc_no_bcc() {
        let e = check_submission(
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
        let e = check_submission(
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
            check_submission(msg.as_bytes(), "pat@portal.example", &[], "x").unwrap_err(),
            PolicyError::FromCount(2)
        );
    }

    #[test]
    fn date_is_required_rfc5322_3_6_1() {
        let msg = OK.replace("Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n", "");
        assert_eq!(
            check_submission(msg.as_bytes(), "pat@portal.example", &[], "x").unwrap_err(),
            PolicyError::BadDate
        );
    }

    #[test]
    fn missing_message_id_is_added() {
        let msg = OK.replace("Message-ID: <m1@portal.example>\r\n", "");
        let s = check_submission(
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
