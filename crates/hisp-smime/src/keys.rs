//! Certificates and private keys handed to seal and open.

use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::x509::{X509Ref, X509};

use crate::error::{SmimeError, Step};

/// The smallest RSA modulus hisp signs with, encrypts to or accepts a signature from.
pub const MIN_RSA_BITS: u32 = 2048;

/// A certificate and its private key: what a sender signs with, or what a
/// recipient decrypts with.
#[derive(Clone)]
pub struct KeyPair {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
}

impl KeyPair {
    /// Pairs a certificate with its key, refusing a key that does not match.
    pub fn new(cert: X509, key: PKey<Private>) -> Result<Self, SmimeError> {
        let public = cert
            .public_key()
            .map_err(|e| SmimeError::BadKeyMaterial(format!("certificate public key: {e}")))?;
        if !public.public_eq(&key) {
            return Err(SmimeError::BadKeyMaterial(format!(
                "the private key does not belong to the certificate {}",
                describe(&cert)
            )));
        }
        Ok(KeyPair { cert, key })
    }

    /// Reads a PEM or DER certificate and a PEM or DER private key.
    pub fn from_bytes(cert: &[u8], key: &[u8]) -> Result<Self, SmimeError> {
        let cert = parse_cert(cert)?;
        let key = if looks_pem(key) {
            PKey::private_key_from_pem(key)
        } else {
            PKey::private_key_from_der(key)
        }
        .map_err(|e| SmimeError::BadKeyMaterial(format!("private key: {e}")))?;
        KeyPair::new(cert, key)
    }
}

/// A sender: its key pair and any intermediate certificates to include in the
/// SignedData so receivers can build the path.
#[derive(Clone)]
pub struct Signer {
    /// The signing certificate and key.
    pub pair: KeyPair,
    /// Intermediate certificates, leaf-most first.
    pub chain: Vec<X509>,
}

impl Signer {
    /// A signer without intermediates.
    pub fn new(pair: KeyPair) -> Self {
        Signer {
            pair,
            chain: Vec::new(),
        }
    }
}

/// Reads one certificate, PEM or DER.
pub fn parse_cert(bytes: &[u8]) -> Result<X509, SmimeError> {
    if looks_pem(bytes) {
        X509::from_pem(bytes)
    } else {
        X509::from_der(bytes)
    }
    .map_err(|e| SmimeError::BadKeyMaterial(format!("certificate: {e}")))
}

fn looks_pem(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|w| w == b"-----BEGIN")
}

/// "CN=..., serial 0A1B" for messages.
pub(crate) fn describe(cert: &X509Ref) -> String {
    let subject = subject_line(cert);
    let serial = serial_hex(cert);
    format!("'{subject}' (serial {serial})")
}

/// The subject as one line, RFC 2253 order reversed for reading ("CN=x, O=y").
pub(crate) fn subject_line(cert: &X509Ref) -> String {
    name_line(cert.subject_name())
}

/// A distinguished name as one line.
pub(crate) fn name_line(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The serial number in upper-case hex.
pub(crate) fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_else(|_| "?".into())
}

/// Refuses RSA keys under [`MIN_RSA_BITS`]. Non-RSA keys pass here: OpenSSL
/// decides whether it can use them.
pub(crate) fn check_public_key(cert: &X509Ref, step: Step) -> Result<(), SmimeError> {
    let key = cert.public_key().map_err(|e| {
        SmimeError::BadKeyMaterial(format!("public key of {}: {e}", describe(cert)))
    })?;
    check_bits(&key, cert, step)
}

fn check_bits(key: &PKeyRef<Public>, cert: &X509Ref, step: Step) -> Result<(), SmimeError> {
    if key.id() == openssl::pkey::Id::RSA && key.bits() < MIN_RSA_BITS {
        return Err(SmimeError::WeakKey {
            step,
            subject: subject_line(cert),
            bits: key.bits(),
        });
    }
    Ok(())
}
