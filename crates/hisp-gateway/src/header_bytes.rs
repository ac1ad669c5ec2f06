//! The bytes a header block may hold, checked on both listeners before any
//! other look at a message.
//!
//! The checks (mail-parser) and the sealing (`hisp-smime`'s canonical form,
//! RFC 8551 §3.1.1) must see the same header fields. They agree on a bare
//! LF: both end the line there, so it needs no refusal. They disagree on a
//! bare CR, which the checks keep inside a field and canonicalisation turns
//! into a line end: `Subject: x<CR>Bcc: ...` would pass the no-Bcc rule
//! and become a Bcc field once sealed. A NUL is no text at all. RFC 5322
//! §2.2 allows neither in a header, so a header holding either is refused.
//!
//! The header block runs to the first empty line (`CRLF` or a bare `LF`,
//! as canonicalisation reads it).

use std::fmt;

/// A byte a header field may not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadByte {
    /// A CR not followed by LF.
    BareCr,
    /// A NUL (0x00).
    Nul,
}

impl fmt::Display for BadByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadByte::BareCr => "a bare CR",
            BadByte::Nul => "a NUL",
        })
    }
}

/// A header field holding a byte RFC 5322 §2.2 does not allow there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {field} header field contains {byte}: header lines end in CRLF and hold no CR, LF or NUL of their own (RFC 5322 §2.2)"
)]
pub struct HeaderByteError {
    /// The field's name as written, or `unnamed` when the name itself is
    /// unreadable (it goes into a reply and a log).
    pub field: String,
    /// What was found.
    pub byte: BadByte,
}

/// Checks every line of `message`'s header block for a bare CR or a NUL.
pub fn check_header_bytes(message: &[u8]) -> Result<(), HeaderByteError> {
    let mut field: &[u8] = b"";
    for line in message.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() && line.ends_with(b"\n") {
            return Ok(());
        }
        // RFC 5322 §2.2.3: a line starting with white space continues the
        // field above it.
        if !matches!(text.first(), Some(b' ' | b'\t')) {
            field = text.split(|&b| b == b':').next().unwrap_or(text);
        }
        let bad = if text.contains(&0) {
            Some(BadByte::Nul)
        } else if text.contains(&b'\r') || !line.ends_with(b"\n") && line.ends_with(b"\r") {
            Some(BadByte::BareCr)
        } else {
            None
        };
        if let Some(byte) = bad {
            return Err(HeaderByteError {
                field: field_name(field),
                byte,
            });
        }
    }
    Ok(())
}

/// The field name for a reply: RFC 5322 §3.6.8 ftext (printable ASCII but
/// the colon), else a description, so nothing from the peer's bytes that
/// could end a line or forge a log entry is echoed.
fn field_name(name: &[u8]) -> String {
    let printable = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':');
    match std::str::from_utf8(name) {
        Ok(name) if printable && name.len() <= 76 => name.to_string(),
        _ => "unnamed".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(message: &[u8]) -> (String, BadByte) {
        let e = check_header_bytes(message).unwrap_err();
        (e.field, e.byte)
    }

    #[test]
    fn crlf_and_bare_lf_headers_pass() {
        check_header_bytes(b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n").unwrap();
        check_header_bytes(b"From: a@b\nSubject: x\n\nbody\n").unwrap();
        check_header_bytes(b"Subject: folded\r\n\tline\r\n\r\n").unwrap();
        check_header_bytes(b"").unwrap();
    }

    #[test]
    fn a_bare_cr_in_a_field_is_refused_rfc5322_2_2() {
        assert_eq!(
            err(b"From: a@b\r\nSubject: x\rBcc: n@b\r\n\r\nbody\r\n"),
            ("Subject".to_string(), BadByte::BareCr)
        );
        assert_eq!(
            err(b"From: a@b\r\nSubject: x\r\r\n\r\n"),
            ("Subject".to_string(), BadByte::BareCr)
        );
        // A continuation line belongs to the field above it.
        assert_eq!(
            err(b"Reply-To: a@b,\r\n c@d\rBcc: n@b\r\n\r\n"),
            ("Reply-To".to_string(), BadByte::BareCr)
        );
        // Mail-parser reads `\rBcc:` after a line end as a Bcc field;
        // canonicalisation as the empty line that ends the header.
        assert_eq!(
            err(b"Subject: x\r\n\rBcc: n@b\r\n\r\n"),
            ("unnamed".to_string(), BadByte::BareCr)
        );
        // A header that ends the message with a CR.
        assert_eq!(
            err(b"Subject: x\r"),
            ("Subject".to_string(), BadByte::BareCr)
        );
    }

    #[test]
    fn a_nul_in_a_field_is_refused() {
        assert_eq!(
            err(b"Comments: a\0b\r\n\r\n"),
            ("Comments".to_string(), BadByte::Nul)
        );
    }

    #[test]
    fn the_body_is_not_the_header() {
        check_header_bytes(b"Subject: x\r\n\r\nbody\rwith\0bytes\r\n").unwrap();
        check_header_bytes(b"Subject: x\n\nbody\r").unwrap();
    }

    #[test]
    fn an_unreadable_field_name_is_not_echoed() {
        let (field, _) = err(b"Sub\x1b[2Jject: x\0\r\n\r\n");
        assert_eq!(field, "unnamed");
        let e = check_header_bytes(b"Subject: x\0\r\n\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Subject header field contains a NUL: header lines end in CRLF and hold no CR, LF or NUL of their own (RFC 5322 §2.2)"
        );
    }
}
