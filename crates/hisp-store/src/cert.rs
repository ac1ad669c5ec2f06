//! Certificates as the store keeps them: the DER, what is read from it once on
//! the way in (subject, serial, fingerprint, validity, bindings, key usage),
//! and for local certificates the private key.

use std::fmt;
use std::str::FromStr;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509NameRef, X509};
use time::OffsetDateTime;

use crate::error::StoreError;

/// The SHA-256 digest of a certificate's DER: how anchors and certificates are
/// told apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of DER bytes.
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = openssl::sha::sha256(der);
        Fingerprint(digest)
    }

    /// Parses 64 hex digits, upper or lower case, with or without colons
    /// (`openssl x509 -fingerprint -sha256` prints them with colons).
    pub fn parse(text: &str) -> Result<Fingerprint, StoreError> {
        let invalid = |reason: &str| StoreError::Invalid {
            what: "fingerprint",
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let hex: String = text.chars().filter(|&c| c != ':').collect();
        if hex.len() != 64 {
            return Err(invalid("a SHA-256 fingerprint has 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| invalid("a fingerprint holds only hex digits and colons"))?;
        }
        Ok(Fingerprint(bytes))
    }

    /// From the 32 bytes kept in the database.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Fingerprint> {
        bytes.try_into().ok().map(Fingerprint)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// Lower-case hex without colons.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fingerprint::parse(s)
    }
}

/// A certificate serial number, as upper-case hex in whole bytes without
/// colons (as `openssl x509 -serial` and the rest of hisp print it), so
/// `0A:1B`, `a1b` and `000a1b` are the same serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

impl Serial {
    /// Parses hex digits, with or without colons and leading zeros.
    pub fn parse(text: &str) -> Result<Serial, StoreError> {
        let hex: String = text
            .chars()
            .filter(|&c| c != ':')
            .collect::<String>()
            .to_ascii_uppercase();
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid {
                what: "serial",
                value: text.to_string(),
                reason: "a serial number is hex digits, optionally separated by colons".into(),
            });
        }
        Ok(Serial::normalized(&hex))
    }

    /// Whole bytes: leading zeros go, then one comes back when the digits
    /// are odd in number (`00:0a:1b` -> `0A1B`, as libcrypto prints it).
    fn normalized(hex: &str) -> Serial {
        let trimmed = hex.trim_start_matches('0');
        Serial(if trimmed.is_empty() {
            "0".into()
        } else if trimmed.len() % 2 == 1 {
            format!("0{trimmed}")
        } else {
            trimmed.to_string()
        })
    }

    /// The hex text as kept.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a local certificate's key is for, from its keyUsage extension
/// (Applicability Statement 1.3 §4.2: one certificate for both, or a
/// signing and an encryption certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertUsage {
    /// digitalSignature and keyEncipherment (or no keyUsage extension).
    Both,
    /// digitalSignature only.
    Signing,
    /// keyEncipherment only.
    Encryption,
}

impl CertUsage {
    /// `both`, `signing` or `encryption`: the name in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CertUsage::Both => "both",
            CertUsage::Signing => "signing",
            CertUsage::Encryption => "encryption",
        }
    }

    pub(crate) fn from_db(text: &str) -> Option<CertUsage> {
        match text {
            "both" => Some(CertUsage::Both),
            "signing" => Some(CertUsage::Signing),
            "encryption" => Some(CertUsage::Encryption),
            _ => None,
        }
    }
}

