//! Reading multipart/report (RFC 6522): what kind of report a message is, and where its
//! parts are.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};

use crate::dsn::{self, Dsn};
use crate::error::MdnError;
use crate::mdn::{self, Mdn};

/// Media types of the MDN report part (RFC 8098 §3.1; RFC 6533 §6 for the UTF-8 form).
pub(crate) const MDN_TYPES: &[&str] = &[
    "message/disposition-notification",
    "message/global-disposition-notification",
];
/// Media types of the DSN report part (RFC 3464 §2.1; RFC 6533 §6).
pub(crate) const DSN_TYPES: &[&str] =
    &["message/delivery-status", "message/global-delivery-status"];
/// Media types of the optional third part carrying the original message or its header.
pub(crate) const ORIGINAL_TYPES: &[&str] = &[
    "text/rfc822-headers",
    "message/rfc822",
    "message/global",
    "message/global-headers",
];

/// What kind of report a message is. A report must never be answered with an MDN
/// (RFC 8098 §2.1) or bounced with a DSN (RFC 3464 §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    /// A message disposition notification (report-type `disposition-notification`).
    Mdn,
    /// A delivery status notification (report-type `delivery-status`).
    Dsn,
    /// Another report-type, lower-cased (empty when the parameter is missing).
    Other(String),
}

/// A parsed delivery report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A message disposition notification.
    Mdn(Mdn),
    /// A delivery status notification.
    Dsn(Dsn),
}

/// Says whether `message` is a delivery report, by the same reading as [`parse_report`]:
/// a `multipart/report` (any case) by its `report-type` parameter (RFC 6522 §3), a bare
/// `message/disposition-notification` / `message/delivery-status`, a multipart/report one
/// level inside a multipart root (a report some systems wrap in multipart/mixed), and a
/// multipart/report without report-type by the report part it holds. `None` for anything
/// else. A message whose header says it is not multipart is judged by its header alone.
pub fn report_kind(message: &[u8]) -> Option<ReportKind> {
    let head = MessageParser::default().parse_headers(message)?;
    report_kind_with_head(&head, message)
}

/// [`report_kind`] of `message` whose header the caller parsed already (with
/// `MessageParser::default()`, `head`), so several checks share one parse;
/// the body is read only for a multipart message.
pub fn report_kind_with_head(head: &Message<'_>, message: &[u8]) -> Option<ReportKind> {
    match part_kind(head.root_part()) {
        Some(ReportKind::Other(t)) if t.is_empty() => {}
        Some(kind) => return Some(kind),
        None if media_type(head.root_part()).0 != "multipart" => return None,
        None => {}
    }
    let parsed = parse(message).ok()?;
    match kind_in(&parsed)? {
        ReportKind::Other(t) if t.is_empty() => Some(if find_part(&parsed, MDN_TYPES).is_some() {
            ReportKind::Mdn
        } else if find_part(&parsed, DSN_TYPES).is_some() {
            ReportKind::Dsn
        } else {
            ReportKind::Other(t)
        }),
        kind => Some(kind),
    }
}

/// Parses an MDN or a DSN, whichever `message` is.
///
/// The report may be the top-level multipart/report, a multipart/report one level inside
/// multipart/mixed, or a bare report body. A multipart/report without report-type is read
/// by the report part it holds.
pub fn parse_report(message: &[u8]) -> Result<Report, MdnError> {
    let parsed = parse(message)?;
    match kind_in(&parsed) {
        Some(ReportKind::Mdn) => mdn::from_message(&parsed).map(Report::Mdn),
        Some(ReportKind::Dsn) => dsn::from_message(&parsed).map(Report::Dsn),
        Some(ReportKind::Other(t)) if !t.is_empty() => {
            Err(MdnError::UnsupportedReportType(crate::fields::clip(&t)))
        }
        _ => {
            if find_part(&parsed, MDN_TYPES).is_some() {
                mdn::from_message(&parsed).map(Report::Mdn)
            } else if find_part(&parsed, DSN_TYPES).is_some() {
                dsn::from_message(&parsed).map(Report::Dsn)
            } else {
                Err(MdnError::NotAReport(top_type(&parsed)))
            }
        }
    }
}

/// Parses the whole message with mail-parser (MIME structure, transfer encodings).
pub(crate) fn parse(message: &[u8]) -> Result<Message<'_>, MdnError> {
    MessageParser::default()
        .parse(message)
        .ok_or(MdnError::NotAMessage)
}

