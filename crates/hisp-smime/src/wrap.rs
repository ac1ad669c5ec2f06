//! Header wrapping (Applicability Statement 1.3 §3; RFC 8551 §3.1): the whole
//! message travels inside the signature as message/rfc822, and only copies of
//! the headers needed for routing and threading stay outside.

use mail_parser::{HeaderName, MessageParser};

use crate::canon::header_fields;
use crate::error::SmimeError;
use crate::mime::Entity;

/// Headers copied outside, in this order. The Subject is added on request.
const OUTER: [&str; 7] = [
    "From",
    "To",
    "Cc",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
];
const ADDRESS_HEADERS: [&str; 3] = ["from", "to", "cc"];

/// A wrapped message: the header of the message/rfc822 entity (the message
/// itself follows it unchanged), and the outer header block.
pub(crate) struct Wrapped {
    pub entity_header: Vec<u8>,
    pub outer_headers: Vec<u8>,
}

/// Wraps a canonical (CRLF) message.
pub(crate) fn wrap(message: &[u8], copy_subject: bool) -> Result<Wrapped, SmimeError> {
    let parsed = Entity::parse(message)?;
    let header = parsed.header_block();
    let fields = header_fields(&header);
    if !fields
        .iter()
        .any(|f| field_name(f).eq_ignore_ascii_case("from"))
    {
        return Err(SmimeError::MalformedMime(
            "the message has no From header (RFC 5322 §3.6 requires one)".into(),
        ));
    }
    let mut outer = b"MIME-Version: 1.0\r\n".to_vec();
    let mut wanted: Vec<&str> = OUTER.to_vec();
    if copy_subject {
        wanted.push("Subject");
    }
    for name in wanted {
        for field in fields
            .iter()
            .filter(|f| field_name(f).eq_ignore_ascii_case(name))
        {
            if let Some(ascii) = outer_copy(field, name) {
                outer.extend_from_slice(&ascii);
            }
        }
    }
    let mut entity_header = b"Content-Type: message/rfc822\r\n".to_vec();
    if !message.is_ascii() {
        // RFC 2046 §5.2.1: message/rfc822 may be 7bit, 8bit or binary only.
        entity_header.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
    }
    entity_header.extend_from_slice(b"\r\n");
    Ok(Wrapped {
        entity_header,
        outer_headers: outer,
    })
}

fn field_name(field: &[u8]) -> &str {
    let end = field.iter().position(|&b| b == b':').unwrap_or(0);
    std::str::from_utf8(&field[..end]).unwrap_or("").trim()
}

/// The field as it may appear outside: unchanged when ASCII; address fields
/// with RFC 2047 encoded display names; other non-ASCII fields left inside.
fn outer_copy(field: &[u8], name: &str) -> Option<Vec<u8>> {
    if field.is_ascii() {
        let mut copy = field.to_vec();
        if !copy.ends_with(b"\n") {
            copy.extend_from_slice(b"\r\n");
        }
        return Some(copy);
    }
    let lower = name.to_ascii_lowercase();
    if lower == "subject" {
        let value = std::str::from_utf8(&field[name.len() + 1..]).ok()?.trim();
        return Some(format!("Subject: {}\r\n", encode_word(value)).into_bytes());
    }
    if !ADDRESS_HEADERS.contains(&lower.as_str()) {
        return None;
    }
    let parsed = MessageParser::new()
        .with_address_headers()
        .parse_headers(field)?;
    let header_name = match lower.as_str() {
        "from" => HeaderName::From,
        "to" => HeaderName::To,
        _ => HeaderName::Cc,
    };
    let list = parsed.header(header_name)?.as_address()?;
    let mut rendered = Vec::new();
    for addr in list.iter() {
        let email = addr.address()?;
        if !email.is_ascii() {
            return None;
        }
        rendered.push(match addr.name() {
            Some(n) if !n.is_empty() => format!("{} <{email}>", encode_word(n)),
            _ => email.to_string(),
        });
    }
    Some(format!("{name}: {}\r\n", rendered.join(",\r\n ")).into_bytes())
}

