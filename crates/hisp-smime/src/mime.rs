//! Just enough MIME for S/MIME: one entity's headers, its body, and the two
//! parts of a multipart/signed.
//!
//! Header fields are parsed by mail-parser (quoting, RFC 2231 parameters,
//! folding). The body is located and a multipart/signed body is split here, by
//! hand, because a signature covers exact bytes: the first part must be handed
//! to CMS byte for byte (RFC 1847 §2.1), and the signed content must not be
//! parsed recursively (a 25 MiB message would be walked for nothing).

use mail_parser::{HeaderName, HeaderValue, MessageParser};

use crate::error::SmimeError;

/// What kind of S/MIME entity a Content-Type names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmimeKind {
    /// application/pkcs7-mime; smime-type=enveloped-data (or x-pkcs7-mime).
    Enveloped,
    /// application/pkcs7-mime; smime-type=authEnveloped-data (RFC 5083).
    AuthEnveloped,
    /// multipart/signed with a pkcs7-signature protocol (RFC 8551 §3.5.3).
    Signed,
    /// application/pkcs7-mime; smime-type=signed-data (opaque signing).
    OpaqueSigned,
    /// Anything else, with its type/subtype.
    Other(String),
}

/// One MIME entity: header block and body, borrowed from the input.
pub(crate) struct Entity<'a> {
    raw: &'a [u8],
    body_start: usize,
    header_end: usize,
    /// type/subtype, lower case ("text/plain" when absent, RFC 2045 §5.2).
    pub mime_type: String,
    params: Vec<(String, String)>,
    transfer_encoding: Option<String>,
}

impl<'a> Entity<'a> {
    /// Parses the header block of `raw`; the body is everything after the first empty line.
    pub(crate) fn parse(raw: &'a [u8]) -> Result<Self, SmimeError> {
        let (header_end, body_start) = split_header(raw).ok_or_else(|| {
            SmimeError::MalformedMime("no header/body separator (empty line) found".into())
        })?;
        if header_end == 0 {
            return Err(SmimeError::MalformedMime(
                "the message has no header fields".into(),
            ));
        }
        let parsed = MessageParser::new()
            .with_mime_headers()
            .parse_headers(&raw[..body_start])
            .ok_or_else(|| SmimeError::MalformedMime("unreadable header block".into()))?;
        let mut mime_type = "text/plain".to_string();
        let mut params = Vec::new();
        let mut transfer_encoding = None;
        for header in parsed.headers() {
            match (&header.name, &header.value) {
                (HeaderName::ContentType, HeaderValue::ContentType(ct)) => {
                    mime_type = match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_string(),
                    }
                    .to_ascii_lowercase();
                    params = ct
                        .attributes()
                        .unwrap_or_default()
                        .iter()
                        .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                        .collect();
                }
                (HeaderName::ContentType, _) => {
                    return Err(SmimeError::MalformedMime("unreadable Content-Type".into()))
                }
                (HeaderName::ContentTransferEncoding, HeaderValue::Text(t)) => {
                    transfer_encoding = Some(t.trim().to_ascii_lowercase());
                }
                _ => {}
            }
        }
        Ok(Entity {
            raw,
            body_start,
            header_end,
            mime_type,
            params,
            transfer_encoding,
        })
    }

    /// A Content-Type parameter, by case-insensitive name.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The Content-Transfer-Encoding, lower case, when present.
    pub(crate) fn transfer_encoding(&self) -> Option<&str> {
        self.transfer_encoding.as_deref()
    }

    /// The body, exactly as it appears.
    pub(crate) fn body(&self) -> &'a [u8] {
        &self.raw[self.body_start..]
    }

    /// The header block without the separating empty line.
    pub(crate) fn header_block(&self) -> Vec<u8> {
        self.raw[..self.header_end].to_vec()
    }

    /// Classifies the entity by its Content-Type, accepting the legacy x-pkcs7
    /// names and any letter case (RFC 8551 §3.2.1 lists both sets).
    pub(crate) fn smime_kind(&self) -> SmimeKind {
        let smime_type = self.param("smime-type").map(|s| s.to_ascii_lowercase());
        match self.mime_type.as_str() {
            "application/pkcs7-mime" | "application/x-pkcs7-mime" => match smime_type.as_deref() {
                Some("signed-data") => SmimeKind::OpaqueSigned,
                Some("authenveloped-data") => SmimeKind::AuthEnveloped,
                // Older senders omit smime-type; the ContentInfo says what it is.
                _ => SmimeKind::Enveloped,
            },
            "multipart/signed" => SmimeKind::Signed,
            other => SmimeKind::Other(other.to_string()),
        }
    }

    /// Decodes a base64 (or binary) body into DER, strictly: a truncated or
    /// corrupted body is an error, not a best effort.
    pub(crate) fn decoded_der(&self, part: &'static str) -> Result<Vec<u8>, SmimeError> {
        match self.transfer_encoding.as_deref() {
            None | Some("base64") => decode_base64(self.body(), part),
            Some("binary") | Some("8bit") | Some("7bit") => {
                // A DER body sent raw; a base64 body mislabelled 7bit also occurs.
                let body = self.body();
                if body.first() == Some(&0x30) {
                    Ok(body.to_vec())
                } else {
                    decode_base64(body, part)
                }
            }
            Some(other) => Err(SmimeError::MalformedMime(format!(
                "the {part} has Content-Transfer-Encoding {other}; expected base64"
            ))),
        }
    }

    /// The two parts of a multipart/signed body: the signed content (exact
    /// bytes, headers included) and the signature entity.
    pub(crate) fn signed_parts(&self) -> Result<(&'a [u8], Entity<'a>), SmimeError> {
        let boundary = self
            .param("boundary")
            .filter(|b| valid_boundary(b))
            .ok_or_else(|| {
                SmimeError::MalformedMime(
                    "multipart/signed without a valid boundary (RFC 2046 §5.1.1: 1 to 70 characters, no line breaks)".into(),
                )
            })?;
        let parts = split_multipart(self.body(), boundary.as_bytes());
        if parts.len() != 2 {
            return Err(SmimeError::MalformedMime(format!(
                "multipart/signed must have exactly two parts (RFC 1847 §2.1), found {}",
                parts.len()
            )));
        }
        let signature = Entity::parse(parts[1])?;
        match signature.mime_type.as_str() {
            "application/pkcs7-signature" | "application/x-pkcs7-signature" => {}
            other => {
                return Err(SmimeError::NotSmime(format!(
                "the second part of multipart/signed is {other}, not application/pkcs7-signature"
            )))
            }
        }
        Ok((parts[0], signature))
    }
}

