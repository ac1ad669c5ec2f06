//! Writing report messages: header fields folded and made 7-bit safe, dates, the
//! multipart boundary, and the transfer encodings the reports need.
//!
//! Everything written is US-ASCII with CRLF line ends and lines well under the 998
//! characters RFC 5322 §2.1.1 allows, so a report can go through any MTA as 7bit.

use time::OffsetDateTime;

/// Line length the writer aims for (RFC 5322 §2.1.1 SHOULD).
const SOFT_LIMIT: usize = 78;
/// A word longer than this is cut so no line reaches the 998 MUST limit.
const HARD_WORD: usize = 900;

/// The header and the first two parts of a report message (RFC 6522 §3): the
/// human-readable text and the machine-readable report. The caller adds any further
/// part and the closing boundary.
pub(crate) struct ReportHead<'a> {
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) date: OffsetDateTime,
    pub(crate) message_id: &'a str,
    /// The whole Subject, e.g. `Processed: <original subject>`.
    pub(crate) subject: &'a str,
    pub(crate) original_message_id: Option<&'a str>,
    /// `disposition-notification` or `delivery-status`.
    pub(crate) report_type: &'a str,
    /// What the preamble calls it, e.g. `disposition notification`.
    pub(crate) described_as: &'a str,
    pub(crate) boundary: &'a str,
    /// The text/plain part, already a CRLF body.
    pub(crate) human: &'a str,
    /// The `message/<report_type>` part, already a CRLF body.
    pub(crate) report: &'a str,
}

/// Writes [`ReportHead`]: From, To, Date, Message-ID, Subject, In-Reply-To and
/// References to the original, `Auto-Submitted: auto-replied` (RFC 3834 §5: responders
/// do not answer it), MIME-Version and the multipart/report Content-Type with its
/// required report-type (RFC 6522 §3), then the two parts. No
/// Disposition-Notification-To is ever written: an MDN MUST NOT request an MDN (RFC
/// 8098 §2.1), and no notification is requested for a DSN (RFC 3464 §1).
pub(crate) fn report_head(head: &ReportHead<'_>) -> String {
    let mut out = String::with_capacity(head.human.len() + head.report.len() + 2048);
    field(&mut out, "From", &address(head.from));
    field(&mut out, "To", &address(head.to));
    field(&mut out, "Date", &date(head.date));
    field(
        &mut out,
        "Message-ID",
        &format!("<{}>", msg_id(head.message_id)),
    );
    text_field(&mut out, "Subject", head.subject);
    if let Some(id) = head.original_message_id.map(msg_id) {
        if !id.is_empty() {
            field(&mut out, "In-Reply-To", &format!("<{id}>"));
            field(&mut out, "References", &format!("<{id}>"));
        }
    }
    field(&mut out, "Auto-Submitted", "auto-replied");
    field(&mut out, "MIME-Version", "1.0");
    field(
        &mut out,
        "Content-Type",
        &format!(
            "multipart/report; report-type={}; boundary=\"{}\"",
            head.report_type, head.boundary
        ),
    );
    field(&mut out, "Content-Transfer-Encoding", "7bit");
    out.push_str(&format!(
        "\r\nThis is a MIME-encapsulated {}.\r\n",
        head.described_as
    ));
    part(
        &mut out,
        head.boundary,
        "text/plain; charset=us-ascii",
        "7bit",
        head.human,
    );
    part(
        &mut out,
        head.boundary,
        &format!("message/{}", head.report_type),
        "7bit",
        head.report,
    );
    out
}

