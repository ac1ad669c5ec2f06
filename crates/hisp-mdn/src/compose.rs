//! Writing report messages (RFC 6522 multipart/report) with `mail-builder`: the message
//! header, the MIME structure, the transfer encodings and the folding of every field are
//! mail-builder's; dates are `hisp_date`'s. What stays here is what no MIME library
//! knows: the field blocks of the machine-readable part (RFC 8098 §3.1, RFC 3464 §2),
//! written through mail-builder's header writer, and making caller-supplied values safe
//! for them.
//!
//! Everything written is US-ASCII with CRLF line ends and lines well under the 998
//! characters RFC 5322 §2.1.1 allows, so a report can go through any MTA as 7bit.

use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::Header;
use mail_builder::mime::{make_boundary, BodyPart, MimePart};
use mail_builder::MessageBuilder;
use time::OffsetDateTime;

/// A word longer than this is cut so no line reaches the 998 MUST limit.
const HARD_WORD: usize = 900;

/// One report message (RFC 6522 §3): the human-readable text, the machine-readable
/// report and, for a DSN, the original message's header block.
pub(crate) struct ReportMessage<'a> {
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) date: OffsetDateTime,
    pub(crate) message_id: &'a str,
    /// The whole Subject, e.g. `Processed: <original subject>`.
    pub(crate) subject: &'a str,
    pub(crate) original_message_id: Option<&'a str>,
    /// `disposition-notification` or `delivery-status`: the report-type parameter and
    /// the second part's `message/<report_type>`.
    pub(crate) report_type: &'a str,
    /// The text/plain part, a CRLF body made by [`text_body`].
    pub(crate) human: String,
    /// The `message/<report_type>` part, made by [`Fields`].
    pub(crate) report: Fields,
    /// The third part, `text/rfc822-headers` (RFC 6522 §3, RFC 3464 §2): a header block
    /// as [`header_block`] cuts it.
    pub(crate) original_headers: Option<Vec<u8>>,
}

/// Writes [`ReportMessage`] with mail-builder: From, To, Date, Message-ID, Subject
/// (RFC 2047 encoded words when it is not ASCII), In-Reply-To and References to the
/// original, `Auto-Submitted: auto-replied` (RFC 3834 §5: responders do not answer
/// it), MIME-Version and the multipart/report Content-Type with its required
/// report-type (RFC 6522 §3), then the parts. No Disposition-Notification-To is ever
/// written: an MDN MUST NOT request an MDN (RFC 8098 §2.1), and no notification is
/// requested for a DSN (RFC 3464 §1).
pub(crate) fn write(report: ReportMessage<'_>) -> Vec<u8> {
    let ReportMessage {
        from,
        to,
        date,
        message_id,
        subject,
        original_message_id,
        report_type,
        human,
        report,
        original_headers,
    } = report;
    let boundary = boundary(&[
        human.as_bytes(),
        &report.bytes,
        original_headers.as_deref().unwrap_or_default(),
    ]);

    let mut parts = Vec::with_capacity(3);
    parts.push(MimePart::new(
        mail_builder::headers::content_type::ContentType::new("text/plain")
            .attribute("charset", "us-ascii"),
        BodyPart::Text(human.into()),
    ));
    // RFC 8098 §3.1 / RFC 3464 §2.1: 7bit MUST be used for the report part, so it is
    // written as it is (its fields are ASCII, lines short) under an explicit
    // Content-Transfer-Encoding, which makes mail-builder leave it unencoded.
    parts.push(
        MimePart::new(
            format!("message/{report_type}"),
            BodyPart::Binary(report.bytes.into()),
        )
        .transfer_encoding("7bit"),
    );
    if let Some(headers) = original_headers {
        // mail-builder picks 7bit, or quoted-printable for 8-bit header bytes.
        parts.push(MimePart::new(
            "text/rfc822-headers",
            BodyPart::Binary(headers.into()),
        ));
    }
    // RFC 6522 §3 writes report-type as a token, as every report reader expects it;
    // mail-builder's typed ContentType quotes each parameter, so this one Content-Type
    // is given whole (mail-builder still folds it and takes its boundary).
    let body = MimePart::raw(BodyPart::Multipart(parts)).header(
        "Content-Type",
        Raw::new(format!(
            "multipart/report; report-type={report_type}; boundary=\"{boundary}\""
        )),
    );

    let mut builder = MessageBuilder::new()
        .from(Address::new_address(None::<&str>, address(from)))
        .to(Address::new_address(None::<&str>, address(to)))
        .header("Date", Raw::new(hisp_date::rfc5322(date)))
        .message_id(MessageId::new(msg_id(message_id)))
        .subject(Text::new(clean_text(subject)));
    if let Some(id) = original_message_id.map(msg_id).filter(|id| !id.is_empty()) {
        builder = builder
            .in_reply_to(MessageId::new(id.clone()))
            .references(MessageId::new(id));
    }
    let mut out = Vec::with_capacity(4096);
    builder
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(body)
        .serialize(&mut out);
    out
}

/// The field block(s) of a machine-readable report part (RFC 8098 §3.1, RFC 3464 §2.2,
/// §2.3): each field written by mail-builder's header writer, which folds it at spaces
/// (RFC 5322 §2.2.3), after the value is made safe by [`sanitize`] and any word long
/// enough to pass the 998 limit on one line is cut.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    bytes: Vec<u8>,
}