/// Finds the end of the header block and the start of the body.
/// Returns (end of last header line, start of body).
fn split_header(raw: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = memchr(b'\n', &raw[pos..]).map(|i| pos + i + 1);
        let line_end = match line_end {
            Some(e) => e,
            None => return Some((raw.len(), raw.len())),
        };
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            return Some((pos, line_end));
        }
        pos = line_end;
    }
    Some((raw.len(), raw.len()))
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

/// Splits a multipart body into its parts (RFC 2046 §5.1.1): a delimiter is
/// CRLF "--" boundary at the start of a line; the CRLF before it belongs to
/// the delimiter, not to the part. Bare LF line ends are accepted too.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    split_multipart_spans(body, boundary)
        .into_iter()
        .map(|(s, e)| &body[s..e])
        .collect()
}

/// RFC 2046 §5.1.1: a boundary is 1 to 70 characters, none of them a line
/// break or another control character.
pub(crate) fn valid_boundary(boundary: &str) -> bool {
    (1..=70).contains(&boundary.len()) && !boundary.bytes().any(|b| b.is_ascii_control())
}

/// Like [`split_multipart`], as (start, end) offsets into `body`.
pub(crate) fn split_multipart_spans(body: &[u8], boundary: &[u8]) -> Vec<(usize, usize)> {
    let mut dashes = Vec::with_capacity(boundary.len() + 2);
    dashes.extend_from_slice(b"--");
    dashes.extend_from_slice(boundary);
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    // Candidates are found with one SIMD search, then checked to start a line.
    for at in memchr::memmem::find_iter(body, &dashes) {
        if at != 0 && body[at - 1] != b'\n' {
            continue;
        }
        // The line ends after the delimiter, never inside it.
        let after_start = at + dashes.len();
        let line_end = memchr(b'\n', &body[after_start..])
            .map(|i| after_start + i + 1)
            .unwrap_or(body.len());
        let after = &body[at + dashes.len()..line_end];
        let closing = after.starts_with(b"--");
        let tail = if closing { &after[2..] } else { after };
        if !tail
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            continue;
        }
        if let Some(s) = start {
            // Drop the line break that precedes the delimiter.
            let mut end = at;
            if end > s && body[end - 1] == b'\n' {
                end -= 1;
                if end > s && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push((s, end.max(s)));
        }
        if closing {
            return parts;
        }
        start = Some(line_end);
    }
    // No closing delimiter: the message was cut short.
    Vec::new()
}

/// Strict base64: whitespace is skipped, anything else must decode.
pub(crate) fn decode_base64(text: &[u8], part: &'static str) -> Result<Vec<u8>, SmimeError> {
    /// Characters gathered before a decode: a multiple of 4.
    const CHUNK: usize = 64 * 1024;
    let bad = |detail: String| SmimeError::BadBase64 { part, detail };
    // Decoded in chunks as the lines are read, so the body is never held a
    // second time in compacted form. base64-simd decodes the strict standard
    // alphabet with padding, several times faster than a scalar decoder.
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK + 128);
    let mut seen = 0usize;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len())) {
        let mut line = &text[start..end.min(text.len())];
        start = end + 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        // Inner or trailing blanks are rare: such a line is filtered.
        if matches!(line.first(), Some(b' ' | b'\t'))
            || matches!(line.last(), Some(b' ' | b'\t'))
            || memchr::memchr2(b' ', b'\t', line).is_some()
        {
            pending.extend(line.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        } else {
            pending.extend_from_slice(line);
        }
        seen += line.len();
        // Padding may only end the data: a chunk holding '=' waits for the
        // final decode, which refuses padding anywhere but at the end.
        if pending.len() >= CHUNK && memchr::memchr(b'=', &pending).is_none() {
            let take = pending.len() / 4 * 4;
            base64_simd::STANDARD
                .decode_append(&pending[..take], &mut out)
                .map_err(|_| {
                    bad(format!(
                        "invalid base64 near character {}",
                        seen - pending.len()
                    ))
                })?;
            pending.drain(..take);
        }
    }
    if out.is_empty() && pending.is_empty() {
        return Err(bad("the body is empty".into()));
    }
    base64_simd::STANDARD
        .decode_append(&pending, &mut out)
        .map_err(|_| {
            bad(format!(
                "{seen} characters that are not valid padded base64 (truncated or corrupted)"
            ))
        })?;
    Ok(out)
}

