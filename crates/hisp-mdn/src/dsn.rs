//! Delivery status notifications (RFC 3464): building the bounce a HISP sends when it
//! cannot deliver, and reading the bounces MTAs and other HISPs send.

use std::fmt;

use mail_parser::{Message, MessageParser};
use time::OffsetDateTime;

use crate::compose::{self, address, Fields};
use crate::error::MdnError;
use crate::fields::{self, address_value, bare_message_id, clip, squash, strip_comments, Block};
use crate::report::{self, DSN_TYPES, ORIGINAL_TYPES};

/// What the reporting MTA did with a recipient (RFC 3464 §2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// Could not be delivered; no further attempts.
    Failed,
    /// Not yet delivered; still trying.
    Delayed,
    /// Delivered.
    Delivered,
    /// Passed to a system that sends no DSNs.
    Relayed,
    /// Delivered and forwarded to several addresses.
    Expanded,
}

impl DsnAction {
    /// The keyword as written in the Action field.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
            DsnAction::Expanded => "expanded",
        }
    }

    /// Reads an Action value: case-insensitive, comments allowed.
    pub fn parse(value: &str) -> Result<Self, MdnError> {
        let v = strip_comments(value).to_ascii_lowercase();
        Ok(match v.as_str() {
            "failed" => DsnAction::Failed,
            "delayed" => DsnAction::Delayed,
            "delivered" => DsnAction::Delivered,
            "relayed" => DsnAction::Relayed,
            "expanded" => DsnAction::Expanded,
            _ => return Err(MdnError::UnknownAction(clip(value))),
        })
    }
}

impl fmt::Display for DsnAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One per-recipient block of a DSN (RFC 3464 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// Final-Recipient: the address only (`rfc822;` and `<>` removed).
    pub final_recipient: String,
    /// Original-Recipient: the address only, when given.
    pub original_recipient: Option<String>,
    /// Action.
    pub action: DsnAction,
    /// Status, an RFC 3463 code such as `5.1.1`.
    pub status: String,
    /// Diagnostic-Code as a whole, diagnostic type included (`smtp; 550 5.1.1 ...`),
    /// whitespace runs collapsed. When building, a value without a `type;` prefix is
    /// written as `X-hisp; <value>`.
    pub diagnostic: Option<String>,
    /// Remote-MTA, verbatim (`dns; mx.example`).
    pub remote_mta: Option<String>,
    /// Last-Attempt-Date, verbatim.
    pub last_attempt: Option<String>,
}

/// A parsed DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Reporting-MTA, verbatim (`dns; mx.example`).
    pub reporting_mta: Option<String>,
    /// Original-Envelope-Id, verbatim.
    pub original_envelope_id: Option<String>,
    /// Arrival-Date, verbatim.
    pub arrival_date: Option<String>,
    /// The per-recipient blocks; at least one.
    pub recipients: Vec<DsnRecipient>,
    /// Message-ID (without `<>`) from the third part (text/rfc822-headers or
    /// message/rfc822), else the DSN's In-Reply-To, if any.
    pub original_message_id: Option<String>,
    /// The header From address of the DSN message.
    pub from: Option<String>,
    /// Other per-message fields (e.g. `X-Postfix-Queue-ID`), name as written, in order.
    pub extension_fields: Vec<(String, String)>,
}

/// Everything needed to write one DSN.
#[derive(Debug, Clone)]
pub struct DsnSpec<'a> {
    /// The DSN's own Message-ID, without `<>`.
    pub message_id: &'a str,
    /// The DSN's Date.
    pub date: OffsetDateTime,
    /// Usually `postmaster@<sender's domain>`.
    pub from: &'a str,
    /// The original sender.
    pub to: &'a str,
    /// Reporting-MTA, e.g. `dns; hisp.example.org` (`dns; ` is added when no type is given).
    pub reporting_mta: &'a str,
    /// The original message's Message-ID, without `<>`: In-Reply-To and References.
    pub original_message_id: Option<&'a str>,
    /// Subject becomes `Not Delivered: <original subject>`.
    pub original_subject: Option<&'a str>,
    /// The original message's header block (a whole message is cut at its first empty
    /// line), included as the text/rfc822-headers third part.
    pub original_headers: Option<&'a [u8]>,
    /// When the original message arrived.
    pub arrival_date: Option<OffsetDateTime>,
    /// One entry per recipient reported on; RFC 3464 §2.1 requires at least one.
    pub recipients: Vec<DsnRecipient>,
    /// The first line(s) of the human-readable part.
    pub explanation: &'a str,
}

/// Per-message and per-recipient fields this module reads itself.
const KNOWN_MESSAGE: &[&str] = &["Reporting-MTA", "Original-Envelope-Id", "Arrival-Date"];

