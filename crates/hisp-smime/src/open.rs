//! Receiving: decrypt, verify, unwrap. Whether a signer is trusted is not
//! decided here: the caller judges the reported signers (and the
//! certificates the message carried) with hisp-trust.

use openssl::x509::X509;

use crate::algorithms::{ContentCipher, Digest, KeyTransport};
use crate::error::SmimeError;
use crate::keys::KeyPair;
use crate::{decrypt, inspect, mime, verify, wrap};

/// What open needs: the keys to decrypt with.
#[derive(Clone, Copy)]
pub struct OpenOptions<'a> {
    /// Certificate/key pairs; the one a RecipientInfo names is used.
    pub keys: &'a [KeyPair],
}

/// One signer of the message and what was found about it.
#[derive(Debug, Clone)]
pub struct SignerReport {
    /// The signer's certificate.
    pub cert: X509,
    /// Subject, one line ("CN=..., O=...").
    pub subject: String,
    /// Issuer, one line.
    pub issuer: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// subjectAltName entries ("email:a@b", "DNS:b").
    pub sans: Vec<String>,
    /// The digest this signer used, when it is one hisp accepts.
    pub digest: Option<Digest>,
    /// True when this signer's signature and content digest verified, with
    /// an allowed digest and a strong enough key. Says nothing about trust:
    /// that is hisp-trust's judgement of `cert`.
    pub verified: bool,
    /// Why this signer's signature was not accepted.
    pub problem: Option<SmimeError>,
}

/// A successfully opened message.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The inner RFC 5322 message: for a wrapped message (`wrapped`), byte
    /// for byte as the sender signed it (in canonical CRLF form); for a
    /// sender that does not wrap, the signed entity byte for byte, preceded
    /// by the outer header fields it lacks (trace fields, and the RFC 5322
    /// fields of an entity that has only MIME fields), which were NOT
    /// signed. A field the signed entity has is never taken from outside,
    /// and the outer MIME-Version and Content-* fields never are.
    pub message: Vec<u8>,
    /// True when the signed content was a message/rfc822 wrapper.
    pub wrapped: bool,
    /// The content cipher, when the message was encrypted.
    pub cipher: Option<ContentCipher>,
    /// The key transport of the RecipientInfo that was used.
    pub key_transport: Option<KeyTransport>,
    /// The digest of the first verified signer.
    pub digest: Digest,
    /// Every signer, verified or not.
    pub signers: Vec<SignerReport>,
    /// Every certificate the SignedData carried (signers and intermediates),
    /// for the caller's path validation.
    pub certificates: Vec<X509>,
}

/// Everything open found, whether or not it succeeded: the CLI's `--json` and
/// the quarantine record are made from this.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// The inner message, or why there is none.
    pub result: Option<Result<Vec<u8>, SmimeError>>,
    /// True when the signed content was a message/rfc822 wrapper.
    pub wrapped: bool,
    /// The content cipher, once known.
    pub cipher: Option<ContentCipher>,
    /// The key transport of the matching RecipientInfo, once known.
    pub key_transport: Option<KeyTransport>,
    /// The digest of the first verified signer (or of the first signer when none verified).
    pub digest: Option<Digest>,
    /// Every signer seen.
    pub signers: Vec<SignerReport>,
    /// Every certificate the SignedData carried.
    pub certificates: Vec<X509>,
}

