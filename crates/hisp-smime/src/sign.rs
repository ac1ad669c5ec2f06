//! Detached SHA-256 signing (RFC 8551 §3.5.3, RFC 5652 §5).

use foreign_types::ForeignType;
use openssl::cms::CmsContentInfo;
use openssl::nid::Nid;

use crate::error::{SmimeError, Step};
use crate::ffi;
use crate::keys::{check_public_key, Signer};
use crate::mime;

/// The capabilities a signer advertises (RFC 8551 §2.5.2), strongest first.
const CAPABILITIES: [Nid; 3] = [Nid::AES_256_GCM, Nid::AES_256_CBC, Nid::AES_128_CBC];

/// Signs `content` (a canonical MIME entity) and returns the multipart/signed
/// entity: the content unchanged as the first part, the detached SignedData
/// as the second.
pub(crate) fn sign_detached<'a>(
    content: &[&'a [u8]],
    signer: &Signer,
) -> Result<SignedEntity<'a>, SmimeError> {
    let boundary = boundary_not_in(content);
    let der = signed_data(content, signer)?;
    // RFC 8551 §3.5.3: protocol is quoted, micalg names the digest used.
    let head = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\
         \tmicalg=sha-256; boundary=\"{boundary}\"\r\n\r\n\
         This is an S/MIME signed message\r\n\r\n--{boundary}\r\n"
    )
    .into_bytes();
    let mut tail = format!("\r\n--{boundary}\r\n").into_bytes();
    tail.extend_from_slice(
        b"Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
          Content-Transfer-Encoding: base64\r\n\
          Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\
          Content-Description: S/MIME Cryptographic Signature\r\n\r\n",
    );
    mime::append_base64_lines(&mut tail, &der);
    tail.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(SignedEntity {
        head,
        content: content.to_vec(),
        tail,
    })
}

/// A multipart/signed entity kept in pieces: the signed content is borrowed,
/// never copied, and the pieces are fed to the encryption one after another.
pub(crate) struct SignedEntity<'a> {
    head: Vec<u8>,
    content: Vec<&'a [u8]>,
    tail: Vec<u8>,
}

impl SignedEntity<'_> {
    /// The entity's bytes, in order.
    pub(crate) fn pieces(&self) -> Vec<&[u8]> {
        let mut pieces = Vec::with_capacity(self.content.len() + 2);
        pieces.push(self.head.as_slice());
        pieces.extend(self.content.iter().copied());
        pieces.push(self.tail.as_slice());
        pieces
    }

    /// The entity as one buffer (tests and small messages).
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.pieces().concat()
    }
}

/// A detached SignedData over `content`: one SignerInfo, SHA-256 chosen
/// explicitly (not a library default), RSA PKCS#1 v1.5, signed attributes
/// with content-type, message-digest, signing-time and SMIMECapabilities, and
/// the signer certificate (plus any intermediates) included.
pub(crate) fn signed_data(content: &[&[u8]], signer: &Signer) -> Result<Vec<u8>, SmimeError> {
    // Applicability Statement 1.3 §5: RSA keys of at least 2048 bits.
    check_public_key(&signer.pair.cert, Step::Sign)?;
    let crypto = |e| SmimeError::crypto(Step::Sign, e);
    // CMS_BINARY: the content is already canonical, so no translation;
    // CMS_PARTIAL: the signer is finished after our attributes are added,
    // when the content has been digested (ffi::finish_with_content).
    let flags = ffi::CMS_DETACHED | ffi::CMS_BINARY | ffi::CMS_PARTIAL;
    // SAFETY: every pointer handed to libcrypto is valid for the call: the
    // ContentInfo is owned by `cms` (freed on drop), certificates and key are
    // borrowed from `signer` and up-referenced by CMS_add1_* where kept, and
    // the capability stack is freed here after CMS_add_smimecap copied it.
    unsafe {
        let raw = openssl_sys::CMS_sign(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            flags,
        );
        if raw.is_null() {
            return Err(crypto(openssl::error::ErrorStack::get()));
        }
        let cms = CmsContentInfo::from_ptr(raw);
        let si = ffi::CMS_add1_signer(
            cms.as_ptr(),
            signer.pair.cert.as_ptr(),
            signer.pair.key.as_ptr(),
            openssl_sys::EVP_sha256(),
            flags | ffi::CMS_NOSMIMECAP,
        );
        if si.is_null() {
            return Err(crypto(openssl::error::ErrorStack::get()));
        }
        let mut caps: *mut ffi::Stack = std::ptr::null_mut();
        let mut ok = true;
        for nid in CAPABILITIES {
            ok &= ffi::CMS_add_simple_smimecap(&mut caps, nid.as_raw(), -1) == 1;
        }
        ok = ok && ffi::CMS_add_smimecap(si, caps) == 1;
        ffi::free_algor_stack(caps);
        if !ok {
            return Err(crypto(openssl::error::ErrorStack::get()));
        }
        for cert in &signer.chain {
            if ffi::CMS_add1_cert(cms.as_ptr(), cert.as_ptr()) != 1 {
                return Err(crypto(openssl::error::ErrorStack::get()));
            }
        }
        if ffi::finish_with_content(cms.as_ptr(), content, None).is_err() {
            return Err(crypto(openssl::error::ErrorStack::get()));
        }
        cms.to_der().map_err(crypto)
    }
}

// The multipart/signed entity (RFC 1847 §2.1) is written by hand rather than
// with a MIME builder: the first part must be the signed bytes exactly, and
// the parameters must read exactly as receivers and the Edge Testing Tool
// expect them.

/// A random boundary that does not occur in the content.
pub(crate) fn boundary_not_in(content: &[&[u8]]) -> String {
    loop {
        let mut rnd = [0u8; 12];
        if openssl::rand::rand_bytes(&mut rnd).is_err() {
            // The pool is never empty on a running system; fall back to the clock.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            rnd.copy_from_slice(&nanos.to_le_bytes()[..12]);
        }
        let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let boundary = format!("----hisp-{hex}");
        let finder = memchr::memmem::Finder::new(boundary.as_bytes());
        if content.iter().all(|part| finder.find(part).is_none()) {
            return boundary;
        }
    }
}