impl fmt::Display for CertUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the store reads from a certificate when it is added, kept beside the
/// DER so lists and error messages need no parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject, `CN=...` attributes in certificate order, comma-separated.
    pub subject: String,
    /// Issuer, in the same form.
    pub issuer: String,
    /// Serial number.
    pub serial: Serial,
    /// SHA-256 of the DER.
    pub fingerprint: Fingerprint,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// subjectAltName rfc822Name entries (address bindings).
    pub emails: Vec<String>,
    /// subjectAltName dNSName entries (domain bindings).
    pub dns_names: Vec<String>,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, StoreError> {
        let cert = X509::from_der(der).map_err(|e| StoreError::Invalid {
            what: "certificate",
            value: format!("({} bytes)", der.len()),
            reason: format!("not a DER X.509 certificate: {e}"),
        })?;
        CertInfo::of(&cert, der)
    }

    fn of(cert: &X509, der: &[u8]) -> Result<CertInfo, StoreError> {
        let bad = |reason: String| StoreError::Invalid {
            what: "certificate",
            value: name_text(cert.subject_name()),
            reason,
        };
        let serial = cert
            .serial_number()
            .to_bn()
            .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
            .map_err(|e| bad(format!("unreadable serial number: {e}")))?;
        let mut emails = Vec::new();
        let mut dns_names = Vec::new();
        if let Some(names) = cert.subject_alt_names() {
            for name in &names {
                if let Some(email) = name.email() {
                    emails.push(email.to_string());
                }
                if let Some(dns) = name.dnsname() {
                    dns_names.push(dns.to_string());
                }
            }
        }
        Ok(CertInfo {
            subject: name_text(cert.subject_name()),
            issuer: name_text(cert.issuer_name()),
            serial: Serial::normalized(&serial.to_ascii_uppercase()),
            fingerprint: Fingerprint::of(der),
            not_before: asn1_time(cert.not_before()).map_err(bad)?,
            not_after: asn1_time(cert.not_after()).map_err(bad)?,
            emails,
            dns_names,
        })
    }

    /// Whether a subjectAltName rfc822Name equals `address`, ignoring letter
    /// case (Applicability Statement 1.3 §4.1).
    pub fn binds_address(&self, address: &str) -> bool {
        self.emails.iter().any(|e| e.eq_ignore_ascii_case(address))
    }

    /// Whether a subjectAltName dNSName equals `domain`, ignoring letter case.
    pub fn binds_domain(&self, domain: &str) -> bool {
        self.dns_names
            .iter()
            .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(domain))
    }
}

/// A private key as PKCS#8 PEM. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(Vec<u8>);

impl PrivateKeyPem {
    /// The PEM bytes. Handle with care: never log or print them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn from_db(bytes: Vec<u8>) -> PrivateKeyPem {
        PrivateKeyPem(bytes)
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// A certificate checked and ready to be added to a local address or domain:
/// it parses, its usage is known, and its private key (if any) matches it.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub(crate) der: Vec<u8>,
    pub(crate) info: CertInfo,
    pub(crate) usage: CertUsage,
    pub(crate) key: Option<PrivateKeyPem>,
}

impl NewCertificate {
    /// Checks a DER certificate and its private key (PEM or DER, unencrypted),
    /// which must belong to the certificate's public key. The key is kept as
    /// PKCS#8 PEM. A certificate whose keyUsage allows neither
    /// digitalSignature nor keyEncipherment is refused: Direct cannot use it.
    pub fn new(der: &[u8], key: Option<&[u8]>) -> Result<NewCertificate, StoreError> {
        let cert = X509::from_der(der).map_err(|e| StoreError::Invalid {
            what: "certificate",
            value: format!("({} bytes)", der.len()),
            reason: format!("not a DER X.509 certificate: {e}"),
        })?;
        let info = CertInfo::of(&cert, der)?;
        let invalid = |reason: String| StoreError::Invalid {
            what: "certificate",
            value: format!("{} (serial {})", info.subject, info.serial),
            reason,
        };
        let usage = usage_of(&cert).map_err(|r| invalid(r.into()))?;
        let key = match key {
            None => None,
            Some(bytes) => {
                let key = parse_key(bytes).map_err(|r| invalid(r.into()))?;
                let public = cert
                    .public_key()
                    .map_err(|e| invalid(format!("unreadable public key: {e}")))?;
                if !public.public_eq(&key) {
                    return Err(invalid("the private key does not belong to it".into()));
                }
                let pem = key
                    .private_key_to_pem_pkcs8()
                    .map_err(|e| invalid(format!("cannot encode the private key: {e}")))?;
                Some(PrivateKeyPem(pem))
            }
        };
        Ok(NewCertificate {
            der: der.to_vec(),
            info,
            usage,
            key,
        })
    }

