//! Reads the head of an EnvelopedData or AuthEnvelopedData without copying
//! the ciphertext: the recipients and the content cipher.
//!
//! libcrypto offers no accessor for the content-encryption algorithm or the
//! OAEP parameters of a RecipientInfo, so the structure is read with the
//! `der`/`cms` crates; the decryption itself stays with libcrypto.

use cms::enveloped_data::{RecipientIdentifier, RecipientInfo, RecipientInfos};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierOwned;

use crate::algorithms::KeyTransport;
use crate::error::{SmimeError, Step};

const ID_ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
const ID_AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSAES_OAEP: &str = "1.2.840.113549.1.1.7";
const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// How a RecipientInfo names its recipient (RFC 5652 §6.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecipientId {
    /// issuerAndSerialNumber: issuer Name DER and serial magnitude bytes.
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    /// subjectKeyIdentifier.
    KeyId(Vec<u8>),
    /// A key agreement, KEK or password recipient: not one hisp can be.
    Other(&'static str),
}

/// One RecipientInfo.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub id: RecipientId,
    /// The key transport, or why it is not one hisp accepts.
    pub key_transport: Result<KeyTransport, String>,
}

/// The parts of an enveloped ContentInfo that decide how to open it.
#[derive(Debug, Clone)]
pub(crate) struct EnvelopeHead {
    pub authenticated: bool,
    pub cipher_oid: String,
    pub recipients: Vec<Recipient>,
}

fn malformed(detail: impl ToString) -> SmimeError {
    SmimeError::MalformedCms {
        what: "EnvelopedData",
        detail: detail.to_string(),
    }
}

/// Parses the ContentInfo head of an (Auth)EnvelopedData.
pub(crate) fn envelope_head(der: &[u8]) -> Result<EnvelopeHead, SmimeError> {
    let mut outer = SliceReader::new(der).map_err(malformed)?;
    let ci = Header::decode(&mut outer).map_err(malformed)?;
    if ci.tag != Tag::Sequence {
        return Err(malformed("ContentInfo is not a SEQUENCE"));
    }
    let oid = ObjectIdentifier::decode(&mut outer).map_err(malformed)?;
    let authenticated = match oid.to_string().as_str() {
        ID_ENVELOPED_DATA => false,
        ID_AUTH_ENVELOPED_DATA => true,
        ID_SIGNED_DATA => {
            return Err(SmimeError::MalformedCms {
                what: "EnvelopedData",
                detail: "the pkcs7-mime part holds SignedData, not EnvelopedData: the message is signed but not encrypted".into(),
            })
        }
        other => return Err(malformed(format!("content type {other} is not EnvelopedData"))),
    };
    // content [0] EXPLICIT
    let explicit = Header::decode(&mut outer).map_err(malformed)?;
    if explicit.tag
        != (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        })
    {
        return Err(malformed("ContentInfo content is not [0] EXPLICIT"));
    }
    let seq = Header::decode(&mut outer).map_err(malformed)?;
    if seq.tag != Tag::Sequence {
        return Err(malformed("EnvelopedData is not a SEQUENCE"));
    }
    let body = outer.read_slice(seq.length).map_err(malformed)?;
    let mut r = SliceReader::new(body).map_err(malformed)?;
    let _version = der::asn1::Int::decode(&mut r).map_err(malformed)?;
    // originatorInfo [0] IMPLICIT OPTIONAL
    if r.peek_tag().map_err(malformed)?
        == (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        })
    {
        let _ = der::Any::decode(&mut r).map_err(malformed)?;
    }
    let infos = RecipientInfos::decode(&mut r).map_err(malformed)?;
    let eci = Header::decode(&mut r).map_err(malformed)?;
    if eci.tag != Tag::Sequence {
        return Err(malformed("EncryptedContentInfo is not a SEQUENCE"));
    }
    let _content_type = ObjectIdentifier::decode(&mut r).map_err(malformed)?;
    let alg = AlgorithmIdentifierOwned::decode(&mut r).map_err(malformed)?;
    let recipients = infos.0.iter().map(recipient).collect();
    Ok(EnvelopeHead {
        authenticated,
        cipher_oid: alg.oid.to_string(),
        recipients,
    })
}

