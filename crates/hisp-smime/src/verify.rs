//! Signature verification, signer by signer (RFC 5652 §5.6, RFC 8551 §3.5).
//!
//! A message is accepted when at least one signer's signature and content
//! digest verify: a bad second signature beside a good one does not make
//! the message bad (the DirectTrust receive cases expect this). Whether a
//! signer is trusted (path to an anchor, validity, revocation, binding) is
//! not decided here: the caller asks hisp-trust about the verified signers.

use std::borrow::Cow;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::cms::CmsContentInfo;
use openssl::hash::MessageDigest;
use openssl::stack::Stack;
use openssl::x509::{X509Ref, X509};

use crate::algorithms::Digest;
use crate::error::{SmimeError, Step};
use crate::ffi;
use crate::keys::{check_public_key, describe, name_line, serial_hex, subject_line};
use crate::mime::{Entity, SmimeKind};
use crate::open::SignerReport;
use crate::{canon, certcache, inspect};

/// What verification found.
pub(crate) struct Verified<'a> {
    /// The signed content (a MIME entity), or why it is not accepted.
    pub result: Result<Cow<'a, [u8]>, SmimeError>,
    /// Every signer.
    pub signers: Vec<SignerReport>,
    /// The digest of the first verified signer, else of the first signer.
    pub digest: Option<Digest>,
    /// Every certificate the SignedData carried (signers and intermediates).
    pub certificates: Vec<X509>,
}

impl Verified<'_> {
    fn failed(e: SmimeError) -> Self {
        Verified {
            result: Err(e),
            signers: Vec::new(),
            digest: None,
            certificates: Vec::new(),
        }
    }
}

/// Verifies a signed entity: multipart/signed (detached) or
/// application/pkcs7-mime; smime-type=signed-data (opaque).
pub(crate) fn verify(entity: &[u8]) -> Verified<'_> {
    let parsed = match Entity::parse(entity) {
        Ok(e) => e,
        Err(e) => return Verified::failed(e),
    };
    match parsed.smime_kind() {
        SmimeKind::Signed => {
            let (content, signature) = match parsed.signed_parts() {
                Ok(p) => p,
                Err(e) => return Verified::failed(e),
            };
            match signature.decoded_der("signature part") {
                Ok(der) => verify_der(&der, Some(content)),
                Err(e) => Verified::failed(e),
            }
        }
        SmimeKind::OpaqueSigned | SmimeKind::Enveloped => {
            // An x-pkcs7-mime part without smime-type may still be signed-data.
            match parsed.decoded_der("signed-data part") {
                Ok(der) => verify_der(&der, None),
                Err(e) => Verified::failed(e),
            }
        }
        SmimeKind::AuthEnveloped => Verified::failed(SmimeError::Unsigned(
            "encrypted twice (authEnveloped-data inside the envelope)".into(),
        )),
        SmimeKind::Other(ct) => Verified::failed(SmimeError::Unsigned(ct)),
    }
}

/// One signer's checks, in the order they ran.
struct SignerCheck {
    cert: Option<X509>,
    id: String,
    digest: Result<Digest, SmimeError>,
    signature: Result<(), SmimeError>,
    content: Result<(), SmimeError>,
}

fn malformed(detail: impl ToString) -> SmimeError {
    SmimeError::MalformedCms {
        what: "SignedData",
        detail: detail.to_string(),
    }
}

