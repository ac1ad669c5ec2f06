//! The algorithms hisp speaks, and the names it reports them by.

use std::fmt;
use std::str::FromStr;

use crate::error::SmimeError;

/// Content-encryption cipher of an EnvelopedData or AuthEnvelopedData.
///
/// Applicability Statement 1.3 §5: AES-128-CBC and AES-256-CBC must be supported;
/// 3DES, RC2 and DES are refused on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentCipher {
    /// AES-256 in CBC mode, EnvelopedData (the default).
    #[default]
    Aes256Cbc,
    /// AES-128 in CBC mode, EnvelopedData.
    Aes128Cbc,
    /// AES-192 in CBC mode, EnvelopedData (read on receipt; the CLI does not offer it).
    Aes192Cbc,
    /// AES-256 in GCM mode, AuthEnvelopedData (RFC 5083, RFC 5084).
    Aes256Gcm,
    /// AES-128 in GCM mode, AuthEnvelopedData (read on receipt; the CLI does not offer it).
    Aes128Gcm,
}

impl ContentCipher {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ContentCipher::Aes256Cbc => "aes256-cbc",
            ContentCipher::Aes128Cbc => "aes128-cbc",
            ContentCipher::Aes192Cbc => "aes192-cbc",
            ContentCipher::Aes256Gcm => "aes256-gcm",
            ContentCipher::Aes128Gcm => "aes128-gcm",
        }
    }

    /// True for the AEAD ciphers carried in AuthEnvelopedData.
    pub fn is_authenticated(self) -> bool {
        matches!(self, ContentCipher::Aes256Gcm | ContentCipher::Aes128Gcm)
    }

    /// The cipher for an OID found in an EncryptedContentInfo, or the refusal.
    pub(crate) fn from_oid(oid: &str) -> Result<Self, SmimeError> {
        Ok(match oid {
            "2.16.840.1.101.3.4.1.42" => ContentCipher::Aes256Cbc,
            "2.16.840.1.101.3.4.1.2" => ContentCipher::Aes128Cbc,
            "2.16.840.1.101.3.4.1.22" => ContentCipher::Aes192Cbc,
            "2.16.840.1.101.3.4.1.46" => ContentCipher::Aes256Gcm,
            "2.16.840.1.101.3.4.1.6" => ContentCipher::Aes128Gcm,
            "1.2.840.113549.3.7" => {
                return Err(SmimeError::disallowed_cipher("3DES (des-ede3-cbc)"))
            }
            "1.2.840.113549.3.2" => return Err(SmimeError::disallowed_cipher("RC2")),
            "1.3.14.3.2.7" => return Err(SmimeError::disallowed_cipher("DES")),
            other => {
                return Err(SmimeError::disallowed_cipher(&format!(
                    "unknown cipher {other}"
                )))
            }
        })
    }
}

impl fmt::Display for ContentCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ContentCipher {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aes256-cbc" => Ok(ContentCipher::Aes256Cbc),
            "aes128-cbc" => Ok(ContentCipher::Aes128Cbc),
            "aes256-gcm" => Ok(ContentCipher::Aes256Gcm),
            other => Err(format!(
                "unknown cipher '{other}': use aes256-cbc, aes128-cbc or aes256-gcm"
            )),
        }
    }
}

/// How the content-encryption key is carried to each recipient (KeyTransRecipientInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyTransport {
    /// RSAES-PKCS1-v1_5 (the default: every HISP reads it).
    #[default]
    Pkcs1,
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (RFC 3560 defaults).
    OaepSha1,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
}

impl KeyTransport {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            KeyTransport::Pkcs1 => "pkcs1",
            KeyTransport::OaepSha1 => "oaep-sha1",
            KeyTransport::OaepSha256 => "oaep-sha256",
        }
    }
}

impl fmt::Display for KeyTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pkcs1" => Ok(KeyTransport::Pkcs1),
            "oaep-sha1" => Ok(KeyTransport::OaepSha1),
            "oaep-sha256" => Ok(KeyTransport::OaepSha256),
            other => Err(format!(
                "unknown key transport '{other}': use pkcs1, oaep-sha1 or oaep-sha256"
            )),
        }
    }
}

/// Message digest of a SignerInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256, what hisp signs with (micalg=sha-256).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Digest {
    /// The name used in reports, and in micalg (RFC 5751 §3.4.3.2).
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha256 => "sha-256",
            Digest::Sha384 => "sha-384",
            Digest::Sha512 => "sha-512",
        }
    }

    /// The digest for an OpenSSL NID, or the refusal: Applicability Statement 1.3
    /// disallows MD5 and SHA-1 for signatures.
    pub(crate) fn from_nid(nid: openssl::nid::Nid) -> Result<Self, SmimeError> {
        use openssl::nid::Nid;
        match nid {
            Nid::SHA256 => Ok(Digest::Sha256),
            Nid::SHA384 => Ok(Digest::Sha384),
            Nid::SHA512 => Ok(Digest::Sha512),
            Nid::SHA1 => Err(SmimeError::disallowed_digest("sha-1")),
            Nid::MD5 => Err(SmimeError::disallowed_digest("md5")),
            other => Err(SmimeError::disallowed_digest(
                other.short_name().unwrap_or("unknown"),
            )),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