fn recipient(info: &RecipientInfo) -> Recipient {
    match info {
        RecipientInfo::Ktri(k) => {
            let id = match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(iss) => RecipientId::IssuerSerial {
                    issuer: iss.issuer.to_der().unwrap_or_default(),
                    serial: strip_zeros(iss.serial_number.as_bytes()).to_vec(),
                },
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    RecipientId::KeyId(ski.0.as_bytes().to_vec())
                }
            };
            Recipient {
                id,
                key_transport: key_transport(&k.key_enc_alg),
            }
        }
        RecipientInfo::Kari(_) => other("key agreement (kari)"),
        RecipientInfo::Kekri(_) => other("key encryption key (kekri)"),
        RecipientInfo::Pwri(_) => other("password (pwri)"),
        RecipientInfo::Ori(_) => other("other (ori)"),
    }
}

fn other(kind: &'static str) -> Recipient {
    Recipient {
        id: RecipientId::Other(kind),
        key_transport: Err(format!("{kind} recipients are not supported")),
    }
}

/// Leading zero octets of a DER INTEGER are sign padding, not magnitude.
pub(crate) fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// rsaEncryption is PKCS#1 v1.5; RSAES-OAEP carries its hash in the
/// parameters, SHA-1 when absent (RFC 8017 A.2.1, RFC 3560 §3).
fn key_transport(alg: &AlgorithmIdentifierOwned) -> Result<KeyTransport, String> {
    match alg.oid.to_string().as_str() {
        RSA_ENCRYPTION => Ok(KeyTransport::Pkcs1),
        RSAES_OAEP => {
            let hash = match &alg.parameters {
                None => SHA1.to_string(),
                Some(any) => {
                    oaep_hash(any.value()).map_err(|e| format!("RSAES-OAEP parameters: {e}"))?
                }
            };
            match hash.as_str() {
                SHA1 => Ok(KeyTransport::OaepSha1),
                SHA256 => Ok(KeyTransport::OaepSha256),
                other => Err(format!("RSAES-OAEP with hash {other} is not supported")),
            }
        }
        other => Err(format!("key transport {other} is not supported")),
    }
}

/// The hashFunc of RSAES-OAEP-params (the value bytes of the SEQUENCE).
fn oaep_hash(params: &[u8]) -> der::Result<String> {
    let mut r = SliceReader::new(params)?;
    if r.is_finished() {
        return Ok(SHA1.to_string());
    }
    let header = Header::decode(&mut r)?;
    if header.tag
        == (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        })
    {
        let inner = r.read_slice(header.length)?;
        let alg = AlgorithmIdentifierOwned::from_der(inner)?;
        return Ok(alg.oid.to_string());
    }
    Ok(SHA1.to_string())
}

/// Checks that the head names an algorithm class hisp accepts at all.
pub(crate) fn check_recipient_supported(r: &Recipient) -> Result<KeyTransport, SmimeError> {
    r.key_transport
        .clone()
        .map_err(|what| SmimeError::UnsupportedAlgorithm {
            step: Step::Decrypt,
            what,
        })
}

impl std::fmt::Display for RecipientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecipientId::IssuerSerial { issuer, serial } => {
                let issuer = openssl::x509::X509Name::from_der(issuer)
                    .map(|n| crate::keys::name_line(&n))
                    .unwrap_or_else(|_| "?".into());
                let serial: String = serial.iter().map(|b| format!("{b:02X}")).collect();
                write!(f, "issuer '{issuer}' serial {serial}")
            }
            RecipientId::KeyId(k) => {
                let k: String = k.iter().map(|b| format!("{b:02X}")).collect();
                write!(f, "subject key id {k}")
            }
            RecipientId::Other(kind) => write!(f, "a {kind} recipient"),
        }
    }
}

/// A SignedData ContentInfo split in two: the same structure without its
/// `certificates` field, and the DER of each certificate that was in it.
pub(crate) struct SplitSignedData {
    pub without_certs: Vec<u8>,
    pub certs: Vec<Vec<u8>>,
}

