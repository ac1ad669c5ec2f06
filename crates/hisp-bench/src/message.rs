//! The messages the benchmark submits, and the MDNs they make the receiver
//! send back (for the cryptographic bound).

use hisp_mdn::{build_mdn, Disposition, DispositionType, MdnSpec};
use time::OffsetDateTime;

/// The sender's address at the sending HISP.
pub const SENDER: &str = "sender@a.example";
/// The recipient's address at the receiving HISP.
pub const RECIPIENT: &str = "provider@b.example";
/// The submission account that may send as [`SENDER`].
pub const ACCOUNT: &str = "portal";
/// Its password (loopback only, a throw-away site).
pub const PASSWORD: &str = "a long benchmark password";

/// The Message-ID (without `<>`) of message `index` of run `run`.
pub fn message_id(run: &str, index: usize) -> String {
    format!("bench-{run}-{index}@a.example")
}

/// A message of `size` bytes in all (header and body, at least the header):
/// From [`SENDER`] To [`RECIPIENT`], a text body of 76-column lines.
pub fn message(message_id: &str, size: usize) -> Vec<u8> {
    let date = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 2026 00:00:00 +0000".to_string());
    let mut m = format!(
        "From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: benchmark\r\nDate: {date}\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog while the HISP seals the mail.\r\n";
    if size < m.len() + line.len() {
        m.extend_from_slice(line);
        return m;
    }
    while m.len() < size {
        m.extend_from_slice(line);
    }
    if m.len() > size {
        // Cut the last line short and end it with CRLF again (no bare CR).
        m.truncate(size - 2);
        if let Some(last) = m.last_mut().filter(|b| **b == b'\r') {
            *last = b'x';
        }
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// The MDN of `kind` the receiving HISP sends for `original_id`, as hisp
/// composes it (hisp-mdn's `build_mdn`, the final-delivery extension on, as
/// the sender's account asks for final delivery).
pub fn mdn(original_id: &str, kind: DispositionType) -> Vec<u8> {
    let reporting_ua = "hisp.b.example; hisp";
    build_mdn(&MdnSpec {
        message_id: &format!("mdn-{}-{original_id}", kind.as_str()),
        date: OffsetDateTime::now_utc(),
        from: RECIPIENT,
        to: SENDER,
        reporting_ua,
        original_recipient: None,
        final_recipient: RECIPIENT,
        original_message_id: Some(original_id),
        original_subject: Some("benchmark"),
        disposition: Disposition::automatic(kind),
        failure: None,
        final_delivery_extension: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_the_asked_size_and_ends_with_crlf() {
        for size in [300, 4096, 4097, 1 << 20] {
            let m = message("x@a.example", size);
            assert_eq!(m.len(), size);
            assert!(m.ends_with(b"\r\n"));
        }
    }

    #[test]
    fn a_size_below_the_header_gives_the_header_and_one_line() {
        let m = message("x@a.example", 10);
        assert!(m.len() > 10);
        assert!(m.ends_with(b"\r\n"));
    }
}
