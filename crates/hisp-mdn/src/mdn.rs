//! Message disposition notifications (RFC 8098) as Direct uses them: building the
//! `processed`, `dispatched` and `failed` notifications a HISP sends, and reading the ones
//! other HISPs send back.

use mail_parser::Message;
use time::OffsetDateTime;

use crate::compose::{self, address, Fields};
use crate::disposition::{Disposition, DispositionType};
use crate::error::MdnError;
use crate::fields::{self, address_value, bare_message_id, squash, Block};
use crate::report::{self, MDN_TYPES};
use crate::request::FINAL_DELIVERY_PARAMETER;

/// Everything needed to write one MDN.
#[derive(Debug, Clone)]
pub struct MdnSpec<'a> {
    /// The MDN's own Message-ID, without `<>`.
    pub message_id: &'a str,
    /// The MDN's Date.
    pub date: OffsetDateTime,
    /// The original recipient: the MDN is From this address.
    pub from: &'a str,
    /// The original sender.
    pub to: &'a str,
    /// Reporting-UA value, e.g. `hisp.example.org; hisp 0.1.0` (RFC 8098 §3.2.1).
    pub reporting_ua: &'a str,
    /// The recipient as the sender addressed it, when known (RFC 8098 §3.2.3).
    pub original_recipient: Option<&'a str>,
    /// The recipient the disposition is about (RFC 8098 §3.2.4).
    pub final_recipient: &'a str,
    /// The Message-ID of the message the MDN is about, without `<>`.
    pub original_message_id: Option<&'a str>,
    /// The Subject of the message the MDN is about; the MDN's Subject repeats it.
    pub original_subject: Option<&'a str>,
    /// What happened.
    pub disposition: Disposition,
    /// Why it failed: written as `Failure:` (Direct IG), or as `Error:` (RFC 8098 §3.2.7)
    /// when the disposition has the `error` modifier.
    pub failure: Option<&'a str>,
    /// Adds the `X-DIRECT-FINAL-DESTINATION-DELIVERY:` extension field (Direct IG), which a
    /// HISP puts in MDNs answering a final-delivery request.
    pub final_delivery_extension: bool,
}

/// A parsed MDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mdn {
    /// Reporting-UA, verbatim.
    pub reporting_ua: Option<String>,
    /// MDN-Gateway, verbatim (RFC 8098 §3.2.2).
    pub mdn_gateway: Option<String>,
    /// Original-Recipient: the address only (`rfc822;` and `<>` removed).
    pub original_recipient: Option<String>,
    /// Final-Recipient: the address only; required (RFC 8098 §3.1).
    pub final_recipient: String,
    /// Original-Message-ID without `<>`, else the MDN's In-Reply-To.
    pub original_message_id: Option<String>,
    /// Disposition; required (RFC 8098 §3.1).
    pub disposition: Disposition,
    /// Failure field text, whitespace runs collapsed (several fields joined by `; `).
    pub failure: Option<String>,
    /// Error field text, whitespace runs collapsed (several fields joined by `; `).
    pub error: Option<String>,
    /// Warning field text, whitespace runs collapsed (several fields joined by `; `).
    pub warning: Option<String>,
    /// `X-DIRECT-FINAL-DESTINATION-DELIVERY` is present (Direct IG).
    pub final_delivery_extension: bool,
    /// Every other field, name as written and value unfolded, in order.
    pub extension_fields: Vec<(String, String)>,
    /// The header From address of the MDN message.
    pub from: Option<String>,
}

/// Fields this module reads itself; anything else is an extension field.
const KNOWN: &[&str] = &[
    "Reporting-UA",
    "MDN-Gateway",
    "Original-Recipient",
    "Final-Recipient",
    "Original-Message-ID",
    "Disposition",
    "Failure",
    "Error",
    "Warning",
    FINAL_DELIVERY_PARAMETER,
];

/// Writes an MDN: a multipart/report (RFC 6522) with a human-readable text/plain part and
/// a message/disposition-notification part (RFC 8098 §3), composed with mail-builder.
/// CRLF line ends, 7bit, every line under 998 characters; caller-supplied values cannot
/// add header lines.
pub fn build_mdn(spec: &MdnSpec<'_>) -> Vec<u8> {
    let prefix = subject_prefix(&spec.disposition.kind);
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
        report_type: "disposition-notification",
        human: compose::text_body(&explanation(spec)),
        report: report_fields(spec),
        original_headers: None,
    })
}

/// Parses an MDN: the message/disposition-notification part is looked for in the root,
/// among its parts and one level deeper, decoded from any transfer encoding, and read
/// liberally (any line ends, any case, comments). Final-Recipient and Disposition are
/// required (RFC 8098 §3.1).
pub fn parse_mdn(message: &[u8]) -> Result<Mdn, MdnError> {
    from_message(&report::parse(message)?)
}

pub(crate) fn from_message(message: &Message<'_>) -> Result<Mdn, MdnError> {
    let part = report::required_part(message, MDN_TYPES, "message/disposition-notification")?;
    // RFC 8098 §3.1 defines one block of fields; blank lines some senders leave inside it
    // are tolerated by reading every block.
    let mut all = Block::default();
    for block in fields::blocks(part.contents()) {
        all.fields.extend(block.fields);
    }
    let mut mdn = from_block(&all)?;
    mdn.from = report::from_address(message);
    // Without Original-Message-ID (RFC 8098 §3.2.5 makes it a SHOULD), the
    // MDN's own In-Reply-To, which responders set to the original.
    if mdn.original_message_id.is_none() {
        mdn.original_message_id = message.in_reply_to().as_text().and_then(bare_message_id);
    }
    Ok(mdn)
}

