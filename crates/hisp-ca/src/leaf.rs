//! End-entity certificates for Direct addresses and domains.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::X509;

use crate::authority::CertificateAuthority;
use crate::build::{finish, generate_key, start, Draft};
use crate::error::CaError;
use crate::files::{write_all, OutFile, CERT_MODE, KEY_MODE};
use crate::name::Binding;
use crate::validity::Validity;

/// File name of an issued certificate, PEM.
pub const CERT_PEM: &str = "cert.pem";
/// File name of an issued certificate, DER.
pub const CERT_DER: &str = "cert.der";
/// File name of an issued certificate's private key, PKCS#8 PEM, mode 0600.
pub const KEY_PEM: &str = "key.pem";

/// What the certificate's key may be used for.
///
/// Direct allows one certificate for both signing and encryption, or a
/// separate pair (Applicability Statement 1.3 §4.2; Direct certificate profile:
/// keyUsage digitalSignature for signing certificates, keyEncipherment for
/// encryption certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Usage {
    /// digitalSignature and keyEncipherment in one certificate (the default).
    #[default]
    Combined,
    /// digitalSignature only: a signing certificate.
    SigningOnly,
    /// keyEncipherment only: an encryption certificate.
    EncryptionOnly,
}

/// How to make an end-entity certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueOptions {
    /// RSA modulus size: 2048 (default), 3072 or 4096; 1024 only for weak-key tests.
    pub bits: u32,
    /// Validity; one year from now by default. May lie wholly in the past.
    pub validity: Validity,
    /// Key usage; combined by default.
    pub usage: Usage,
}

impl Default for IssueOptions {
    fn default() -> Self {
        IssueOptions {
            bits: 2048,
            validity: Validity::default(),
            usage: Usage::default(),
        }
    }
}

/// An issued certificate and its private key.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
}

impl std::fmt::Debug for Issued {
    // The key is left out on purpose: secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The certificate, PEM.
    pub fn cert_pem(&self) -> Result<Vec<u8>, CaError> {
        self.cert
            .to_pem()
            .map_err(CaError::crypto("encoding the certificate"))
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> Result<Vec<u8>, CaError> {
        self.key
            .private_key_to_pem_pkcs8()
            .map_err(CaError::crypto("encoding the private key"))
    }

    /// Writes cert.pem, cert.der and key.pem (mode 0600) into `dir`, creating
    /// it if needed. Refuses to overwrite any of them. Returns the paths written.
    pub fn save(&self, dir: &Path) -> Result<Vec<PathBuf>, CaError> {
        let pem = self.cert_pem()?;
        let der = self
            .cert
            .to_der()
            .map_err(CaError::crypto("encoding the certificate"))?;
        let key = self.key_pem()?;
        write_all(
            dir,
            &[
                OutFile {
                    name: KEY_PEM,
                    bytes: &key,
                    mode: KEY_MODE,
                },
                OutFile {
                    name: CERT_PEM,
                    bytes: &pem,
                    mode: CERT_MODE,
                },
                OutFile {
                    name: CERT_DER,
                    bytes: &der,
                    mode: CERT_MODE,
                },
            ],
        )
    }
}

/// Issues an end-entity certificate for `binding`, signed by `ca`.
///
/// The certificate has CN = the address or domain, exactly one subjectAltName
/// (rfc822Name for an address, dNSName for a domain), keyUsage critical per
/// `options.usage`, extendedKeyUsage emailProtection, basicConstraints
/// CA:FALSE, subject and authority key identifiers and a random 16-octet serial.
pub fn issue(
    ca: &CertificateAuthority,
    binding: &Binding,
    options: &IssueOptions,
) -> Result<Issued, CaError> {
    let binding = binding.normalized()?;
    let key = generate_key(options.bits)?;
    let mut b = start(&Draft {
        subject_cn: binding.value(),
        key: &key,
        validity: options.validity,
        issuer: Some(ca.cert()),
    })?;
    let bc = BasicConstraints::new()
        .critical()
        .build()
        .map_err(CaError::crypto("making basicConstraints"))?;
    b.append_extension(bc)
        .map_err(CaError::crypto("adding basicConstraints"))?;

    let mut ku = KeyUsage::new();
    ku.critical();
    match options.usage {
        Usage::Combined => ku.digital_signature().key_encipherment(),
        Usage::SigningOnly => ku.digital_signature(),
        Usage::EncryptionOnly => ku.key_encipherment(),
    };
    let ku = ku.build().map_err(CaError::crypto("making keyUsage"))?;
    b.append_extension(ku)
        .map_err(CaError::crypto("adding keyUsage"))?;

    let eku = ExtendedKeyUsage::new()
        .email_protection()
        .build()
        .map_err(CaError::crypto("making extendedKeyUsage"))?;
    b.append_extension(eku)
        .map_err(CaError::crypto("adding extendedKeyUsage"))?;

    // Applicability Statement 1.3 §4.1: the binding is carried in exactly one
    // subjectAltName entry, rfc822Name for an address, dNSName for a domain.
    let mut san = SubjectAlternativeName::new();
    match &binding {
        Binding::Address(address) => san.email(address),
        Binding::Domain(domain) => san.dns(domain),
    };
    let san = san
        .build(&b.x509v3_context(Some(ca.cert()), None))
        .map_err(CaError::crypto("making subjectAltName"))?;
    b.append_extension(san)
        .map_err(CaError::crypto("adding subjectAltName"))?;

    let cert = finish(b, Some(ca.cert()), ca.key())?;
    Ok(Issued { cert, key })
}
