//! Canonical form for signing (RFC 8551 §3.1.1): CRLF line endings, and no
//! raw binary data inside the signed content.

use std::borrow::Cow;

use crate::error::SmimeError;
use crate::mime;

/// Makes a message ready to be signed: `Content-Transfer-Encoding: binary`
/// bodies are re-encoded as base64 (RFC 8551 §3.1.2: binary data cannot
/// survive line-ending conversion), then every line ending becomes CRLF.
pub(crate) fn prepare_for_signing(message: &[u8]) -> Result<Cow<'_, [u8]>, SmimeError> {
    let canonical = match encode_binary_bodies(message)? {
        Cow::Borrowed(b) => to_crlf(b),
        Cow::Owned(o) => Cow::Owned(to_crlf(&o).into_owned()),
    };
    // RFC 5322 §2.1: a message is a header block, an empty line, a body. A
    // message of header fields only gets its empty line, so that the last
    // field ends in CRLF and the message stays well formed when wrapped.
    if canonical.starts_with(b"\r\n") || memchr::memmem::find(&canonical, b"\r\n\r\n").is_some() {
        return Ok(canonical);
    }
    let mut owned = canonical.into_owned();
    if !owned.ends_with(b"\r\n") {
        owned.extend_from_slice(b"\r\n");
    }
    owned.extend_from_slice(b"\r\n");
    Ok(Cow::Owned(owned))
}

/// Converts bare LF and bare CR to CRLF; input already canonical is borrowed.
pub(crate) fn to_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    if is_crlf_canonical(data) {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut start = 0;
    let mut lf_done_at = usize::MAX;
    for i in memchr::memchr2_iter(b'\r', b'\n', data) {
        if i == lf_done_at {
            start = i + 1;
            continue;
        }
        out.extend_from_slice(&data[start..i]);
        out.extend_from_slice(b"\r\n");
        start = i + 1;
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            lf_done_at = i + 1;
        }
    }
    out.extend_from_slice(&data[start..]);
    Cow::Owned(out)
}

/// True when every CR is followed by LF and every LF preceded by CR.
pub(crate) fn is_crlf_canonical(data: &[u8]) -> bool {
    // Every LF follows a CR, and there are as many CRs as LFs: then every CR
    // is also followed by an LF. Two SIMD passes, no per-byte branching.
    let mut lf = 0usize;
    for i in memchr::memchr_iter(b'\n', data) {
        if i == 0 || data[i - 1] != b'\r' {
            return false;
        }
        lf += 1;
    }
    memchr::memchr_iter(b'\r', data).count() == lf
}

/// How deep multiparts may nest before a message is refused.
const MAX_DEPTH: usize = 16;

/// Every leaf part declared `Content-Transfer-Encoding: binary`, at any depth,
/// gets a base64 body; a multipart or message/rfc822 declared `binary`
/// becomes `8bit` once nothing binary is left inside it (RFC 2045 §6.4: a
/// composite type may only be 7bit, 8bit or binary). Only header blocks are
/// read; a message that declares nothing binary is passed on untouched.
fn encode_binary_bodies(message: &[u8]) -> Result<Cow<'_, [u8]>, SmimeError> {
    encode_entity(message, 0)
}

