//! How large a message becomes once sealed, so that a listener taking sealed mail can
//! accept the largest message a listener taking plain mail accepts.
//!
//! Sealing adds a few kilobytes (the wrapper's header fields, the signature with its
//! certificates, one RecipientInfo per recipient, the outer header) and then writes the
//! enveloped data in base64: 4 octets for every 3, in lines that end in CRLF. hisp writes
//! lines of 76 characters (78 octets with CRLF: a factor of 1.368); the narrowest lines
//! common among S/MIME writers are 64 characters (OpenSSL's, 66 octets with CRLF: 1.375).
//! The bound uses the narrower lines, so a sealed message from such a HISP fits as well
//! as hisp's own.

/// Octets allowed on top of the message itself before the base64 expansion: the
/// header fields the wrapper copies, the multipart/signed structure, the SignedData with
/// the signer's certificate chain, the EnvelopedData's RecipientInfos (about 300 to 700
/// octets each, depending on the key size and the issuer's name) and the outer header.
/// A few kilobytes in practice; 192 KiB leaves room for long address lists and chains.
pub const SEAL_OVERHEAD: usize = 192 * 1024;

/// The most octets a message of `message_len` octets reaches once sealed (signed and
/// encrypted, then base64 at lines of at least 64 characters):
/// `(message_len + SEAL_OVERHEAD) × 4/3 × 66/64`, that is `× 11/8`, rounded up.
///
/// It holds for mail as SMTP carries it (CRLF lines; 7bit, 8bit, quoted-printable or
/// base64 bodies). It does not cover the two inputs that sealing itself enlarges: bare
/// LF line ends, which canonicalisation turns into CRLF (RFC 8551 §3.1.1), and bodies
/// declared `Content-Transfer-Encoding: binary`, which are re-encoded as base64 first.
pub fn sealed_size_bound(message_len: usize) -> usize {
    message_len
        .saturating_add(SEAL_OVERHEAD)
        .div_ceil(8)
        .saturating_mul(11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_64_column_lines_grows_by_eleven_eighths() {
        // 4/3 for base64, 66/64 for the CRLF after each 64 characters.
        assert_eq!(4.0 / 3.0 * 66.0 / 64.0, 11.0 / 8.0);
        assert_eq!(sealed_size_bound(0), SEAL_OVERHEAD / 8 * 11);
        assert_eq!(
            sealed_size_bound(25 * 1024 * 1024),
            (25 * 1024 * 1024 + 192 * 1024) / 8 * 11
        );
        assert_eq!(sealed_size_bound(usize::MAX), usize::MAX);
    }
}