/// Splits the certificates out of a DER SignedData ContentInfo (RFC 5652
/// §5.1), so they can be decoded once and cached. Returns `None` for
/// anything unusual (BER, other certificate choices, not SignedData): the
/// caller then hands the structure to libcrypto whole.
pub(crate) fn split_signed_data(der: &[u8]) -> Option<SplitSignedData> {
    let mut outer = SliceReader::new(der).ok()?;
    let ci = Header::decode(&mut outer).ok()?;
    if ci.tag != Tag::Sequence || u32::from(ci.length) as usize + header_len(&ci)? != der.len() {
        return None;
    }
    let oid_start = der.len() - u32::from(outer.remaining_len()) as usize;
    let oid = ObjectIdentifier::decode(&mut outer).ok()?;
    if oid.to_string() != ID_SIGNED_DATA {
        return None;
    }
    let oid_end = der.len() - u32::from(outer.remaining_len()) as usize;
    let explicit = Header::decode(&mut outer).ok()?;
    if explicit.tag
        != (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        })
    {
        return None;
    }
    let sd = Header::decode(&mut outer).ok()?;
    if sd.tag != Tag::Sequence {
        return None;
    }
    let body = outer.read_slice(sd.length).ok()?;
    let mut r = SliceReader::new(body).ok()?;
    let offset = |r: &SliceReader<'_>| body.len() - u32::from(r.remaining_len()) as usize;
    // version, digestAlgorithms, encapContentInfo
    for _ in 0..3 {
        der::Any::decode(&mut r).ok()?;
    }
    let certs_start = offset(&r);
    let certs_header = Header::decode(&mut r).ok()?;
    if certs_header.tag
        != (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        })
    {
        return None;
    }
    let certs_body = r.read_slice(certs_header.length).ok()?;
    let certs_end = offset(&r);
    let mut certs = Vec::new();
    let mut cr = SliceReader::new(certs_body).ok()?;
    while !cr.is_finished() {
        let cert = der::Any::decode(&mut cr).ok()?;
        if cert.tag() != Tag::Sequence {
            return None; // an attribute certificate or other choice
        }
        certs.push(cert.to_der().ok()?);
    }
    let mut new_body = Vec::with_capacity(body.len());
    new_body.extend_from_slice(&body[..certs_start]);
    new_body.extend_from_slice(&body[certs_end..]);
    let sd_tlv = tlv(Tag::Sequence, &new_body)?;
    let explicit_tlv = tlv(
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        },
        &sd_tlv,
    )?;
    let mut ci_body = der[oid_start..oid_end].to_vec();
    ci_body.extend_from_slice(&explicit_tlv);
    Some(SplitSignedData {
        without_certs: tlv(Tag::Sequence, &ci_body)?,
        certs,
    })
}

fn header_len(h: &Header) -> Option<usize> {
    h.encoded_len().ok().map(|l| u32::from(l) as usize)
}

fn tlv(tag: Tag, value: &[u8]) -> Option<Vec<u8>> {
    let header = Header::new(tag, value.len()).ok()?;
    let mut out = header.to_der().ok()?;
    out.extend_from_slice(value);
    Some(out)
}

/// True when `der` is a ContentInfo of type SignedData (DER or BER).
pub(crate) fn is_signed_data(der: &[u8]) -> bool {
    use foreign_types::ForeignType;
    match openssl::cms::CmsContentInfo::from_der(der) {
        // SAFETY: CMS_get0_type borrows from the ContentInfo we hold.
        Ok(cms) => unsafe {
            let oid = crate::ffi::CMS_get0_type(cms.as_ptr());
            !oid.is_null() && openssl_sys::OBJ_obj2nid(oid) == openssl_sys::NID_pkcs7_signed
        },
        Err(_) => {
            openssl_sys_clear();
            false
        }
    }
}

fn openssl_sys_clear() {
    // SAFETY: clears this thread's OpenSSL error queue.
    unsafe { openssl_sys::ERR_clear_error() }
}