/// RFC 2047 §4.1 "B" encoded words, each under 75 characters, split on
/// character boundaries.
fn encode_word(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for ch in text.chars() {
        if chunk.len() + ch.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(ch);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64_simd::STANDARD.encode_to_string(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Unwraps the verified content: the body of a message/rfc822 wrapper byte
/// for byte, or, for a sender that does not wrap, the signed entity with
/// the outer header fields it lacks put back in front.
///
/// Header wrapping is the sender's choice (Applicability Statement 1.3;
/// RFC 8551 §3.1), and senders that do not wrap send two forms: the whole
/// message signed (its own From, To, Subject, Date, Message-ID and
/// MIME-Version, the same fields copied outside) or only its MIME entity
/// (Content-* fields alone, the RFC 5322 fields outside). One rule serves
/// both, so that every field appears once (RFC 5322 §3.6):
/// - the signed entity is kept byte for byte, and its fields win: a field
///   it has replaces every outer copy of that name (letter case ignored);
/// - the outer fields it lacks are kept, in their order, in front of it:
///   trace fields (Received, Return-Path, RFC 5322 §3.6.7) stay on top, and
///   a MIME-only entity gets the outer From, To, Subject...;
/// - Received fields are kept one by one (RFC 5321 §4.4): an outer one is
///   dropped only when the entity holds the same field, so the hops after
///   the signature stay on top of the entity's own trace;
/// - the outer MIME-Version and Content-* fields describe the envelope and
///   are never kept; `MIME-Version: 1.0` is added when the entity has none.
pub(crate) fn unwrap<'a>(
    content: &'a [u8],
    outer_headers: Option<&[u8]>,
) -> Result<Unwrapped<'a>, SmimeError> {
    let entity = Entity::parse(content)?;
    if entity.mime_type == "message/rfc822" {
        return Ok(Unwrapped::Inner(entity.body()));
    }
    let entity_header = entity.header_block();
    let inner_fields = header_fields(&entity_header);
    let inner: Vec<String> = inner_fields.iter().filter_map(|f| field_key(f)).collect();
    let mut message = Vec::with_capacity(content.len() + 1024);
    for field in header_fields(outer_headers.unwrap_or_default()) {
        let Some(name) = field_key(field) else {
            continue;
        };
        if name.starts_with("content-") || name == "mime-version" {
            continue;
        }
        // RFC 5321 §4.4: a Received field once added is never deleted, and
        // each hop adds its own: an outer one goes only when it is a copy
        // of one the signed entity holds.
        let replaced = if name == "received" {
            inner_fields.iter().any(|f| unfolded(f) == unfolded(field))
        } else {
            inner.contains(&name)
        };
        if !replaced {
            push_crlf_lines(&mut message, field);
        }
    }
    if !inner.iter().any(|n| n == "mime-version") {
        message.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    message.extend_from_slice(content);
    Ok(Unwrapped::Rebuilt(message))
}

/// Appends a header field with each line ending in CRLF, as the signed
/// entity does (RFC 8551 §3.1.1): the outer header may end its lines with
/// a bare LF (a message saved on a Unix system). Only LF is a line end
/// here; a bare CR inside a field is left as it is, never made a new line.
fn push_crlf_lines(out: &mut Vec<u8>, field: &[u8]) {
    for line in field.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
}

/// A field with its folding and runs of white space made one space, for
/// telling a copy of a field from another field of the same name.
fn unfolded(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    for word in field
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    out
}

/// The name of a header field, lower case, or `None` for a line that is not
/// a field (no colon, or an empty name).
fn field_key(field: &[u8]) -> Option<String> {
    let colon = field.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&field[..colon]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// The message recovered from verified content.
pub(crate) enum Unwrapped<'a> {
    /// The body of a message/rfc822 wrapper: the sender's message as signed.
    Inner(&'a [u8]),
    /// An unwrapped sender's entity with the outer headers put back in front.
    Rebuilt(Vec<u8>),
}

impl Unwrapped<'_> {
    /// True for a message/rfc822 wrapper.
    pub(crate) fn wrapped(&self) -> bool {
        matches!(self, Unwrapped::Inner(_))
    }

    #[cfg(test)]
    fn into_vec(self) -> Vec<u8> {
        match self {
            Unwrapped::Inner(s) => s.to_vec(),
            Unwrapped::Rebuilt(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Alice <alice@a.example>\r\nTo: bob@b.example\r\nSubject: lab results\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@a.example>\r\nMIME-Version: 1.0\r\n\r\nhello\r\n";

    #[test]
    fn subject_stays_inside_unless_asked_applicability_statement_1_3() {
        let w = wrap(MSG, false).unwrap();
        let outer = String::from_utf8(w.outer_headers).unwrap();
        assert!(outer.contains("From: Alice <alice@a.example>\r\n"));
        assert!(outer.contains("Message-ID: <1@a.example>\r\n"));
        assert!(!outer.contains("Subject"));
        assert!(wrap(MSG, true)
            .unwrap()
            .outer_headers
            .windows(8)
            .any(|w| w == b"Subject:"));
        assert_eq!(w.entity_header, b"Content-Type: message/rfc822\r\n\r\n");
    }

    #[test]
    fn outer_headers_are_ascii_only() {
        let msg = "From: Zoë Ñandú <zoe@a.example>\r\nTo: bob@b.example\r\nSubject: résultats\r\n\r\nbody é\r\n";
        let w = wrap(msg.as_bytes(), true).unwrap();
        assert!(w.outer_headers.is_ascii());
        let outer = String::from_utf8(w.outer_headers).unwrap();
        assert!(outer.contains("<zoe@a.example>"), "{outer}");
        assert!(outer.contains("=?UTF-8?B?"), "{outer}");
        assert!(String::from_utf8(w.entity_header)
            .unwrap()
            .contains("Content-Transfer-Encoding: 8bit"));
    }

    #[test]
    fn message_without_from_is_refused() {
        assert!(matches!(
            wrap(b"To: bob@b.example\r\n\r\nx\r\n", false),
            Err(SmimeError::MalformedMime(_))
        ));
    }

    #[test]
    fn unwrap_returns_the_inner_message_byte_for_byte() {
        let w = wrap(MSG, false).unwrap();
        let entity = [w.entity_header.as_slice(), MSG].concat();
        let unwrapped = unwrap(&entity, None).unwrap();
        assert!(unwrapped.wrapped());
        assert_eq!(unwrapped.into_vec(), MSG);
    }

    #[test]
    fn unwrapped_content_gets_the_outer_headers() {
        let outer = b"From: a@b\r\nContent-Type: application/pkcs7-mime\r\nMIME-Version: 1.0\r\nTo: c@d\r\n";
        let unwrapped = unwrap(b"Content-Type: text/plain\r\n\r\nhi\r\n", Some(outer)).unwrap();
        assert!(!unwrapped.wrapped());
        assert_eq!(
            unwrapped.into_vec(),
            b"From: a@b\r\nTo: c@d\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        );
    }

    const ENVELOPE: &[u8] =
        b"Received: from hisp.a.example\r\n\tby hisp.b.example; Mon, 1 Jan 2024 00:00:01 +0000\r\n\
Return-Path: <alice@a.example>\r\n\
To: bob@b.example\r\n\
From: alice@a.example\r\n\
Subject: outer copy\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@a.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
Content-Transfer-Encoding: base64\r\n";

    #[test]
    fn whole_unwrapped_message_keeps_its_own_fields_once_and_the_outer_trace_rfc5322_3_6() {
        let unwrapped = unwrap(MSG, Some(ENVELOPE)).unwrap();
        assert!(!unwrapped.wrapped());
        let mut want = b"Received: from hisp.a.example\r\n\tby hisp.b.example; Mon, 1 Jan 2024 00:00:01 +0000\r\n\
Return-Path: <alice@a.example>\r\n"
            .to_vec();
        want.extend_from_slice(MSG);
        assert_eq!(
            String::from_utf8(unwrapped.into_vec()).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn an_inner_field_replaces_every_outer_copy_whatever_the_letter_case() {
        let outer = b"SUBJECT: first outer\r\nsubject: second outer\r\nCc: carol@b.example\r\nFrom: a@b\r\n";
        let inner = b"subject: signed\r\nFROM: a@b\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
        let merged = unwrap(inner, Some(outer)).unwrap().into_vec();
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            "Cc: carol@b.example\r\nMIME-Version: 1.0\r\nsubject: signed\r\nFROM: a@b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        );
    }

    #[test]
    fn outer_fields_with_bare_lf_are_kept_with_crlf_and_a_bare_cr_is_no_line_end() {
        let outer = b"Received: from x\n\tby y\nSubject: a\rBcc: c@d\nMIME-Version: 1.0\n";
        let merged = unwrap(b"Content-Type: text/plain\r\n\r\nhi\r\n", Some(outer))
            .unwrap()
            .into_vec();
        assert_eq!(
            merged,
            b"Received: from x\r\n\tby y\r\nSubject: a\rBcc: c@d\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        );
    }

    #[test]
    fn outer_lines_that_are_not_fields_are_dropped() {
        let outer = b"From: a@b\r\nnot a field\r\n: no name\r\n";
        let merged = unwrap(b"Content-Type: text/plain\r\n\r\nhi\r\n", Some(outer))
            .unwrap()
            .into_vec();
        assert_eq!(
            merged,
            b"From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        );
    }

    #[test]
    fn outer_received_fields_stay_unless_the_entity_holds_the_same_rfc5321_4_4() {
        let outer = b"Received: by hisp.b.example; Mon, 1 Jan 2024 00:00:02 +0000\r\n\
Received: from portal\r\n  by hisp.a.example; Mon, 1 Jan 2024 00:00:01 +0000\r\n\
From: a@a.example\r\n";
        let inner =
            b"Received: from portal by hisp.a.example;\r\n\tMon, 1 Jan 2024 00:00:01 +0000\r\n\
From: a@a.example\r\nMIME-Version: 1.0\r\n\r\nhi\r\n";
        let merged = unwrap(inner, Some(outer)).unwrap().into_vec();
        let mut want = b"Received: by hisp.b.example; Mon, 1 Jan 2024 00:00:02 +0000\r\n".to_vec();
        want.extend_from_slice(inner);
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }
}