fn verify_der<'a>(der: &[u8], detached: Option<&'a [u8]>) -> Verified<'a> {
    // The certificates are decoded through the cache (certcache.rs) and
    // handed to libcrypto beside the SignedData rather than inside it.
    let split = inspect::split_signed_data(der);
    let parsed = match &split {
        Some(s) => CmsContentInfo::from_der(&s.without_certs),
        None => CmsContentInfo::from_der(der),
    };
    let cms = match parsed {
        Ok(c) => c,
        Err(e) => return Verified::failed(malformed(crate::decrypt::first_reason(&e))),
    };
    let supplied = match &split {
        Some(s) => {
            let mut stack = match Stack::new() {
                Ok(st) => st,
                Err(e) => return Verified::failed(SmimeError::crypto(Step::Verify, e)),
            };
            for cert_der in &s.certs {
                match certcache::decode(cert_der).and_then(|c| stack.push(c)) {
                    Ok(()) => {}
                    Err(e) => {
                        return Verified::failed(SmimeError::MalformedCms {
                            what: "SignedData",
                            detail: format!(
                                "a certificate in the message does not decode: {}",
                                crate::decrypt::first_reason(&e)
                            ),
                        })
                    }
                }
            }
            Some(stack)
        }
        None => None,
    };
    // SAFETY: `cms` owns the ContentInfo for this whole block; the SignerInfo
    // and X509 pointers read from it are borrowed from it and not kept past
    // it (certificates are up-referenced into owned X509 values); the
    // certificate stack from CMS_get1_certs is owned and freed by `Stack`.
    let (checks, content, certs) = unsafe {
        let sinfos = ffi::CMS_get0_SignerInfos(cms.as_ptr());
        if sinfos.is_null() {
            openssl_sys::ERR_clear_error();
            return Verified::failed(SmimeError::Unsigned(
                "a pkcs7 part that is not SignedData".into(),
            ));
        }
        let count = ffi::sk_num(sinfos);
        if count == 0 {
            return Verified::failed(SmimeError::Unsigned("SignedData without any signer".into()));
        }
        // What is signed is a MIME entity: id-data (RFC 8551 §3.1, RFC 5652 §5.2).
        let econtent = ffi::CMS_get0_eContentType(cms.as_ptr());
        let econtent_nid = if econtent.is_null() {
            0
        } else {
            openssl_sys::OBJ_obj2nid(econtent)
        };
        if econtent_nid != openssl_sys::NID_pkcs7_data {
            return Verified::failed(SmimeError::MalformedCms {
                what: "SignedData",
                detail: format!(
                    "the signed content type is {}, not id-data",
                    openssl::nid::Nid::from_raw(econtent_nid)
                        .short_name()
                        .unwrap_or("unknown")
                ),
            });
        }
        // Looks each signer's certificate up among the certificates in the message.
        let supplied_ptr = supplied
            .as_ref()
            .map(|s| s.as_ptr() as *mut ffi::Stack)
            .unwrap_or(std::ptr::null_mut());
        ffi::CMS_set1_signers_certs(cms.as_ptr(), supplied_ptr, 0);
        openssl_sys::ERR_clear_error();
        let certs: Stack<X509> = match supplied {
            Some(s) => s,
            None => {
                let certs_raw = ffi::CMS_get1_certs(cms.as_ptr());
                if certs_raw.is_null() {
                    match Stack::new() {
                        Ok(s) => s,
                        Err(e) => return Verified::failed(SmimeError::crypto(Step::Verify, e)),
                    }
                } else {
                    Stack::from_ptr(certs_raw as *mut _)
                }
            }
        };

        let mut checks = Vec::with_capacity(count);
        for i in 0..count {
            let si = ffi::sk_value::<ffi::CMS_SignerInfo>(sinfos, i);
            let mut signer: *mut openssl_sys::X509 = std::ptr::null_mut();
            let mut dig: *mut openssl_sys::X509_ALGOR = std::ptr::null_mut();
            ffi::CMS_SignerInfo_get0_algs(
                si,
                std::ptr::null_mut(),
                &mut signer,
                &mut dig,
                std::ptr::null_mut(),
            );
            let cert = if signer.is_null() {
                None
            } else {
                Some(X509Ref::from_ptr(signer).to_owned())
            };
            let id = match &cert {
                Some(c) => describe(c),
                None => signer_id(si),
            };
            let digest = if dig.is_null() {
                Err(malformed("SignerInfo without a digest algorithm"))
            } else {
                let mut obj: *const openssl_sys::ASN1_OBJECT = std::ptr::null();
                openssl_sys::X509_ALGOR_get0(
                    &mut obj,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    dig,
                );
                let nid = openssl::nid::Nid::from_raw(openssl_sys::OBJ_obj2nid(obj));
                Digest::from_nid(nid)
            };
            let signature = match &cert {
                None => Err(SmimeError::SignerCertificateMissing(format!(
                    "the message does not include the certificate of the signer {id}"
                ))),
                Some(c) => check_public_key(c, Step::Verify).and_then(|()| {
                    // RFC 5652 §5.4: without signed attributes the signature
                    // covers the content digest itself, and is checked with
                    // the content below (CMS_SignerInfo_verify_content).
                    if ffi::CMS_signed_get_attr_count(si) >= 0 && !content_type_attribute_is_data(si) {
                        // RFC 5652 §11.1: the content-type attribute MUST
                        // equal the eContentType it signs for.
                        Err(SmimeError::BadSignature {
                            signer: id.clone(),
                            detail: "the signed content-type attribute is not id-data, the type of the content".into(),
                        })
                    } else if ffi::CMS_signed_get_attr_count(si) < 0
                        || ffi::CMS_SignerInfo_verify(si) == 1
                    {
                        Ok(())
                    } else {
                        let e = openssl::error::ErrorStack::get();
                        Err(SmimeError::BadSignature {
                            signer: id.clone(),
                            detail: crate::decrypt::first_reason(&e),
                        })
                    }
                }),
            };
            checks.push(SignerCheck {
                cert,
                id,
                digest,
                signature,
                content: Ok(()),
            });
        }

        let content = match digest_content(&cms, sinfos, detached, &mut checks) {
            Ok(c) => c,
            Err(e) => return Verified::failed(e),
        };
        (checks, content, certs)
    };

    judge(checks, content, &certs)
}