impl OpenReport {
    /// The error, if open failed.
    pub fn error(&self) -> Option<&SmimeError> {
        match &self.result {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    fn fail(mut self, e: SmimeError) -> Self {
        self.result = Some(Err(e));
        self
    }
}

/// Opens a sealed message: decrypts it, verifies the signatures and content
/// digests, and unwraps message/rfc822. It succeeds when at least one
/// signer verifies; which signers are trusted is for the caller to judge.
pub fn open(sealed: &[u8], options: &OpenOptions<'_>) -> Result<Opened, SmimeError> {
    let report = open_report(sealed, options);
    match report.result {
        Some(Ok(message)) => Ok(Opened {
            message,
            wrapped: report.wrapped,
            cipher: report.cipher,
            key_transport: report.key_transport,
            digest: report.digest.unwrap_or(Digest::Sha256),
            signers: report.signers,
            certificates: report.certificates,
        }),
        Some(Err(e)) => Err(e),
        None => Err(SmimeError::NotSmime("nothing was opened".into())),
    }
}

/// Like [`open`], but returns everything found along the way.
pub fn open_report(sealed: &[u8], options: &OpenOptions<'_>) -> OpenReport {
    let mut report = OpenReport::default();
    let outer = match mime::Entity::parse(sealed) {
        Ok(e) => e,
        Err(e) => return report.fail(e),
    };
    let mut decrypted: Option<Vec<u8>> = None;
    let (signed_entity, outer_headers): (&[u8], _) = match outer.smime_kind() {
        // RFC 8551 §3.2.2: without smime-type, the ContentInfo says what
        // the part is; legacy senders send opaque signed-data that way.
        mime::SmimeKind::Enveloped
            if outer.param("smime-type").is_none()
                && outer
                    .decoded_der("pkcs7-mime part")
                    .map(|der| inspect::is_signed_data(&der))
                    .unwrap_or(false) =>
        {
            (sealed, Some(outer.header_block()))
        }
        mime::SmimeKind::Enveloped | mime::SmimeKind::AuthEnveloped => {
            let der = match outer.decoded_der("enveloped part") {
                Ok(d) => d,
                Err(e) => return report.fail(e),
            };
            match decrypt::decrypt(der, options.keys) {
                Ok(d) => {
                    report.cipher = Some(d.cipher);
                    report.key_transport = Some(d.key_transport);
                    decrypted = Some(d.content);
                    (
                        decrypted.as_deref().unwrap_or_default(),
                        Some(outer.header_block()),
                    )
                }
                Err((e, partial)) => {
                    report.cipher = partial.cipher;
                    report.key_transport = partial.key_transport;
                    return report.fail(e);
                }
            }
        }
        mime::SmimeKind::Signed | mime::SmimeKind::OpaqueSigned => {
            (sealed, Some(outer.header_block()))
        }
        mime::SmimeKind::Other(ct) => {
            return report.fail(SmimeError::NotSmime(format!(
                "Content-Type is {ct}, not application/pkcs7-mime or multipart/signed"
            )))
        }
    };
    let verified = verify::verify(signed_entity);
    report.signers = verified.signers;
    report.digest = verified.digest;
    report.certificates = verified.certificates;
    let content = match verified.result {
        Ok(c) => c,
        Err(e) => return report.fail(e),
    };
    let unwrapped = match wrap::unwrap(&content, outer_headers.as_deref()) {
        Ok(u) => u,
        Err(e) => return report.fail(e),
    };
    report.wrapped = unwrapped.wrapped();
    // The inner message of an envelope is cut out of the decrypted buffer in
    // place: no second buffer the size of the message.
    let (in_place, copied) = match unwrapped {
        wrap::Unwrapped::Inner(inner) => {
            match decrypted.as_deref().and_then(|d| range_within(d, inner)) {
                Some(range) => (Some(range), None),
                None => (None, Some(inner.to_vec())),
            }
        }
        wrap::Unwrapped::Rebuilt(message) => (None, Some(message)),
    };
    let message = match (in_place, copied, decrypted) {
        (Some(range), _, Some(mut buffer)) => {
            buffer.truncate(range.end);
            buffer.drain(..range.start);
            buffer
        }
        (_, Some(message), _) => message,
        // A range is only found inside `decrypted`, and every other case
        // carries its message.
        (Some(_), None, None) | (None, None, _) => {
            unreachable!("an unwrapped message is either in place or copied")
        }
    };
    report.result = Some(Ok(message));
    report
}

/// Where `part` lies within `whole`, when it is a subslice of it.
fn range_within(whole: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}
