//! Canonical form for signing (RFC 8551 §3.1.1): CRLF line endings, and no
//! raw binary data inside the signed content.

use std::borrow::Cow;

use crate::error::SmimeError;
use crate::mime;

/// Makes a message ready to be signed: `Content-Transfer-Encoding: binary`
/// bodies are re-encoded as base64 (RFC 8551 §3.1.2: binary data cannot
/// survive line-ending conversion), then every line ending becomes CRLF.
pub(crate) fn prepare_for_signing(message: &[u8]) -> Result<Cow<'_, [u8]>, SmimeError> {
    Ok(match encode_binary_bodies(message)? {
        Cow::Borrowed(b) => to_crlf(b),
        Cow::Owned(o) => Cow::Owned(to_crlf(&o).into_owned()),
    })
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

/// A single-part message or leaf parts declared `binary` get base64 bodies.
/// Only the top-level entity and the direct children of a top-level multipart
/// are rewritten; binary parts nested deeper are rare and are left as they are.
fn encode_binary_bodies(message: &[u8]) -> Result<Cow<'_, [u8]>, SmimeError> {
    // Only header blocks are looked at: the message's own, and for a
    // multipart the headers of its parts. A message that declares nothing
    // binary is passed on untouched.
    let Ok(entity) = mime::Entity::parse(message) else {
        // wrap() reports what is wrong with such a message.
        return Ok(Cow::Borrowed(message));
    };
    if entity.transfer_encoding() == Some("binary") {
        return Ok(Cow::Owned(rebase64(message, &entity)));
    }
    let Some(boundary) = entity
        .param("boundary")
        .filter(|_| entity.mime_type.starts_with("multipart/"))
    else {
        return Ok(Cow::Borrowed(message));
    };
    let boundary = boundary.to_string();
    let body_start = message.len() - entity.body().len();
    let body = entity.body();
    let parts = mime::split_multipart_spans(body, boundary.as_bytes());
    // A part whose header block does not parse (a part with no header
    // fields is legal and means text/plain) is not binary.
    let children: Vec<_> = parts
        .iter()
        .map(|&(start, end)| mime::Entity::parse(&body[start..end]).ok())
        .collect();
    let is_binary = |c: &Option<mime::Entity<'_>>| {
        c.as_ref().and_then(|c| c.transfer_encoding()) == Some("binary")
    };
    if !children.iter().any(is_binary) {
        return Ok(Cow::Borrowed(message));
    }
    let mut out = message[..body_start].to_vec();
    let mut cursor = 0;
    for ((start, end), child) in parts.into_iter().zip(children) {
        out.extend_from_slice(&body[cursor..start]);
        let part = &body[start..end];
        if let Some(child) = child.filter(|c| c.transfer_encoding() == Some("binary")) {
            out.extend_from_slice(&rebase64(part, &child));
        } else {
            out.extend_from_slice(part);
        }
        cursor = end;
    }
    out.extend_from_slice(&body[cursor..]);
    Ok(Cow::Owned(out))
}

/// The entity with its body base64-encoded and its Content-Transfer-Encoding
/// header changed accordingly.
fn rebase64(raw: &[u8], entity: &mime::Entity<'_>) -> Vec<u8> {
    let header = entity.header_block();
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + header.len() + 64);
    for field in header_fields(&header) {
        let name_end = field.iter().position(|&b| b == b':').unwrap_or(0);
        if field[..name_end]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-transfer-encoding")
        {
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
        } else {
            out.extend_from_slice(field);
        }
    }
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