/// Runs the content through the digests of every signer and records each
/// signer's result. Returns the content as verified.
///
/// # Safety
/// `cms` must be a SignedData and `sinfos` its SignerInfos.
unsafe fn digest_content<'a>(
    cms: &CmsContentInfo,
    sinfos: *mut ffi::Stack,
    detached: Option<&'a [u8]>,
    checks: &mut [SignerCheck],
) -> Result<Cow<'a, [u8]>, SmimeError> {
    let embedded = digest_pass(cms, sinfos, detached, checks)?;
    let Some(content) = detached else {
        return Ok(Cow::Owned(embedded.unwrap_or_default()));
    };
    // RFC 8551 §3.1.1: signers sign the canonical CRLF form. A detached part
    // that reached us with bare LF line ends is verified in canonical form.
    // Only when no signer verified the bytes as they are: a signer that did
    // keeps its result, and the content it verified is what is returned.
    let none_matched = checks.iter().all(|c| c.content.is_err());
    if none_matched && !canon::is_crlf_canonical(content) {
        let canonical = canon::to_crlf(content).into_owned();
        let mut retry: Vec<SignerCheck> = checks
            .iter()
            .map(|c| SignerCheck {
                cert: c.cert.clone(),
                id: c.id.clone(),
                digest: c.digest.clone(),
                signature: c.signature.clone(),
                content: Ok(()),
            })
            .collect();
        digest_pass(cms, sinfos, Some(&canonical), &mut retry)?;
        if retry.iter().any(|c| c.content.is_ok()) {
            for (c, r) in checks.iter_mut().zip(retry) {
                c.content = r.content;
            }
            return Ok(Cow::Owned(canonical));
        }
    }
    Ok(Cow::Borrowed(content))
}

/// One pass of the content through the signers' digests.
///
/// # Safety
/// As for [`digest_content`].
unsafe fn digest_pass(
    cms: &CmsContentInfo,
    sinfos: *mut ffi::Stack,
    detached: Option<&[u8]>,
    checks: &mut [SignerCheck],
) -> Result<Option<Vec<u8>>, SmimeError> {
    if let Some(content) = detached {
        let fast = digest_directly(sinfos, content, checks);
        if fast {
            return Ok(None);
        }
    }
    let dcont = match detached {
        Some(d) => Some(ffi::MemIn::new(d).map_err(|e| SmimeError::crypto(Step::Verify, e))?),
        None => None,
    };
    let dcont_ptr = dcont
        .as_ref()
        .map(|d| d.as_ptr())
        .unwrap_or(std::ptr::null_mut());
    let chain = ffi::CMS_dataInit(cms.as_ptr(), dcont_ptr);
    if chain.is_null() {
        let e = openssl::error::ErrorStack::get();
        return Err(if detached.is_none() {
            malformed(format!(
                "no content: a detached signature outside multipart/signed ({})",
                crate::decrypt::first_reason(&e)
            ))
        } else {
            malformed(crate::decrypt::first_reason(&e))
        });
    }
    // Detached content is already in hand: it only needs to pass through the
    // digests. Embedded content is collected.
    let mut embedded = detached.is_none().then(Vec::new);
    let read = match embedded.as_mut() {
        Some(buf) => ffi::read_to_end(chain, buf),
        None => ffi::drain(chain),
    };
    if read.is_ok() {
        for (i, check) in checks.iter_mut().enumerate() {
            let si = ffi::sk_value::<ffi::CMS_SignerInfo>(sinfos, i);
            if ffi::CMS_SignerInfo_verify_content(si, chain) != 1 {
                openssl_sys::ERR_clear_error();
                check.content = Err(SmimeError::DigestMismatch {
                    signer: check.id.clone(),
                });
            }
        }
    }
    // Free the digest BIOs CMS_dataInit pushed, but not the caller's content BIO.
    let mut bio = chain;
    if dcont_ptr.is_null() {
        openssl_sys::BIO_free_all(bio);
    } else {
        while !bio.is_null() && bio != dcont_ptr {
            let next = ffi::BIO_pop(bio);
            ffi::BIO_free(bio);
            bio = next;
        }
    }
    read.map_err(|()| malformed("the signed content could not be read"))?;
    Ok(embedded)
}