    /// What was read from the certificate.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// What its key is for.
    pub fn usage(&self) -> CertUsage {
        self.usage
    }

    /// Whether a private key comes with it.
    pub fn has_private_key(&self) -> bool {
        self.key.is_some()
    }
}

fn usage_of(cert: &X509) -> Result<CertUsage, &'static str> {
    use openssl::x509::X509KeyUsage as Ku;
    let Some(ku) = cert.key_usage() else {
        return Ok(CertUsage::Both);
    };
    let sign = ku.contains(Ku::DIGITAL_SIGNATURE);
    let encipher = ku.contains(Ku::KEY_ENCIPHERMENT);
    match (sign, encipher) {
        (true, true) => Ok(CertUsage::Both),
        (true, false) => Ok(CertUsage::Signing),
        (false, true) => Ok(CertUsage::Encryption),
        (false, false) => {
            Err("its keyUsage has neither digitalSignature nor keyEncipherment, so Direct can neither sign nor encrypt with it")
        }
    }
}

fn parse_key(bytes: &[u8]) -> Result<PKey<Private>, &'static str> {
    let is_pem = bytes.windows(10).any(|w| w == b"-----BEGIN");
    let key = if is_pem {
        if bytes.windows(9).any(|w| w == b"ENCRYPTED") {
            return Err("the private key is encrypted; give it unencrypted");
        }
        PKey::private_key_from_pem(bytes)
    } else {
        PKey::private_key_from_der(bytes)
    };
    key.map_err(|_| "the private key is not a PEM or DER private key")
}

/// `CN=alice@a.example, O=Example` in certificate order.
fn name_text(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let object = entry.object();
            let key = object
                .nid()
                .short_name()
                .map(str::to_string)
                .unwrap_or_else(|_| object.to_string());
            let value = entry.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn asn1_time(t: &Asn1TimeRef) -> Result<OffsetDateTime, String> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| format!("time arithmetic failed: {e}"))?;
    let diff = epoch
        .diff(t)
        .map_err(|e| format!("unreadable validity time: {e}"))?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| format!("validity out of range: {e}"))
}

#[cfg(test)]
mod tests {
    use hisp_ca::{issue, Binding, IssueOptions};

    use super::*;

    #[test]
    fn fingerprint_accepts_colons_and_upper_case() {
        let f = Fingerprint::of(b"x");
        let upper_colons = f
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(Fingerprint::parse(&upper_colons).unwrap(), f);
        assert_eq!(Fingerprint::parse(&f.to_string()).unwrap(), f);
        assert!(Fingerprint::parse("abcd").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn serial_ignores_colons_case_and_leading_zeros() {
        assert_eq!(Serial::parse("00:0a:1b").unwrap().as_str(), "0A1B");
        assert_eq!(Serial::parse("7").unwrap().as_str(), "07");
        assert_eq!(
            Serial::parse("a1b").unwrap(),
            Serial::parse("0A1B").unwrap()
        );
        assert_eq!(Serial::parse("00").unwrap().as_str(), "0");
        assert!(Serial::parse("xyz").is_err());
        assert!(Serial::parse("").is_err());
    }

    #[test]
    fn private_key_debug_is_redacted() {
        let k = PrivateKeyPem(b"-----BEGIN PRIVATE KEY-----secret".to_vec());
        assert_eq!(format!("{k:?}"), "PrivateKeyPem(<redacted>)");
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let one = issue(
            crate::conformance::ca(),
            &Binding::Domain("a.example".into()),
            &IssueOptions::default(),
        )
        .unwrap();
        let other = issue(
            crate::conformance::ca(),
            &Binding::Domain("a.example".into()),
            &IssueOptions::default(),
        )
        .unwrap();
        let err = NewCertificate::new(&one.cert.to_der().unwrap(), Some(&other.key_pem().unwrap()))
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("': the private key does not belong to it"),
            "{err}"
        );
    }
}