impl Fields {
    /// Writes `Name: value` CRLF. Nothing in `value` can add a line of its own.
    pub(crate) fn field(&mut self, name: &str, value: &str) {
        let value = cut_long_words(&sanitize(value));
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b": ");
        Raw::new(value).write_header(&mut self.bytes, name.len() + 2);
    }

    /// Writes `Name:` CRLF, a field without a value (the Direct
    /// `X-DIRECT-FINAL-DESTINATION-DELIVERY` extension field).
    pub(crate) fn flag(&mut self, name: &str) {
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b":\r\n");
    }

    /// Ends a block: RFC 3464 §2.1 separates the per-message block and each
    /// per-recipient block by a blank line.
    pub(crate) fn end_block(&mut self) {
        self.bytes.extend_from_slice(b"\r\n");
    }
}

/// An address for a header field: made safe, without brackets or spaces.
pub(crate) fn address(addr: &str) -> String {
    sanitize(addr)
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | ' '))
        .collect()
}

/// Makes a caller-supplied value safe for one header field or report field: control
/// characters (CR and LF included, so no field can be injected) become spaces, non-ASCII
/// becomes `?`, runs of whitespace become one space.
pub(crate) fn sanitize(value: &str) -> String {
    let ascii: String = value
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    clean_text(&ascii)
}

/// Control characters (CR and LF among them) become spaces, runs of whitespace one
/// space, and the ends are trimmed; non-ASCII stays (for a Subject, which mail-builder
/// encodes as RFC 2047 words).
fn clean_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Cuts every word of an ASCII value longer than [`HARD_WORD`] into pieces separated by
/// spaces, where a fold can go.
fn cut_long_words(value: &str) -> String {
    if value.split(' ').all(|w| w.len() <= HARD_WORD) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + value.len() / HARD_WORD + 1);
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for (j, piece) in word.as_bytes().chunks(HARD_WORD).enumerate() {
            if j > 0 {
                out.push(' ');
            }
            // The value is ASCII (sanitised), so any byte is a character boundary.
            out.push_str(std::str::from_utf8(piece).unwrap_or("?"));
        }
    }
    out
}

/// A message-id as it goes between angle brackets: sanitised, brackets and spaces removed.
pub(crate) fn msg_id(id: &str) -> String {
    sanitize(id)
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | ' '))
        .collect()
}

/// Wraps human-readable text at 76 columns, CRLF line ends, ASCII only (non-ASCII
/// becomes `?`); paragraphs are the caller's lines.
pub(crate) fn text_body(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = sanitize(line);
        let mut len = 0;
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            for piece in word.as_bytes().chunks(HARD_WORD) {
                let piece = std::str::from_utf8(piece).unwrap_or("?");
                if len > 0 && len + 1 + piece.len() > 76 {
                    out.push_str("\r\n");
                    len = 0;
                }
                if len > 0 {
                    out.push(' ');
                    len += 1;
                }
                out.push_str(piece);
                len += piece.len();
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// A multipart boundary that occurs in none of `parts`: mail-builder's, drawn again
/// while a part contains it (RFC 2046 §5.1.1: the boundary MUST NOT appear inside any
/// encapsulated part; mail-builder's is random, and the original header block of a DSN
/// is a stranger's text). Checking the parts before encoding suffices: 7bit leaves them
/// as they are, quoted-printable breaks only around `=` and base64 has no `_`, and the
/// boundary has `_` and no `=`.
fn boundary(parts: &[&[u8]]) -> String {
    loop {
        let candidate = make_boundary("_");
        if !parts.iter().any(|p| contains(p, candidate.as_bytes())) {
            return candidate;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The header block of a message (up to its first empty line), with CRLF line ends.
pub(crate) fn header_block(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len().min(64 * 1024));
    for line in message.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_field(name: &str, value: &str) -> String {
        let mut fields = Fields::default();
        fields.field(name, value);
        String::from_utf8(fields.bytes).unwrap()
    }

    #[test]
    fn fields_cannot_inject_lines_and_stay_under_998() {
        assert_eq!(
            one_field("Failure", "bad\r\nBcc: evil@x\r\n"),
            "Failure: bad Bcc: evil@x\r\n"
        );
        let out = one_field("X", &"a".repeat(5000));
        assert!(out.split("\r\n").all(|l| l.len() < 998), "{out}");
        assert_eq!(
            out.replace("\r\n", "").replace(' ', "").len(),
            "X:".len() + 5000
        );
    }

    #[test]
    fn long_fields_fold_at_spaces_rfc5322_2_2_3() {
        let value = "word ".repeat(40);
        let out = one_field("Diagnostic-Code", &value);
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.split("\r\n").all(|l| l.len() <= 78), "{out}");
        let unfolded = out.replace("\r\n ", " ").replace("\r\n\t", " ");
        assert_eq!(
            unfolded,
            format!("Diagnostic-Code: {}\r\n", value.trim_end())
        );
    }

    #[test]
    fn sanitize_keeps_one_line_of_ascii() {
        assert_eq!(sanitize("  a\tb\r\n\x00c  Zoë "), "a b c Zo?");
        assert_eq!(clean_text(" Befund\r\nfür  Zoë "), "Befund für Zoë");
        assert_eq!(address("<Bob @b.example>"), "Bob@b.example");
        assert_eq!(msg_id(" <id@x>\r\n"), "id@x");
    }

    #[test]
    fn boundary_avoids_content_rfc2046_5_1_1() {
        let b1 = boundary(&[]);
        assert!(b1.contains('_') && !b1.contains('='), "{b1}");
        let body = format!("--{b1}\r\n");
        let b2 = boundary(&[body.as_bytes()]);
        assert_ne!(b1, b2);
    }
}
