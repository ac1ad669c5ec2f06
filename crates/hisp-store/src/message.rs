//! What the store keeps about a message itself: its Message-ID, which way it
//! travels, its envelope, and the summary read from its header.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::error::StoreError;
use hisp_address::DirectAddress;

/// A Message-ID (RFC 5322 §3.6.4) without its angle brackets, as
/// `left@right`. Displayed with the brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    /// Parses a Message-ID with or without its angle brackets. It must be
    /// non-empty, printable ASCII without spaces, and at most 998 characters
    /// (RFC 5322 §2.1.1 line limit).
    pub fn parse(text: &str) -> Result<MessageId, StoreError> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix('>'))
            .unwrap_or(trimmed);
        let invalid = |reason: &str| StoreError::Invalid {
            what: "Message-ID",
            value: text.to_string(),
            reason: reason.to_string(),
        };
        if inner.is_empty() {
            return Err(invalid("it is empty"));
        }
        if inner.len() > 998 {
            return Err(invalid("it is longer than 998 characters"));
        }
        if !inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        {
            return Err(invalid(
                "it may hold only printable ASCII without spaces or angle brackets",
            ));
        }
        Ok(MessageId(inner.to_string()))
    }

    /// The id without angle brackets: the form stored and indexed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

impl FromStr for MessageId {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageId::parse(s)
    }
}

/// Which way a queued message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageDirection {
    /// Submitted by a portal or EHR, to be sealed and relayed to other HISPs
    /// (or delivered locally).
    Outbound,
    /// Received from another HISP, to be opened and delivered to a mailbox.
    Inbound,
}

impl MessageDirection {
    /// `outbound` or `inbound`: the name in the database, CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageDirection::Outbound => "outbound",
            MessageDirection::Inbound => "inbound",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<MessageDirection> {
        match name {
            "outbound" => Some(MessageDirection::Outbound),
            "inbound" => Some(MessageDirection::Inbound),
            _ => None,
        }
    }
}

impl fmt::Display for MessageDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The row id of a queued message (its bytes and envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRecordId(pub i64);

impl fmt::Display for MessageRecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The SMTP envelope a message came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM; `None` for the null reverse-path `<>` (MDNs and DSNs).
    pub from: Option<DirectAddress>,
    /// The RCPT TO addresses, in the order given.
    pub recipients: Vec<DirectAddress>,
    /// When the message was received (the time of the SMTP 250).
    pub received_at: OffsetDateTime,
}

/// What the store reads from a message's header for listings: nothing here
/// is trusted, it is only shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSummary {
    /// The Message-ID, if the header has a well-formed one.
    pub message_id: Option<MessageId>,
    /// The From field as written (display name and address).
    pub from: Option<String>,
    /// The Subject, RFC 2047 encoded-words decoded.
    pub subject: Option<String>,
    /// The Date field, if it parses.
    pub date: Option<OffsetDateTime>,
    /// The address of the first From mailbox, as written.
    pub from_address: Option<String>,
    /// The display name of the first From mailbox, if it has one.
    pub from_name: Option<String>,
    /// Whether the message is a report (`multipart/report`, RFC 6522: an
    /// MDN or DSN) rather than mail a person wrote.
    pub report: bool,
}

impl HeaderSummary {
    /// Reads the summary from the header of an RFC 5322 message. A message
    /// without a header, or with fields that do not parse, gives empty fields
    /// rather than an error: the store keeps whatever it is given.
    pub fn read(message: &[u8]) -> HeaderSummary {
        use mail_parser::MimeHeaders;
        let Some(parsed) = mail_parser::MessageParser::default().parse_headers(message) else {
            return HeaderSummary::default();
        };
        let first = parsed.from().and_then(|a| a.first());
        let from = first.map(|a| match (a.name(), a.address()) {
            (Some(n), Some(addr)) => format!("{n} <{addr}>"),
            (None, Some(addr)) => addr.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        });
        let report = parsed.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        });
        let date = parsed
            .date()
            .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok());
        HeaderSummary {
            message_id: parsed.message_id().and_then(|m| MessageId::parse(m).ok()),
            from: from.filter(|f| !f.is_empty()),
            subject: parsed.subject().map(str::to_string),
            date,
            from_address: first.and_then(|a| a.address()).map(str::to_string),
            from_name: first
                .and_then(|a| a.name())
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_kept_without_brackets_and_shown_with_them() {
        let id = MessageId::parse(" <1@a.example> ").unwrap();
        assert_eq!(id.as_str(), "1@a.example");
        assert_eq!(id.to_string(), "<1@a.example>");
        assert_eq!(MessageId::parse("1@a.example").unwrap(), id);
        assert!(MessageId::parse("<>").is_err());
        assert!(MessageId::parse("a b@c").is_err());
    }

    #[test]
    fn header_summary_reads_from_subject_date_and_message_id() {
        let msg = b"From: Alice <alice@a.example>\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@a.example>\r\n\
\r\n\
body\r\n";
        let s = HeaderSummary::read(msg);
        assert_eq!(s.from.as_deref(), Some("Alice <alice@a.example>"));
        assert_eq!(s.subject.as_deref(), Some("café"));
        assert_eq!(s.date.map(|d| d.unix_timestamp()), Some(1_704_067_200));
        assert_eq!(
            s.message_id.map(|m| m.to_string()).as_deref(),
            Some("<1@a.example>")
        );
        assert_eq!(s.from_address.as_deref(), Some("alice@a.example"));
        assert_eq!(s.from_name.as_deref(), Some("Alice"));
        assert!(!s.report);
    }

    #[test]
    fn header_summary_tells_reports_from_mail() {
        let dsn = b"From: postmaster@a.example\r\n\
Content-Type: Multipart/Report; report-type=delivery-status; boundary=x\r\n\
\r\n\
--x--\r\n";
        let s = HeaderSummary::read(dsn);
        assert!(s.report);
        assert_eq!(s.from_address.as_deref(), Some("postmaster@a.example"));
        assert_eq!(s.from_name, None);
    }

    #[test]
    fn a_message_without_header_fields_gives_an_empty_summary() {
        assert_eq!(
            HeaderSummary::read(b"\r\njust a body"),
            HeaderSummary::default()
        );
    }
}
