//! Decryption with the first configured key pair that a RecipientInfo names
//! (RFC 5652 §6.2.1: by issuer and serial number, or by subject key identifier).

use foreign_types::ForeignType;
use openssl::cms::CmsContentInfo;
use openssl::x509::X509Ref;

use crate::algorithms::{ContentCipher, KeyTransport};
use crate::error::SmimeError;
use crate::ffi;
use crate::inspect::{self, RecipientId};
use crate::keys::KeyPair;

/// A decrypted content and how it was protected.
pub(crate) struct Decrypted {
    /// The plaintext.
    pub content: Vec<u8>,
    pub cipher: ContentCipher,
    pub key_transport: KeyTransport,
}

/// What was learnt before a failure, for the report.
#[derive(Default)]
pub(crate) struct Partial {
    pub cipher: Option<ContentCipher>,
    pub key_transport: Option<KeyTransport>,
}

/// Decrypts an (Auth)EnvelopedData ContentInfo.
pub(crate) fn decrypt(der: Vec<u8>, keys: &[KeyPair]) -> Result<Decrypted, (SmimeError, Partial)> {
    let mut partial = Partial::default();
    let head = match inspect::envelope_head(&der) {
        Ok(h) => h,
        // Streaming senders use BER indefinite lengths, which the DER reader
        // refuses: let libcrypto re-encode the structure as DER and read that.
        Err(e) => CmsContentInfo::from_der(&der)
            .and_then(|c| c.to_der())
            .ok()
            .and_then(|d| inspect::envelope_head(&d).ok())
            .ok_or((e, Partial::default()))?,
    };
    // Applicability Statement 1.3 §5: AES only; 3DES, RC2 and DES are refused
    // before any key is used.
    let cipher = ContentCipher::from_oid(&head.cipher_oid).map_err(|e| (e, Partial::default()))?;
    partial.cipher = Some(cipher);
    if cipher.is_authenticated() != head.authenticated {
        return Err((
            SmimeError::MalformedCms {
                what: "EnvelopedData",
                detail: format!("cipher {cipher} does not fit the content type"),
            },
            partial,
        ));
    }
    let matched = head.recipients.iter().find_map(|r| {
        keys.iter()
            .find(|k| names_cert(&r.id, &k.cert))
            .map(|k| (r, k))
    });
    let Some((recipient, pair)) = matched else {
        let named: Vec<String> = head.recipients.iter().map(|r| r.id.to_string()).collect();
        return Err((
            SmimeError::NotARecipient {
                recipients: if named.is_empty() {
                    "nobody".into()
                } else {
                    named.join("; ")
                },
            },
            partial,
        ));
    };
    let key_transport = inspect::check_recipient_supported(recipient).map_err(|e| {
        (
            e,
            Partial {
                cipher: Some(cipher),
                key_transport: None,
            },
        )
    })?;
    partial.key_transport = Some(key_transport);
    let cms = match CmsContentInfo::from_der(&der) {
        Ok(c) => c,
        Err(e) => {
            return Err((
                SmimeError::MalformedCms {
                    what: "EnvelopedData",
                    detail: e.to_string(),
                },
                partial,
            ))
        }
    };
    // libcrypto holds its own copy now: the DER buffer, already in memory
    // and as large as the plaintext will be, receives the plaintext.
    let mut content = der;
    content.clear();
    let fail = |detail: String, partial: Partial| {
        (
            SmimeError::BadCiphertext(format!(
                "the content encrypted to {} does not decrypt ({cipher}, {key_transport}): {detail}",
                recipient.id
            )),
            partial,
        )
    };
    // What CMS_decrypt does, but reading the plaintext straight into a
    // vector sized for it instead of a memory BIO that grows by copying.
    // SAFETY: `cms`, the key and the certificate are valid for these calls;
    // the BIO chain from CMS_dataInit is owned here and freed below.
    let content = unsafe {
        if ffi::CMS_decrypt_set1_pkey(cms.as_ptr(), pair.key.as_ptr(), pair.cert.as_ptr()) != 1 {
            let e = openssl::error::ErrorStack::get();
            return Err(fail(first_reason(&e), partial));
        }
        let chain = ffi::CMS_dataInit(cms.as_ptr(), std::ptr::null_mut());
        if chain.is_null() {
            let e = openssl::error::ErrorStack::get();
            return Err(fail(first_reason(&e), partial));
        }
        let read = ffi::read_to_end(chain, &mut content);
        // CBC padding and the GCM tag are checked when the cipher BIO ends.
        let finished = ffi::BIO_method_type(chain) != ffi::BIO_TYPE_CIPHER
            || openssl_sys::BIO_ctrl(chain, ffi::BIO_C_GET_CIPHER_STATUS, 0, std::ptr::null_mut())
                > 0;
        openssl_sys::BIO_free_all(chain);
        if read.is_err() || !finished {
            let e = openssl::error::ErrorStack::get();
            let why = if e.errors().is_empty() {
                if cipher.is_authenticated() {
                    "the authentication tag does not match".to_string()
                } else {
                    "bad padding: wrong key or corrupted ciphertext".to_string()
                }
            } else {
                first_reason(&e)
            };
            return Err(fail(why, partial));
        }
        content
    };
    Ok(Decrypted {
        content,
        cipher,
        key_transport,
    })
}

/// True when a RecipientInfo identifier names this certificate.
fn names_cert(id: &RecipientId, cert: &X509Ref) -> bool {
    match id {
        RecipientId::IssuerSerial { issuer, serial } => {
            let cert_serial = cert
                .serial_number()
                .to_bn()
                .map(|bn| bn.to_vec())
                .unwrap_or_default();
            let cert_issuer = cert.issuer_name().to_der().unwrap_or_default();
            inspect::strip_zeros(&cert_serial) == serial.as_slice() && cert_issuer == *issuer
        }
        RecipientId::KeyId(kid) => cert
            .subject_key_id()
            .map(|ski| ski.as_slice() == kid.as_slice())
            .unwrap_or(false),
        RecipientId::Other(_) => false,
    }
}

/// The most specific line of an OpenSSL error stack.
pub(crate) fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .iter()
        .rev()
        .find_map(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| "unknown error".into())
}