/// Appends base64 in 76-character lines with CRLF (RFC 2045 §6.8).
pub(crate) fn append_base64_lines(out: &mut Vec<u8>, data: &[u8]) {
    // 57 bytes make one 76-character line; a block's encoding stays in L1.
    const BLOCK: usize = 57 * 64;
    out.reserve_exact(data.len().div_ceil(57) * 78);
    let mut encoded = Vec::with_capacity(BLOCK / 57 * 76);
    for block in data.chunks(BLOCK) {
        encoded.clear();
        base64_simd::STANDARD.encode_append(block, &mut encoded);
        for line in encoded.chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_split_excludes_crlf_before_delimiter_rfc2046_5_1_1() {
        let body = b"preamble\r\n--b\r\nA: 1\r\n\r\nx\r\n\r\n--b\r\nB: 2\r\n\r\ny\r\n--b--\r\n";
        let parts = split_multipart(body, b"b");
        assert_eq!(
            parts,
            vec![&b"A: 1\r\n\r\nx\r\n"[..], &b"B: 2\r\n\r\ny"[..]]
        );
    }

    #[test]
    fn multipart_without_closing_delimiter_has_no_parts() {
        let body = b"--b\r\nA: 1\r\n\r\nx\r\n--b\r\nB: 2\r\n\r\ny\r\n";
        assert!(split_multipart(body, b"b").is_empty());
    }

    #[test]
    fn boundary_with_a_line_break_is_refused_not_a_panic_rfc2046_5_1_1() {
        let raw = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary*=''ab%0Acd\r\n\r\n--ab\ncd\r\nx\r\n--ab\ncd--\r\n";
        let e = Entity::parse(raw).unwrap();
        assert!(matches!(
            e.signed_parts(),
            Err(SmimeError::MalformedMime(_))
        ));
        // The splitter itself never panics on such a boundary either.
        let _ = split_multipart(b"--ab\ncd\r\nx\r\n--ab\ncd--\r\n", b"ab\ncd");
    }

    #[test]
    fn boundary_prefix_is_not_a_delimiter() {
        let body = b"--b\r\n\r\n--bx\r\n--b--\r\n";
        assert_eq!(split_multipart(body, b"b"), vec![&b"\r\n--bx"[..]]);
    }

    #[test]
    fn content_type_parameters_in_any_case_and_quoting() {
        let raw = b"Content-Type: Application/PKCS7-MIME; SMIME-TYPE=Enveloped-Data; Name=smime.p7m\r\n\r\nAA==\r\n";
        let e = Entity::parse(raw).unwrap();
        assert_eq!(e.smime_kind(), SmimeKind::Enveloped);
        let raw = b"Content-Type: application/pkcs7-mime;\r\n smime-type=\"authEnveloped-data\"\r\n\r\nAA==\r\n";
        assert_eq!(
            Entity::parse(raw).unwrap().smime_kind(),
            SmimeKind::AuthEnveloped
        );
    }

    #[test]
    fn base64_decodes_across_chunks_and_odd_line_lengths() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let encoded = base64_simd::STANDARD.encode_to_string(&data);
        // Lines of 61 characters (not a multiple of 4), LF and CRLF, a stray space.
        let mut text = Vec::new();
        for (i, line) in encoded.as_bytes().chunks(61).enumerate() {
            text.extend_from_slice(line);
            text.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b" \n" });
        }
        assert_eq!(decode_base64(&text, "x").unwrap(), data);
        let mut lines = Vec::new();
        append_base64_lines(&mut lines, &data);
        assert!(lines.split(|&b| b == b'\n').all(|l| l.len() <= 77));
        assert_eq!(decode_base64(&lines, "x").unwrap(), data);
    }

    #[test]
    fn padding_in_the_middle_is_refused() {
        assert!(decode_base64(b"QQ==\r\nQUJD\r\n", "x").is_err());
    }

    #[test]
    fn truncated_base64_is_an_error() {
        assert!(matches!(
            decode_base64(b"QUJD\r\nRA", "x"),
            Err(SmimeError::BadBase64 { .. })
        ));
    }
}