/// RFC 5652 §5.4 and §5.6: with signed attributes, the message-digest
/// attribute must equal the digest of the content. Hashing the detached
/// content in place (once per algorithm) spares the copy through libcrypto's
/// BIO chain. Returns false, having decided nothing, when a signer has no
/// signed attributes or an algorithm hisp refuses: the BIO path handles those.
///
/// # Safety
/// `sinfos` must be the SignerInfos that `checks` describe, in order.
unsafe fn digest_directly(
    sinfos: *mut ffi::Stack,
    content: &[u8],
    checks: &mut [SignerCheck],
) -> bool {
    let mut expected = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate() {
        let si = ffi::sk_value::<ffi::CMS_SignerInfo>(sinfos, i);
        let Ok(digest) = check.digest else {
            return false;
        };
        if ffi::CMS_signed_get_attr_count(si) < 0 {
            return false;
        }
        let value = ffi::CMS_signed_get0_data_by_OBJ(
            si,
            openssl_sys::OBJ_nid2obj(openssl_sys::NID_pkcs9_messageDigest),
            -3,
            openssl_sys::V_ASN1_OCTET_STRING,
        );
        let value = if value.is_null() {
            None
        } else {
            Some(
                openssl::asn1::Asn1StringRef::from_ptr(value as *mut openssl_sys::ASN1_STRING)
                    .as_slice()
                    .to_vec(),
            )
        };
        expected.push((digest, value));
    }
    openssl_sys::ERR_clear_error();
    let mut computed: Vec<(Digest, Vec<u8>)> = Vec::new();
    for (check, (digest, value)) in checks.iter_mut().zip(expected) {
        let actual = match computed.iter().find(|(d, _)| *d == digest) {
            Some((_, v)) => v.clone(),
            None => {
                let md = match digest {
                    Digest::Sha256 => MessageDigest::sha256(),
                    Digest::Sha384 => MessageDigest::sha384(),
                    Digest::Sha512 => MessageDigest::sha512(),
                };
                let Ok(v) = openssl::hash::hash(md, content) else {
                    return false;
                };
                computed.push((digest, v.to_vec()));
                v.to_vec()
            }
        };
        if value.as_deref() != Some(actual.as_slice()) {
            check.content = Err(SmimeError::DigestMismatch {
                signer: check.id.clone(),
            });
        }
    }
    true
}

/// True when the SignerInfo's one content-type attribute is id-data.
///
/// # Safety
/// `si` must be a valid SignerInfo.
unsafe fn content_type_attribute_is_data(si: *mut ffi::CMS_SignerInfo) -> bool {
    let value = ffi::CMS_signed_get0_data_by_OBJ(
        si,
        openssl_sys::OBJ_nid2obj(openssl_sys::NID_pkcs9_contentType),
        -3,
        openssl_sys::V_ASN1_OBJECT,
    );
    openssl_sys::ERR_clear_error();
    !value.is_null()
        && openssl_sys::OBJ_obj2nid(value as *const openssl_sys::ASN1_OBJECT)
            == openssl_sys::NID_pkcs7_data
}

