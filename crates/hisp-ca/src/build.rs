//! What every certificate hisp-ca makes has in common: an RSA key, a random
//! serial, a CN-only subject, the validity and the key identifiers.

use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use openssl::x509::{X509Builder, X509Name, X509Ref, X509};

use crate::error::CaError;
use crate::validity::{asn1_time, Validity};

/// The RSA key sizes hisp-ca makes for ordinary use.
pub const KEY_SIZES: [u32; 3] = [2048, 3072, 4096];

/// A key size below the Direct minimum of 2048 bits, accepted only so that
/// tests can make certificates hisp must refuse.
pub const WEAK_KEY_SIZE: u32 = 1024;

/// A fresh RSA key of `bits` bits.
pub(crate) fn generate_key(bits: u32) -> Result<PKey<Private>, CaError> {
    if !KEY_SIZES.contains(&bits) && bits != WEAK_KEY_SIZE {
        return Err(CaError::UnsupportedKeySize(bits));
    }
    let rsa = Rsa::generate(bits).map_err(CaError::crypto("generating an RSA key"))?;
    PKey::from_rsa(rsa).map_err(CaError::crypto("wrapping the RSA key"))
}

/// The fields of a certificate before its extensions.
pub(crate) struct Draft<'a> {
    pub subject_cn: &'a str,
    pub key: &'a PKey<Private>,
    pub validity: Validity,
    /// The issuer's certificate, or `None` for a self-signed one.
    pub issuer: Option<&'a X509Ref>,
}

/// Starts a v3 certificate with a random serial, a CN-only subject, the issuer
/// name and the validity; adds the subject key identifier.
pub(crate) fn start(draft: &Draft<'_>) -> Result<X509Builder, CaError> {
    let err = CaError::crypto("building the certificate");
    let mut b = X509Builder::new().map_err(err)?;
    b.set_version(2)
        .map_err(CaError::crypto("setting the version"))?;
    let serial = random_serial()?;
    b.set_serial_number(&serial)
        .map_err(CaError::crypto("setting the serial number"))?;
    let subject = cn_name(draft.subject_cn)?;
    b.set_subject_name(&subject)
        .map_err(CaError::crypto("setting the subject"))?;
    match draft.issuer {
        Some(issuer) => b.set_issuer_name(issuer.subject_name()),
        None => b.set_issuer_name(&subject),
    }
    .map_err(CaError::crypto("setting the issuer"))?;
    b.set_pubkey(draft.key)
        .map_err(CaError::crypto("setting the public key"))?;
    let (not_before, not_after) = draft.validity.resolve()?;
    let (not_before, not_after) = (asn1_time(not_before)?, asn1_time(not_after)?);
    b.set_not_before(&not_before)
        .map_err(CaError::crypto("setting not-before"))?;
    b.set_not_after(&not_after)
        .map_err(CaError::crypto("setting not-after"))?;
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(draft.issuer, None))
        .map_err(CaError::crypto("making the subject key identifier"))?;
    b.append_extension(ski)
        .map_err(CaError::crypto("adding the subject key identifier"))?;
    Ok(b)
}

/// Adds the authority key identifier (from the issuer's subject key
/// identifier; for a self-signed certificate, its own) and signs with
/// SHA256withRSA.
pub(crate) fn finish(
    mut b: X509Builder,
    issuer: Option<&X509Ref>,
    signing_key: &PKey<Private>,
) -> Result<X509, CaError> {
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(issuer, None))
        .map_err(CaError::crypto("making the authority key identifier"))?;
    b.append_extension(aki)
        .map_err(CaError::crypto("adding the authority key identifier"))?;
    b.sign(signing_key, MessageDigest::sha256())
        .map_err(CaError::crypto("signing the certificate"))?;
    Ok(b.build())
}

/// A random positive serial of exactly 16 octets (RFC 5280 §4.1.2.2: positive,
/// at most 20 octets; CA/Browser practice: at least 64 bits of randomness).
fn random_serial() -> Result<openssl::asn1::Asn1Integer, CaError> {
    let err = CaError::crypto("making a random serial number");
    let mut bn = BigNum::new().map_err(err)?;
    // 127 bits with the top one set: 16 octets whose first bit is 0, so the DER
    // INTEGER is positive without a leading zero octet.
    bn.rand(127, MsbOption::ONE, false)
        .map_err(CaError::crypto("making a random serial number"))?;
    bn.to_asn1_integer()
        .map_err(CaError::crypto("encoding the serial number"))
}

fn cn_name(cn: &str) -> Result<X509Name, CaError> {
    let mut name = X509Name::builder().map_err(CaError::crypto("building a name"))?;
    name.append_entry_by_text("CN", cn)
        .map_err(CaError::crypto("setting the common name"))?;
    Ok(name.build())
}