fn from_block(block: &Block) -> Result<Mdn, MdnError> {
    // RFC 8098 §3.1: final-recipient-field and disposition-field are required.
    let final_value = block
        .get("Final-Recipient")
        .ok_or_else(|| MdnError::MissingField {
            field: "Final-Recipient",
            rule: "RFC 8098 §3.1".to_string(),
        })?;
    let final_recipient = address_value(final_value).ok_or_else(|| MdnError::MalformedAddress {
        field: "Final-Recipient",
        value: fields::clip(final_value),
    })?;
    let disposition = block
        .get("Disposition")
        .ok_or_else(|| MdnError::MissingField {
            field: "Disposition",
            rule: "RFC 8098 §3.1".to_string(),
        })?;
    let disposition = Disposition::parse(disposition)?;
    let joined = |name: &str| {
        let v: Vec<String> = block
            .all(name)
            .map(squash)
            .filter(|v| !v.is_empty())
            .collect();
        (!v.is_empty()).then(|| v.join("; "))
    };
    let verbatim = |name: &str| {
        block
            .get(name)
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    Ok(Mdn {
        reporting_ua: verbatim("Reporting-UA"),
        mdn_gateway: verbatim("MDN-Gateway"),
        original_recipient: block.get("Original-Recipient").and_then(address_value),
        final_recipient,
        original_message_id: block.get("Original-Message-ID").and_then(bare_message_id),
        disposition,
        failure: joined("Failure"),
        error: joined("Error"),
        warning: joined("Warning"),
        final_delivery_extension: block.has(FINAL_DELIVERY_PARAMETER),
        extension_fields: block
            .fields
            .iter()
            .filter(|f| !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(&f.name)))
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect(),
        from: None,
    })
}

/// An address as written in a header or a report field: sanitised, no brackets.
fn subject_prefix(kind: &DispositionType) -> &'static str {
    match kind {
        DispositionType::Processed => "Processed",
        DispositionType::Dispatched => "Dispatched",
        DispositionType::Failed => "Failed",
        DispositionType::Displayed => "Displayed",
        DispositionType::Deleted => "Deleted",
        DispositionType::Denied => "Denied",
        DispositionType::Other(_) => "Disposition notification",
    }
}

/// The human-readable part (RFC 6522 §3 first part). It names the message and the
/// recipient only: no subject, no content, since Direct messages carry health data.
fn explanation(spec: &MdnSpec<'_>) -> String {
    let message = match spec.original_message_id.map(compose::msg_id) {
        Some(id) if !id.is_empty() => format!("Your message <{id}>"),
        _ => "Your message".to_string(),
    };
    let rcpt = address(spec.final_recipient);
    let mut text = match &spec.disposition.kind {
        DispositionType::Processed => format!(
            "{message} to {rcpt} was received and processed by the recipient's system. \
             This does not mean the recipient has read it."
        ),
        DispositionType::Dispatched => {
            format!("{message} to {rcpt} was delivered to the recipient's final destination.")
        }
        DispositionType::Failed => format!("{message} to {rcpt} could not be delivered."),
        DispositionType::Displayed => format!("{message} to {rcpt} was displayed."),
        DispositionType::Deleted => {
            format!("{message} to {rcpt} was deleted without being displayed.")
        }
        DispositionType::Denied => {
            format!("The recipient {rcpt} declined to send a notification about {message}.")
        }
        DispositionType::Other(k) => format!("{message} to {rcpt} has disposition {k}."),
    };
    if let Some(f) = spec.failure {
        text.push_str("\nReason: ");
        text.push_str(f);
    }
    text.push_str("\n\nThis notification was generated automatically.");
    text
}

/// The message/disposition-notification fields, in RFC 8098 §3.1 order.
fn report_fields(spec: &MdnSpec<'_>) -> Fields {
    let mut out = Fields::default();
    out.field("Reporting-UA", spec.reporting_ua);
    if let Some(orig) = spec.original_recipient.map(address) {
        if !orig.is_empty() {
            out.field("Original-Recipient", &format!("rfc822;{orig}"));
        }
    }
    out.field(
        "Final-Recipient",
        &format!("rfc822;{}", address(spec.final_recipient)),
    );
    if let Some(id) = spec.original_message_id.map(compose::msg_id) {
        if !id.is_empty() {
            out.field("Original-Message-ID", &format!("<{id}>"));
        }
    }
    out.field("Disposition", &spec.disposition.to_string());
    if let Some(failure) = spec.failure {
        let is_error = spec
            .disposition
            .modifiers
            .iter()
            .any(|m| m.eq_ignore_ascii_case("error"));
        out.field(if is_error { "Error" } else { "Failure" }, failure);
    }
    if spec.final_delivery_extension {
        // Direct IG: the extension field carries no value.
        out.flag(FINAL_DELIVERY_PARAMETER);
    }
    out
}