/// One body part: boundary line, Content-Type, Content-Transfer-Encoding, body.
pub(crate) fn part(
    out: &mut String,
    boundary: &str,
    content_type: &str,
    encoding: &str,
    body: &str,
) {
    out.push_str(&format!("\r\n--{boundary}\r\n"));
    out.push_str(&format!("Content-Type: {content_type}\r\n"));
    out.push_str(&format!("Content-Transfer-Encoding: {encoding}\r\n\r\n"));
    out.push_str(body);
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
    let mut out = String::with_capacity(value.len());
    let mut space = false;
    for c in value.chars() {
        let c = if c.is_ascii_control() || c == ' ' {
            ' '
        } else if c.is_ascii() {
            c
        } else {
            '?'
        };
        if c == ' ' {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    while out.ends_with(' ') {
        out.pop();
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

/// Writes `Name: value` CRLF, folding at spaces (RFC 5322 §2.2.3) and cutting any word
/// so long that a line would pass the 998 limit. `value` is sanitised first.
pub(crate) fn field(out: &mut String, name: &str, value: &str) {
    let value = sanitize(value);
    out.push_str(name);
    out.push(':');
    let mut line_len = name.len() + 1;
    for word in value.split(' ') {
        let mut word = word;
        loop {
            let (piece, rest) = if word.len() > HARD_WORD {
                word.split_at(HARD_WORD)
            } else {
                (word, "")
            };
            if line_len + 1 + piece.len() > SOFT_LIMIT && line_len > name.len() + 1 {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push(' ');
            out.push_str(piece);
            line_len += 1 + piece.len();
            if rest.is_empty() {
                break;
            }
            word = rest;
            // Force the next piece onto its own line.
            line_len = SOFT_LIMIT;
        }
    }
    out.push_str("\r\n");
}

/// Writes a field whose value may be non-ASCII (a Subject): plain when it is printable
/// ASCII, otherwise as RFC 2047 `B` encoded-words of UTF-8, each under 76 characters
/// (RFC 2047 §2), one per folded line.
pub(crate) fn text_field(out: &mut String, name: &str, value: &str) {
    // Control characters (CR, LF among them) never reach the output.
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.is_ascii() && cleaned.split(' ').all(|w| w.len() <= HARD_WORD) {
        field(out, name, &cleaned);
        return;
    }
    out.push_str(name);
    out.push(':');
    let mut chunk = String::new();
    let mut first = true;
    let mut flush = |chunk: &mut String, out: &mut String| {
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        out.push_str(" =?UTF-8?B?");
        out.push_str(&base64(chunk.as_bytes()));
        out.push_str("?=");
        chunk.clear();
    };
    for c in cleaned.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            flush(&mut chunk, out);
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        flush(&mut chunk, out);
    }
    out.push_str("\r\n");
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

/// An RFC 5322 §3.3 date-time, e.g. `Fri, 27 Nov 2026 07:01:13 +0000`. Written by hand
/// so it cannot fail for any `OffsetDateTime`.
pub(crate) fn date(at: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = DAYS[at.weekday().number_days_from_monday() as usize];
    let month = MONTHS[(u8::from(at.month()) as usize).saturating_sub(1) % 12];
    let offset = at.offset();
    let total = offset.whole_minutes();
    let sign = if total < 0 { '-' } else { '+' };
    let total = total.unsigned_abs();
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        at.day(),
        at.year().max(0),
        at.hour(),
        at.minute(),
        at.second(),
        total / 60,
        total % 60
    )
}

/// A multipart boundary that occurs in none of `parts`: a hash of `seed` and a counter,
/// bumped until no part contains the delimiter line (RFC 2046 §5.1.1: the boundary MUST
/// NOT appear inside any encapsulated part).
pub(crate) fn boundary(seed: &str, parts: &[&[u8]]) -> String {
    let mut counter: u64 = 0;
    loop {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes().chain(counter.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let candidate = format!("=_hisp-report-{h:016x}");
        if !parts.iter().any(|p| contains(p, candidate.as_bytes())) {
            return candidate;
        }
        counter += 1;
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

/// Can these CRLF-ended bytes go as 7bit (RFC 2045 §2.7: US-ASCII without NUL, no bare
/// CR or LF, lines at most 998 octets)?
pub(crate) fn is_7bit(data: &[u8]) -> bool {
    data.iter().all(|b| *b != 0 && *b < 128)
        && data.split(|b| *b == b'\n').all(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.len() <= 990 && !l.contains(&b'\r')
        })
}

/// RFC 2045 §6.7 quoted-printable of CRLF-ended text, lines at most 76 characters.
pub(crate) fn quoted_printable(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + data.len() / 4);
    let text = data.strip_suffix(b"\r\n").unwrap_or(data);
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut len = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let width = if literal { 1 } else { 3 };
            if len + width > 75 {
                out.push_str("=\r\n");
                len = 0;
            }
            if literal {
                out.push(b as char);
            } else {
                out.push_str(&format!("={b:02X}"));
            }
            len += width;
        }
        out.push_str("\r\n");
    }
    out
}

/// RFC 4648 §4 base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_are_rfc5322_3_3() {
        assert_eq!(
            date(datetime!(2026-11-27 07:01:13 +00:00)),
            "Fri, 27 Nov 2026 07:01:13 +0000"
        );
        assert_eq!(
            date(datetime!(2024-02-29 23:59:59 -05:30)),
            "Thu, 29 Feb 2024 23:59:59 -0530"
        );
    }

    #[test]
    fn fields_cannot_inject_lines_and_stay_under_998() {
        let mut out = String::new();
        field(&mut out, "Failure", "bad\r\nBcc: evil@x\r\n");
        assert_eq!(out, "Failure: bad Bcc: evil@x\r\n");
        let mut out = String::new();
        field(&mut out, "X", &"a".repeat(5000));
        assert!(out.split("\r\n").all(|l| l.len() < 998));
        assert_eq!(out.replace("\r\n", "").replace(' ', "").len(), 5002);
    }

    #[test]
    fn non_ascii_subject_is_encoded_rfc2047() {
        let mut out = String::new();
        text_field(&mut out, "Subject", "Processed: Überweisung");
        assert!(out.starts_with("Subject: =?UTF-8?B?"));
        assert!(out.is_ascii());
        assert!(out.split("\r\n").all(|l| l.len() <= 78));
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn quoted_printable_escapes_and_soft_breaks_rfc2045_6_7() {
        let qp = quoted_printable("Subject: caf\u{e9} = ok \r\n".as_bytes());
        assert_eq!(qp, "Subject: caf=C3=A9 =3D ok=20\r\n");
        let qp = quoted_printable(&[b'x'; 200]);
        assert!(qp.split("\r\n").all(|l| l.len() <= 76));
    }

    #[test]
    fn boundary_avoids_content_rfc2046_5_1_1() {
        let b1 = boundary("seed", &[]);
        let body = format!("--{b1}\r\n");
        let b2 = boundary("seed", &[body.as_bytes()]);
        assert_ne!(b1, b2);
    }
}
