//! Encryption to every recipient certificate (RFC 5652 §6, RFC 5083, RFC 8551 §3.3).

use foreign_types::ForeignType;
use openssl::cms::CmsContentInfo;
use openssl::symm::Cipher;
use openssl::x509::X509;

use crate::algorithms::{ContentCipher, KeyTransport};
use crate::error::{SmimeError, Step};
use crate::ffi;
use crate::keys::check_public_key;
use crate::mime;

/// Encrypts `content` to every certificate in `recipients` (one
/// KeyTransRecipientInfo each) and returns the ContentInfo DER: EnvelopedData
/// for CBC ciphers, AuthEnvelopedData for GCM.
pub(crate) fn encrypt(
    content: &[&[u8]],
    recipients: &[X509],
    cipher: ContentCipher,
    key_transport: KeyTransport,
) -> Result<Vec<u8>, SmimeError> {
    if recipients.is_empty() {
        return Err(SmimeError::NoRecipients);
    }
    for cert in recipients {
        // Applicability Statement 1.3 §5: RSA keys of at least 2048 bits; key
        // transport (KeyTransRecipientInfo) needs an RSA key.
        check_public_key(cert, Step::Encrypt)?;
        let id = cert.public_key().map(|k| k.id()).ok();
        if id != Some(openssl::pkey::Id::RSA) {
            return Err(SmimeError::UnsupportedAlgorithm {
                step: Step::Encrypt,
                what: format!(
                    "the recipient certificate {} has no RSA key; hisp encrypts by RSA key transport",
                    crate::keys::describe(cert)
                ),
            });
        }
    }
    let crypto = |e| SmimeError::crypto(Step::Encrypt, e);
    let evp = match cipher {
        ContentCipher::Aes256Cbc => Cipher::aes_256_cbc(),
        ContentCipher::Aes128Cbc => Cipher::aes_128_cbc(),
        ContentCipher::Aes192Cbc => Cipher::aes_192_cbc(),
        ContentCipher::Aes256Gcm => Cipher::aes_256_gcm(),
        ContentCipher::Aes128Gcm => Cipher::aes_128_gcm(),
    };
    let oaep_md = match key_transport {
        KeyTransport::Pkcs1 => None,
        KeyTransport::OaepSha1 => Some(openssl::hash::MessageDigest::sha1()),
        KeyTransport::OaepSha256 => Some(openssl::hash::MessageDigest::sha256()),
    };
    let flags = ffi::CMS_BINARY | ffi::CMS_PARTIAL;
    // SAFETY: the ContentInfo is owned by `cms`; recipient certificates are
    // borrowed and up-referenced by CMS_add1_recipient_cert; the key context
    // returned by CMS_RecipientInfo_get0_pkey_ctx belongs to the RecipientInfo.
    unsafe {
        let raw = openssl_sys::CMS_encrypt(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            evp.as_ptr(),
            flags,
        );
        if raw.is_null() {
            return Err(crypto(openssl::error::ErrorStack::get()));
        }
        let cms = CmsContentInfo::from_ptr(raw);
        for cert in recipients {
            let ri_flags = if oaep_md.is_some() {
                flags | ffi::CMS_KEY_PARAM
            } else {
                flags
            };
            let ri = ffi::CMS_add1_recipient_cert(cms.as_ptr(), cert.as_ptr(), ri_flags);
            if ri.is_null() {
                return Err(crypto(openssl::error::ErrorStack::get()));
            }
            if let Some(md) = oaep_md {
                let ctx = ffi::CMS_RecipientInfo_get0_pkey_ctx(ri);
                if ctx.is_null()
                    || openssl_sys::EVP_PKEY_CTX_set_rsa_padding(ctx, ffi::RSA_PKCS1_OAEP_PADDING)
                        <= 0
                    || ffi::EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md.as_ptr()) <= 0
                    || openssl_sys::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md.as_ptr()) <= 0
                {
                    return Err(crypto(openssl::error::ErrorStack::get()));
                }
            }
        }
        if ffi::finish_with_content(
            cms.as_ptr(),
            content,
            Some(content.iter().map(|c| c.len()).sum::<usize>() + 32),
        )
        .is_err()
        {
            return Err(crypto(openssl::error::ErrorStack::get()));
        }
        cms.to_der().map_err(crypto)
    }
}

/// The message that goes on the wire: the outer headers, then the enveloped
/// DER as application/pkcs7-mime, base64 (RFC 8551 §3.3; the Edge Testing
/// Tool checks name=smime.p7m and the Content-Disposition).
pub(crate) fn to_mime(outer_headers: &[u8], der: &[u8], cipher: ContentCipher) -> Vec<u8> {
    let smime_type = if cipher.is_authenticated() {
        "authEnveloped-data"
    } else {
        "enveloped-data"
    };
    let mut out = Vec::with_capacity(outer_headers.len() + der.len() / 57 * 78 + 400);
    out.extend_from_slice(outer_headers);
    out.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n\
             \tname=\"smime.p7m\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\
             Content-Description: S/MIME Encrypted Message\r\n\r\n"
        )
        .as_bytes(),
    );
    mime::append_base64_lines(&mut out, der);
    out
}
