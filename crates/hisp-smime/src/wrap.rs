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

/// Unwraps the verified content: the body of a message/rfc822 wrapper byte for
/// byte, or, for senders that do not wrap, the outer headers (less the MIME
/// ones, which describe the envelope) followed by the signed entity.
pub(crate) fn unwrap<'a>(
    content: &'a [u8],
    outer_headers: Option<&[u8]>,
) -> Result<Unwrapped<'a>, SmimeError> {
    let entity = Entity::parse(content)?;
    if entity.mime_type == "message/rfc822" {
        return Ok(Unwrapped::Inner(entity.body()));
    }
    let mut message = Vec::with_capacity(content.len() + 1024);
    if let Some(outer) = outer_headers {
        for field in header_fields(outer) {
            let name = field_name(field).to_ascii_lowercase();
            if name.starts_with("content-") || name == "mime-version" {
                continue;
            }
            message.extend_from_slice(field);
        }
    }
    message.extend_from_slice(b"MIME-Version: 1.0\r\n");
    message.extend_from_slice(content);
    Ok(Unwrapped::Rebuilt(message))
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
}