/// Writes a DSN: multipart/report; report-type=delivery-status (RFC 6522, RFC 3464 §2)
/// with a human-readable part naming each recipient and its diagnostic, the
/// message/delivery-status part, and the original header block as text/rfc822-headers
/// when given; composed with mail-builder. CRLF, 7bit (the header part quoted-printable
/// if it is not 7-bit clean), lines under 998. A Status that is not an RFC 3463 code is replaced by the generic code
/// of the action's class (`5.0.0`, `4.0.0`, `2.0.0`).
pub fn build_dsn(spec: &DsnSpec<'_>) -> Vec<u8> {
    let prefix = subject_prefix(&spec.recipients);
    let subject = match spec.original_subject {
        Some(s) if !s.trim().is_empty() => format!("{prefix}: {}", s.trim()),
        _ => prefix.to_string(),
    };
    compose::write(compose::ReportMessage {
        from: spec.from,
        to: spec.to,
        date: spec.date,
        message_id: spec.message_id,
        subject: &subject,
        original_message_id: spec.original_message_id,
        report_type: "delivery-status",
        human: compose::text_body(&explanation(spec)),
        report: report_fields(spec),
        original_headers: spec.original_headers.map(compose::header_block),
    })
}

/// Parses a DSN: the message/delivery-status part is looked for in the root, among its
/// parts and one level deeper, decoded from any transfer encoding and read liberally.
/// RFC 3464 §2.1 / §2.3: at least one recipient block, each with Final-Recipient, Action
/// and Status.
pub fn parse_dsn(message: &[u8]) -> Result<Dsn, MdnError> {
    from_message(&report::parse(message)?)
}

pub(crate) fn from_message(message: &Message<'_>) -> Result<Dsn, MdnError> {
    let part = report::required_part(message, DSN_TYPES, "message/delivery-status")?;
    let mut blocks = fields::blocks(part.contents()).into_iter().peekable();
    // RFC 3464 §2.2: the per-message block comes first. Some senders omit it and start
    // with a recipient; a first block with Final-Recipient but no Reporting-MTA is taken
    // as a recipient block.
    let per_message = match blocks.peek() {
        Some(b) if b.has("Final-Recipient") && !b.has("Reporting-MTA") => Block::default(),
        _ => blocks.next().unwrap_or_default(),
    };
    let recipients = blocks
        .enumerate()
        .map(|(i, b)| recipient(&b, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    if recipients.is_empty() {
        return Err(MdnError::NoRecipients);
    }
    let verbatim = |name: &str| {
        per_message
            .get(name)
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    Ok(Dsn {
        reporting_mta: verbatim("Reporting-MTA"),
        original_envelope_id: verbatim("Original-Envelope-Id"),
        arrival_date: verbatim("Arrival-Date"),
        recipients,
        original_message_id: original_message_id(message),
        from: report::from_address(message),
        extension_fields: per_message
            .fields
            .iter()
            .filter(|f| {
                !KNOWN_MESSAGE
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&f.name))
            })
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect(),
    })
}

/// One per-recipient block; `n` counts from 1 for error messages.
fn recipient(block: &Block, n: usize) -> Result<DsnRecipient, MdnError> {
    let required = |field: &'static str| {
        block.get(field).ok_or_else(|| MdnError::MissingField {
            field,
            rule: format!("RFC 3464 §2.3, recipient block {n}"),
        })
    };
    // RFC 3464 §2.3: Final-Recipient, Action and Status MUST appear in each block.
    let final_value = required("Final-Recipient")?;
    let final_recipient = address_value(final_value).ok_or_else(|| MdnError::MalformedAddress {
        field: "Final-Recipient",
        value: clip(final_value),
    })?;
    let action = DsnAction::parse(required("Action")?)?;
    let status = parse_status(required("Status")?)?;
    let optional = |name: &str| {
        block
            .get(name)
            .map(squash)
            .filter(|v: &String| !v.is_empty())
    };
    Ok(DsnRecipient {
        final_recipient,
        original_recipient: block.get("Original-Recipient").and_then(address_value),
        action,
        status,
        diagnostic: optional("Diagnostic-Code"),
        remote_mta: optional("Remote-MTA"),
        last_attempt: optional("Last-Attempt-Date"),
    })
}

/// RFC 3464 §2.3.4 / RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5,
/// subject and detail one to three digits. A comment after the code is allowed.
fn parse_status(value: &str) -> Result<String, MdnError> {
    let clean = strip_comments(value);
    let code = clean.split_whitespace().next().unwrap_or_default();
    if is_status(code) {
        Ok(code.to_string())
    } else {
        Err(MdnError::MalformedStatus(clip(value)))
    }
}