/// The top-level Content-Type as `type/subtype`, for error messages.
pub(crate) fn top_type(message: &Message<'_>) -> String {
    let (t, s) = media_type(message.root_part());
    crate::fields::clip(&format!("{t}/{s}"))
}

/// The report part of type `types` (named `name` in the error), or why there is none: the
/// message is a report without it, or no report at all.
pub(crate) fn required_part<'a>(
    message: &'a Message<'a>,
    types: &[&str],
    name: &'static str,
) -> Result<&'a MessagePart<'a>, MdnError> {
    find_part(message, types).ok_or_else(|| match kind_in(message) {
        Some(_) => MdnError::MissingReportPart(name),
        None => MdnError::NotAReport(top_type(message)),
    })
}

/// The report kind of the root, or of a multipart/report directly under a multipart root.
pub(crate) fn kind_in(message: &Message<'_>) -> Option<ReportKind> {
    let root = message.root_part();
    if let Some(kind) = part_kind(root) {
        return Some(kind);
    }
    children(message, root, 0)
        .filter_map(|p| part_kind(p).filter(|_| media_type(p).0 == "multipart"))
        .next()
}

fn part_kind(part: &MessagePart<'_>) -> Option<ReportKind> {
    let (t, s) = media_type(part);
    let full = format!("{t}/{s}");
    if MDN_TYPES.contains(&full.as_str()) {
        return Some(ReportKind::Mdn);
    }
    if DSN_TYPES.contains(&full.as_str()) {
        return Some(ReportKind::Dsn);
    }
    if full != "multipart/report" {
        return None;
    }
    let report_type = part
        .content_type()
        .and_then(|ct| ct.attributes())
        .and_then(|attrs| {
            attrs
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case("report-type"))
                .map(|a| a.value.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    Some(match report_type.as_str() {
        "disposition-notification" | "global-disposition-notification" => ReportKind::Mdn,
        "delivery-status" | "global-delivery-status" => ReportKind::Dsn,
        _ => ReportKind::Other(report_type),
    })
}

/// A part's media type, lower-cased; `text/plain` when absent (RFC 2045 §5.2).
pub(crate) fn media_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            ct.ctype().trim().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().trim().to_ascii_lowercase(),
        ),
        None => ("text".to_string(), "plain".to_string()),
    }
}

fn children<'m, 'x>(
    message: &'m Message<'x>,
    part: &'m MessagePart<'x>,
    self_id: u32,
) -> impl Iterator<Item = &'m MessagePart<'x>> + 'm {
    part.sub_parts()
        .unwrap_or_default()
        .iter()
        .filter(move |id| **id != self_id)
        .filter_map(|id| message.part(*id))
}

/// The first part whose media type is one of `types`: the root itself, a part of the
/// root, or a part of a multipart part of the root. The depth is fixed at two levels, so a
/// hostile nesting costs nothing.
pub(crate) fn find_part<'m, 'x>(
    message: &'m Message<'x>,
    types: &[&str],
) -> Option<&'m MessagePart<'x>> {
    let is = |p: &MessagePart<'_>| {
        let (t, s) = media_type(p);
        types.contains(&format!("{t}/{s}").as_str())
    };
    let root = message.root_part();
    if is(root) {
        return Some(root);
    }
    if let Some(found) = children(message, root, 0).find(|p| is(p)) {
        return Some(found);
    }
    let ids = root.sub_parts().unwrap_or_default();
    for id in ids.iter().filter(|id| **id != 0) {
        let Some(child) = message.part(*id) else {
            continue;
        };
        if let Some(found) = children(message, child, *id).find(|p| is(p)) {
            return Some(found);
        }
    }
    None
}

/// The From address of the message, if any.
pub(crate) fn from_address(message: &Message<'_>) -> Option<String> {
    message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(depth: usize) -> String {
        let mut msg = String::new();
        for i in 0..depth {
            msg.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        msg.push_str("Content-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822;a@b\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\n");
        for i in (0..depth).rev() {
            msg.push_str(&format!("--b{i}--\r\n"));
        }
        msg
    }

    #[test]
    fn report_part_is_found_at_most_two_levels_down() {
        for depth in 0..=2 {
            assert!(
                matches!(parse_report(nest(depth).as_bytes()), Ok(Report::Mdn(_))),
                "depth {depth}"
            );
        }
        assert_eq!(
            parse_report(nest(3).as_bytes()).unwrap_err().code(),
            "not-a-report"
        );
    }

    #[test]
    fn empty_input_is_not_a_message() {
        assert_eq!(parse_report(b"").unwrap_err(), MdnError::NotAMessage);
        assert_eq!(report_kind(b""), None);
    }
}
