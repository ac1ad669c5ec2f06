//! Sending: wrap, sign, encrypt (Applicability Statement 1.3 §§3-5; RFC 8551 §3).

use openssl::x509::X509;

use crate::algorithms::{ContentCipher, KeyTransport};
use crate::error::SmimeError;
use crate::keys::Signer;
use crate::{canon, encrypt, sign, wrap};

/// Choices a sender may make; the defaults are what every HISP reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealOptions {
    /// Content-encryption cipher (AES-256-CBC by default).
    pub cipher: ContentCipher,
    /// Key transport for every recipient (RSA PKCS#1 v1.5 by default).
    pub key_transport: KeyTransport,
    /// Copy the Subject to the outer headers. Off by default: the subject may
    /// carry health information and the outer headers travel in the clear.
    pub copy_subject: bool,
}

/// Seals an RFC 5322 message for the backbone: wraps it as message/rfc822,
/// signs it with `signer` (detached, SHA-256) and encrypts it to every
/// certificate in `recipients`. Returns the message to send, CRLF line endings.
pub fn seal(
    message: &[u8],
    signer: &Signer,
    recipients: &[X509],
    options: &SealOptions,
) -> Result<Vec<u8>, SmimeError> {
    if recipients.is_empty() {
        return Err(SmimeError::NoRecipients);
    }
    let message = canon::prepare_for_signing(message)?;
    let wrapped = wrap::wrap(&message, options.copy_subject)?;
    // The message is never copied on its way in: it is signed and encrypted
    // as a sequence of pieces (headers, the message, the signature part).
    let signed = sign::sign_detached(&[&wrapped.entity_header, &message], signer)?;
    let enveloped = encrypt::encrypt(
        &signed.pieces(),
        recipients,
        options.cipher,
        options.key_transport,
    )?;
    drop(signed);
    drop(message);
    Ok(encrypt::to_mime(
        &wrapped.outer_headers,
        &enveloped,
        options.cipher,
    ))
}
