//! What the API shows of a stored message: its header fields, its text and
//! its attachments, read with mail-parser from the bytes the mailbox holds
//! (for received mail: decrypted and unwrapped).

use mail_parser::{Address, Message, MessageParser, MimeHeaders};
use time::OffsetDateTime;

/// A stored message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The address in From.
    pub from: Option<String>,
    /// The display name in From.
    pub from_name: Option<String>,
    /// The addresses in To.
    pub to: Vec<String>,
    /// The Subject.
    pub subject: Option<String>,
    /// The Date, if it parses.
    pub date: Option<OffsetDateTime>,
    /// The text body (an HTML-only message is turned into text).
    pub text: String,
    /// The In-Reply-To Message-ID, in angle brackets.
    pub in_reply_to: Option<String>,
    /// The attachments, in the order they appear.
    pub attachments: Vec<Attachment>,
}

/// One attachment of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its position among the message's attachments, from 0.
    pub index: usize,
    /// Its file name, sanitised ([`sanitise_name`]).
    pub name: String,
    /// `type/subtype`, or `application/octet-stream` when missing or odd.
    pub content_type: String,
    /// Its decoded bytes.
    pub data: Vec<u8>,
}

/// Parses a stored message. Bytes mail-parser cannot read at all give an
/// empty message rather than an error: the entry still shows in its folder.
pub fn parse(bytes: &[u8]) -> Parsed {
    let Some(message) = MessageParser::default().parse(bytes) else {
        return Parsed {
            from: None,
            from_name: None,
            to: Vec::new(),
            subject: None,
            date: None,
            text: String::new(),
            in_reply_to: None,
            attachments: Vec::new(),
        };
    };
    let first_from = message.from().and_then(Address::first);
    Parsed {
        from: first_from.and_then(|a| a.address()).map(str::to_string),
        from_name: first_from.and_then(|a| a.name()).map(str::to_string),
        to: addresses(message.to()),
        subject: message.subject().map(str::to_string),
        date: message
            .date()
            .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok()),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        in_reply_to: in_reply_to(&message),
        attachments: message
            .attachments()
            .enumerate()
            .map(|(index, part)| Attachment {
                index,
                name: sanitise_name(part.attachment_name().unwrap_or("")),
                content_type: content_type(part),
                data: part.contents().to_vec(),
            })
            .collect(),
    }
}

fn addresses(field: Option<&Address<'_>>) -> Vec<String> {
    field
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn in_reply_to(message: &Message<'_>) -> Option<String> {
    let value = message.in_reply_to();
    let first = value
        .as_text()
        .map(str::to_string)
        .or_else(|| value.as_text_list()?.first().map(|s| s.to_string()))?;
    Some(format!("<{first}>"))
}

/// `type/subtype` of a part when both are RFC 2045 tokens, else
/// `application/octet-stream`, so nothing odd reaches a response header.
fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    let Some(ct) = part.content_type() else {
        return "application/octet-stream".into();
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match ct.subtype() {
        Some(sub) if token(ct.ctype()) && token(sub) => {
            format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
        }
        _ => "application/octet-stream".into(),
    }
}

/// A file name safe to show and to put in `Content-Disposition`: only the
/// last path component, no control characters, no quotes or backslashes,
/// no leading dots, at most 200 characters; `attachment` when nothing is
/// left.
pub fn sanitise_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\u{202e}' | '\u{202d}'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "attachment".into()
    } else {
        cleaned.to_string()
    }
}

/// The `Content-Disposition` value for downloading an attachment: an
/// ASCII `filename` (other characters as `_`) and the full name as an
/// RFC 5987 `filename*`.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // RFC 5987 §3.2.1: attr-char is ALPHA / DIGIT / "!#$&+-.^_`|~".
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: \"Dr Who\" <doc@b.example>\r\n\
To: pat@a.example, other@a.example\r\n\
Subject: results\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0200\r\n\
In-Reply-To: <orig-1@a.example>\r\n\
Message-ID: <reply-1@b.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
All fine.\r\n\
--b1\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"../../etc/\x01re\"sults.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b1--\r\n";

    #[test]
    fn header_fields_text_and_attachments_are_read_from_the_stored_message() {
        let p = parse(MAIL);
        assert_eq!(p.from.as_deref(), Some("doc@b.example"));
        assert_eq!(p.from_name.as_deref(), Some("Dr Who"));
        assert_eq!(p.to, ["pat@a.example", "other@a.example"]);
        assert_eq!(p.subject.as_deref(), Some("results"));
        assert_eq!(
            p.date.map(|d| d.unix_timestamp()),
            Some(1_704_096_000), // 08:00 UTC
        );
        assert_eq!(p.text.trim_end(), "All fine.");
        assert_eq!(p.in_reply_to.as_deref(), Some("<orig-1@a.example>"));
        assert_eq!(p.attachments.len(), 1);
        let a = &p.attachments[0];
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.data, b"%PDF-1.4\n");
        assert!(
            !a.name.contains('/') && !a.name.chars().any(char::is_control),
            "{}",
            a.name
        );
    }

    #[test]
    fn file_names_lose_paths_control_characters_quotes_and_leading_dots() {
        assert_eq!(sanitise_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_name("C:\\Users\\x\\scan.pdf"), "scan.pdf");
        assert_eq!(sanitise_name("a\r\nb\x1b.pdf"), "ab.pdf");
        assert_eq!(sanitise_name("\"quoted\".png"), "quoted.png");
        assert_eq!(sanitise_name("..."), "attachment");
        assert_eq!(sanitise_name(".htaccess"), "htaccess");
        assert_eq!(sanitise_name("evil\u{202e}fdp.exe"), "evilfdp.exe");
        assert_eq!(
            content_disposition("Bericht ü.pdf"),
            "attachment; filename=\"Bericht _.pdf\"; filename*=UTF-8''Bericht%20%C3%BC.pdf"
        );
    }
}