/// Decides per signer and overall: a signer is verified when its digest
/// algorithm is allowed, its key strong enough, and its signature and the
/// content digest check out (RFC 5652 §5.6).
fn judge<'a>(
    checks: Vec<SignerCheck>,
    content: Cow<'a, [u8]>,
    certs: &Stack<X509>,
) -> Verified<'a> {
    let mut reports = Vec::with_capacity(checks.len());
    let mut accepted: Option<usize> = None;
    let mut problems = Vec::new();
    for check in checks {
        let verdict = check
            .signature
            .clone()
            .and_then(|()| check.content.clone())
            .and_then(|()| check.digest.clone().map(|_| ()))
            .and_then(|()| match &check.cert {
                Some(_) => Ok(()),
                None => Err(SmimeError::SignerCertificateMissing(check.id.clone())),
            });
        let verified = verdict.is_ok();
        if let Err(e) = &verdict {
            problems.push(e.clone());
        }
        if let Some(cert) = check.cert {
            if verified && accepted.is_none() {
                accepted = Some(reports.len());
            }
            reports.push(report(cert, check.digest.ok(), verified, verdict.err()));
        }
    }
    let digest = accepted
        .and_then(|i| reports.get(i))
        .or_else(|| reports.first())
        .and_then(|r| r.digest);
    let result = match accepted {
        Some(_) => Ok(content),
        None => Err(most_telling(problems)),
    };
    Verified {
        result,
        signers: reports,
        digest,
        certificates: certs.iter().map(|c| c.to_owned()).collect(),
    }
}

/// When no signer verifies, the reason reported is the gravest one found:
/// tampering first, then bad algorithms and keys.
fn most_telling(problems: Vec<SmimeError>) -> SmimeError {
    fn rank(e: &SmimeError) -> u8 {
        match e {
            SmimeError::DigestMismatch { .. } => 0,
            SmimeError::BadSignature { .. } => 1,
            SmimeError::UnsupportedAlgorithm { .. } => 2,
            SmimeError::WeakKey { .. } => 3,
            _ => 4,
        }
    }
    problems
        .into_iter()
        .min_by_key(rank)
        .unwrap_or_else(|| SmimeError::Unsigned("no signer".into()))
}

fn report(
    cert: X509,
    digest: Option<Digest>,
    verified: bool,
    problem: Option<SmimeError>,
) -> SignerReport {
    let sans = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| {
                    n.email()
                        .map(|e| format!("email:{e}"))
                        .or_else(|| n.dnsname().map(|d| format!("DNS:{d}")))
                        .or_else(|| n.uri().map(|u| format!("URI:{u}")))
                })
                .collect()
        })
        .unwrap_or_default();
    SignerReport {
        subject: subject_line(&cert),
        issuer: name_line(cert.issuer_name()),
        serial: serial_hex(&cert),
        not_after: rfc3339(cert.not_after()),
        sans,
        digest,
        verified,
        problem,
        cert,
    }
}

/// An ASN.1 time as RFC 3339 UTC.
pub(crate) fn rfc3339(t: &openssl::asn1::Asn1TimeRef) -> String {
    let unix = openssl::asn1::Asn1Time::from_unix(0)
        .and_then(|epoch| epoch.diff(t))
        .map(|d| d.days as i64 * 86_400 + d.secs as i64);
    match unix {
        Ok(secs) => time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string()),
        Err(_) => t.to_string(),
    }
}

/// A SignerInfo's identifier, for a signer whose certificate is missing.
///
/// # Safety
/// `si` must be a valid SignerInfo.
unsafe fn signer_id(si: *mut ffi::CMS_SignerInfo) -> String {
    let mut keyid: *mut openssl_sys::ASN1_OCTET_STRING = std::ptr::null_mut();
    let mut issuer: *mut openssl_sys::X509_NAME = std::ptr::null_mut();
    let mut serial: *mut openssl_sys::ASN1_INTEGER = std::ptr::null_mut();
    if ffi::CMS_SignerInfo_get0_signer_id(si, &mut keyid, &mut issuer, &mut serial) != 1 {
        return "an unidentified signer".into();
    }
    if !issuer.is_null() {
        let name = name_line(openssl::x509::X509NameRef::from_ptr(issuer));
        let serial = if serial.is_null() {
            "?".to_string()
        } else {
            openssl::asn1::Asn1IntegerRef::from_ptr(serial)
                .to_bn()
                .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
                .unwrap_or_else(|_| "?".into())
        };
        return format!("issuer '{name}' serial {serial}");
    }
    if !keyid.is_null() {
        let k = openssl::asn1::Asn1StringRef::from_ptr(keyid as *mut _);
        let hex: String = k.as_slice().iter().map(|b| format!("{b:02X}")).collect();
        return format!("subject key id {hex}");
    }
    "an unidentified signer".into()
}