fn is_status(code: &str) -> bool {
    let mut parts = code.split('.');
    let digits = |p: Option<&str>| {
        p.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(parts.next(), Some("2" | "4" | "5"))
        && digits(parts.next())
        && digits(parts.next())
        && parts.next().is_none()
}

/// Message-ID of the third part: a message/rfc822 mail-parser already parsed, or a
/// header block parsed here. Without a third part that names it, the DSN's own
/// In-Reply-To (which reporting MTAs, hisp among them, set to the original message).
fn original_message_id(message: &Message<'_>) -> Option<String> {
    let from_part =
        report::find_part(message, ORIGINAL_TYPES).and_then(|part| match part.message() {
            Some(inner) => inner.message_id().map(str::to_string),
            None => MessageParser::default()
                .parse_headers(part.contents())
                .and_then(|h| h.message_id().map(str::to_string)),
        });
    let id = from_part.or_else(|| message.in_reply_to().as_text().map(str::to_string));
    id.and_then(|id| bare_message_id(&id))
}

fn subject_prefix(recipients: &[DsnRecipient]) -> &'static str {
    if recipients.iter().any(|r| r.action == DsnAction::Failed) {
        "Not Delivered"
    } else if recipients.iter().any(|r| r.action == DsnAction::Delayed) {
        "Delivery Delayed"
    } else if recipients.is_empty() {
        "Not Delivered"
    } else {
        "Delivery Status"
    }
}

/// The human-readable part: the caller's explanation, then each recipient with what
/// happened and why. No message content.
fn explanation(spec: &DsnSpec<'_>) -> String {
    let mut text = spec.explanation.to_string();
    text.push('\n');
    for r in &spec.recipients {
        let what = match r.action {
            DsnAction::Failed => "not delivered",
            DsnAction::Delayed => "delayed, still trying",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
            DsnAction::Expanded => "delivered and expanded",
        };
        text.push_str(&format!(
            "\n{}: {what} (status {})",
            address(&r.final_recipient),
            status_or_generic(r)
        ));
        if let Some(d) = &r.diagnostic {
            text.push_str(&format!("\nReason: {}", typed(d, "X-hisp")));
        }
    }
    text.push_str("\n\nThis notification was generated automatically.");
    text
}

fn status_or_generic(r: &DsnRecipient) -> String {
    let status = r.status.trim();
    if is_status(status) {
        return status.to_string();
    }
    match r.action {
        DsnAction::Failed => "5.0.0",
        DsnAction::Delayed => "4.0.0",
        _ => "2.0.0",
    }
    .to_string()
}

/// A `type; value` field written with `default_type` when the caller gave no type.
fn typed(value: &str, default_type: &str) -> String {
    let value = compose::sanitize(value);
    match value.split_once(';') {
        Some((kind, _))
            if !kind.is_empty()
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            value
        }
        _ => format!("{default_type}; {value}"),
    }
}

/// The message/delivery-status body, fields in RFC 3464 §2.2 / §2.3 order.
fn report_fields(spec: &DsnSpec<'_>) -> Fields {
    let mut out = Fields::default();
    out.field("Reporting-MTA", &typed(spec.reporting_mta, "dns"));
    if let Some(at) = spec.arrival_date {
        out.field("Arrival-Date", &hisp_date::rfc5322(at));
    }
    for r in &spec.recipients {
        // RFC 3464 §2.1: a blank line ends the per-message block and each recipient block.
        out.end_block();
        if let Some(orig) = r.original_recipient.as_deref().map(address) {
            if !orig.is_empty() {
                out.field("Original-Recipient", &format!("rfc822;{orig}"));
            }
        }
        out.field(
            "Final-Recipient",
            &format!("rfc822;{}", address(&r.final_recipient)),
        );
        out.field("Action", r.action.as_str());
        out.field("Status", &status_or_generic(r));
        if let Some(mta) = &r.remote_mta {
            out.field("Remote-MTA", &typed(mta, "dns"));
        }
        if let Some(d) = &r.diagnostic {
            out.field("Diagnostic-Code", &typed(d, "X-hisp"));
        }
        if let Some(at) = &r.last_attempt {
            out.field("Last-Attempt-Date", at);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_rfc3463_2() {
        for ok in ["5.1.1", "4.4.7", "2.0.0", "5.123.999"] {
            assert!(is_status(ok), "{ok}");
        }
        for bad in ["3.1.1", "5.1", "5.1.1.1", "5.1234.1", "5..1", "x.1.1", ""] {
            assert!(!is_status(bad), "{bad}");
        }
        assert_eq!(parse_status("5.1.1 (bad mailbox)").unwrap(), "5.1.1");
        assert_eq!(parse_status("550").unwrap_err().code(), "malformed-status");
    }

    #[test]
    fn actions_are_case_insensitive_rfc3464_2_3_3() {
        assert_eq!(
            DsnAction::parse("FAILED (gave up)").unwrap(),
            DsnAction::Failed
        );
        assert_eq!(
            DsnAction::parse("bounced").unwrap_err().code(),
            "unknown-action"
        );
    }

    #[test]
    fn diagnostic_type_is_kept_or_added() {
        assert_eq!(typed("smtp; 550 5.1.1 no", "X-hisp"), "smtp; 550 5.1.1 no");
        assert_eq!(
            typed("no certificate found", "X-hisp"),
            "X-hisp; no certificate found"
        );
        assert_eq!(
            typed("lookup failed; timeout", "X-hisp"),
            "X-hisp; lookup failed; timeout"
        );
    }
}
