//! The certificate authority: a root (or intermediate) certificate and its key.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509KeyUsage, X509Ref, X509};

use crate::build::{finish, generate_key, start, Draft};
use crate::error::CaError;
use crate::files::{read, write_all, OutFile, CERT_MODE, KEY_MODE};
use crate::validity::Validity;

/// File name of the CA certificate, PEM.
pub const CA_CERT_PEM: &str = "ca.pem";
/// File name of the CA certificate, DER (what a DNS CERT record or an anchor
/// upload takes).
pub const CA_CERT_DER: &str = "ca.der";
/// File name of the CA private key, PKCS#8 PEM, mode 0600.
pub const CA_KEY_PEM: &str = "ca.key";

/// How to make a CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaOptions {
    /// RSA modulus size: 2048 (default), 3072 or 4096.
    pub bits: u32,
    /// Validity; ten years from now by default.
    pub validity: Validity,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            bits: 2048,
            validity: Validity::Days(3650),
        }
    }
}

/// A CA certificate with its private key, able to issue certificates.
#[derive(Clone)]
pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for CertificateAuthority {
    // The key is left out on purpose: secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Makes a self-signed root CA named `CN=cn`: basicConstraints critical
    /// CA:TRUE, keyUsage critical keyCertSign and cRLSign, subject and
    /// authority key identifiers, SHA256withRSA.
    pub fn create(cn: &str, options: &CaOptions) -> Result<Self, CaError> {
        Self::make(cn, options, None)
    }

    /// Makes an intermediate CA named `CN=cn`, issued by `self`, with the same
    /// extensions as a root. Useful for testing path building.
    pub fn create_intermediate(&self, cn: &str, options: &CaOptions) -> Result<Self, CaError> {
        Self::make(cn, options, Some(self))
    }

    fn make(
        cn: &str,
        options: &CaOptions,
        parent: Option<&CertificateAuthority>,
    ) -> Result<Self, CaError> {
        if cn.trim().is_empty() || cn.chars().count() > 64 {
            return Err(CaError::InvalidCommonName(cn.to_string()));
        }
        let key = generate_key(options.bits)?;
        let issuer = parent.map(|p| p.cert.as_ref());
        let mut b = start(&Draft {
            subject_cn: cn,
            key: &key,
            validity: options.validity,
            issuer,
        })?;
        let bc = BasicConstraints::new()
            .critical()
            .ca()
            .build()
            .map_err(CaError::crypto("making basicConstraints"))?;
        b.append_extension(bc)
            .map_err(CaError::crypto("adding basicConstraints"))?;
        let ku = KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .map_err(CaError::crypto("making keyUsage"))?;
        b.append_extension(ku)
            .map_err(CaError::crypto("adding keyUsage"))?;
        let signing_key = parent.map(|p| &p.key).unwrap_or(&key);
        let cert = finish(b, issuer, signing_key)?;
        Ok(CertificateAuthority { cert, key })
    }

    /// Pairs an existing CA certificate with its key, checking that the key
    /// belongs to the certificate and that the certificate may sign certificates.
    pub fn from_parts(cert: X509, key: PKey<Private>) -> Result<Self, CaError> {
        check_pair(&cert, &key).map_err(CaError::UnusableCa)?;
        Ok(CertificateAuthority { cert, key })
    }

    /// The CA certificate.
    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    /// The CA private key.
    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// Writes ca.pem, ca.der and ca.key (mode 0600) into `dir`, creating it if
    /// needed. Refuses to overwrite any of them. Returns the paths written.
    pub fn save(&self, dir: &Path) -> Result<Vec<PathBuf>, CaError> {
        let pem = self
            .cert
            .to_pem()
            .map_err(CaError::crypto("encoding the CA certificate"))?;
        let der = self
            .cert
            .to_der()
            .map_err(CaError::crypto("encoding the CA certificate"))?;
        let key = self
            .key
            .private_key_to_pem_pkcs8()
            .map_err(CaError::crypto("encoding the CA key"))?;
        write_all(
            dir,
            &[
                OutFile {
                    name: CA_KEY_PEM,
                    bytes: &key,
                    mode: KEY_MODE,
                },
                OutFile {
                    name: CA_CERT_PEM,
                    bytes: &pem,
                    mode: CERT_MODE,
                },
                OutFile {
                    name: CA_CERT_DER,
                    bytes: &der,
                    mode: CERT_MODE,
                },
            ],
        )
    }

    /// Reads a CA saved by [`CertificateAuthority::save`] from `dir` (ca.pem and ca.key).
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let cert_path = dir.join(CA_CERT_PEM);
        let key_path = dir.join(CA_KEY_PEM);
        let cert = X509::from_pem(&read(&cert_path)?).map_err(|e| CaError::BadFile {
            path: cert_path.clone(),
            detail: format!("not a PEM certificate: {e}"),
        })?;
        let key = PKey::private_key_from_pem(&read(&key_path)?).map_err(|e| CaError::BadFile {
            path: key_path.clone(),
            detail: format!("not a PEM private key: {e}"),
        })?;
        check_pair(&cert, &key)
            .map_err(|detail| CaError::UnusableCa(format!("{}: {detail}", dir.display())))?;
        Ok(CertificateAuthority { cert, key })
    }
}

fn check_pair(cert: &X509Ref, key: &PKey<Private>) -> Result<(), String> {
    let public = cert
        .public_key()
        .map_err(|e| format!("cannot read the public key: {e}"))?;
    if !public.public_eq(key) {
        return Err("the private key does not belong to the certificate".into());
    }
    match cert.key_usage() {
        Some(ku) if !ku.contains(X509KeyUsage::KEY_CERT_SIGN) => {
            Err("not a CA certificate: its keyUsage lacks keyCertSign".into())
        }
        _ => Ok(()),
    }
}