fn encode_entity(raw: &[u8], depth: usize) -> Result<Cow<'_, [u8]>, SmimeError> {
    // A part whose header block does not parse (a part with no header
    // fields is legal and means text/plain) has nothing declared binary;
    // wrap() reports what is wrong with a whole message that does not parse.
    let Ok(entity) = mime::Entity::parse(raw) else {
        return Ok(Cow::Borrowed(raw));
    };
    let binary = entity.transfer_encoding() == Some("binary");
    let body = entity.body();
    let body_start = raw.len() - body.len();
    if entity.mime_type.starts_with("multipart/") {
        let Some(boundary) = entity.param("boundary") else {
            return Ok(Cow::Borrowed(raw));
        };
        if !mime::valid_boundary(boundary) {
            return Err(SmimeError::MalformedMime(
                "a multipart boundary must be 1 to 70 characters without line breaks (RFC 2046 §5.1.1)"
                    .into(),
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(SmimeError::MalformedMime(format!(
                "multipart parts nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let parts = mime::split_multipart_spans(body, boundary.as_bytes());
        let mut children = Vec::with_capacity(parts.len());
        for &(start, end) in &parts {
            children.push(encode_entity(&body[start..end], depth + 1)?);
        }
        let changed = children.iter().any(|c| matches!(c, Cow::Owned(_)));
        if !changed && !binary {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = relabel(&raw[..body_start], &entity, binary);
        let mut cursor = 0;
        for ((start, end), child) in parts.into_iter().zip(children) {
            out.extend_from_slice(&body[cursor..start]);
            out.extend_from_slice(&child);
            cursor = end;
        }
        out.extend_from_slice(&body[cursor..]);
        return Ok(Cow::Owned(out));
    }
    if entity.mime_type == "message/rfc822" {
        if depth >= MAX_DEPTH {
            return Err(SmimeError::MalformedMime(format!(
                "messages nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let inner = encode_entity(body, depth + 1)?;
        if matches!(inner, Cow::Borrowed(_)) && !binary {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = relabel(&raw[..body_start], &entity, binary);
        out.extend_from_slice(&inner);
        return Ok(Cow::Owned(out));
    }
    if binary {
        return Ok(Cow::Owned(rebase64(&entity)));
    }
    Ok(Cow::Borrowed(raw))
}

/// The header block (and its empty line) of a composite entity, its
/// Content-Transfer-Encoding changed from binary to 8bit when `binary`.
fn relabel(head: &[u8], entity: &mime::Entity<'_>, binary: bool) -> Vec<u8> {
    if !binary {
        return head.to_vec();
    }
    let mut out = with_transfer_encoding(&entity.header_block(), "8bit");
    out.extend_from_slice(b"\r\n");
    out
}

/// The header block with its Content-Transfer-Encoding field set to `value`.
fn with_transfer_encoding(header: &[u8], value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 40);
    for field in header_fields(header) {
        let name_end = field.iter().position(|&b| b == b':').unwrap_or(0);
        if field[..name_end]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-transfer-encoding")
        {
            out.extend_from_slice(format!("Content-Transfer-Encoding: {value}\r\n").as_bytes());
        } else {
            out.extend_from_slice(field);
            if !field.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// A leaf entity with its body base64-encoded and its
/// Content-Transfer-Encoding header changed accordingly.
fn rebase64(entity: &mime::Entity<'_>) -> Vec<u8> {
    let mut out = with_transfer_encoding(&entity.header_block(), "base64");
    out.extend_from_slice(b"\r\n");
    mime::append_base64_lines(&mut out, entity.body());
    out
}

/// Splits a header block into fields, each with its continuation lines and line end.
pub(crate) fn header_fields(block: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < block.len() {
        let end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(block.len());
        let next_is_continuation = matches!(block.get(end), Some(b' ') | Some(b'\t'));
        if !next_is_continuation {
            fields.push(&block[start..end]);
            start = end;
        }
        pos = end;
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_and_cr_become_crlf_rfc8551_3_1_1() {
        assert_eq!(&*to_crlf(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd");
        assert!(matches!(to_crlf(b"a\r\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn binary_body_is_base64_encoded_before_signing_rfc8551_3_1_2() {
        let msg = b"From: a@b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\n\r\xff";
        let out = prepare_for_signing(msg).unwrap();
        let text = String::from_utf8(out.into_owned()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAAEKDf8=\r\n"),
            "{text}"
        );
    }

    #[test]
    fn binary_parts_nested_deeper_are_encoded_and_composites_relabelled_rfc2045_6_4() {
        let msg = b"Content-Type: multipart/mixed; boundary=o\r\nContent-Transfer-Encoding: binary\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\n\x02\r\n--i--\r\n\r\n--o--\r\n";
        let out = prepare_for_signing(msg).unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(text.starts_with("Content-Type: multipart/mixed; boundary=o\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"), "{text}");
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAAEKAg==\r\n\r\n--i--"),
            "{text}"
        );
        assert!(is_crlf_canonical(&out));
    }

    #[test]
    fn binary_child_of_multipart_is_base64_encoded() {
        let msg = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\n\x01\r\n--x--\r\n";
        let out = prepare_for_signing(msg).unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(is_crlf_canonical(&out));
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAAoB\r\n\r\n--x--"),
            "{text}"
        );
        assert!(text.contains("\r\nhi\r\n--x\r\n"));
    }
}
