//! Key usage by purpose (RFC 5280 §4.2.1.3; Direct certificate profile:
//! digitalSignature for signing certificates, keyEncipherment for encryption
//! certificates).

use std::fmt;

use openssl::x509::{X509KeyUsage, X509Ref};

/// What a certificate is about to be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Verifying a signature made by the certificate's key (an inbound signer).
    Sign,
    /// Encrypting to the certificate's key (an outbound recipient).
    Encrypt,
}

impl Purpose {
    /// The keyUsage bit the purpose needs.
    pub fn required_bit(self) -> X509KeyUsage {
        match self {
            Purpose::Sign => X509KeyUsage::DIGITAL_SIGNATURE,
            Purpose::Encrypt => X509KeyUsage::KEY_ENCIPHERMENT,
        }
    }

    /// The name of that bit as RFC 5280 spells it.
    pub fn required_bit_name(self) -> &'static str {
        match self {
            Purpose::Sign => "digitalSignature",
            Purpose::Encrypt => "keyEncipherment",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::Sign => "signing",
            Purpose::Encrypt => "encryption",
        })
    }
}

/// How a certificate's keyUsage answers a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsageCheck {
    /// The extension is present and has the bit.
    Allowed,
    /// There is no keyUsage extension: RFC 5280 §4.2.1.3 puts no restriction
    /// on such a key, and RFC 8550 §4.4.2 has receivers presume
    /// digitalSignature. hisp accepts it for both purposes and says so in the
    /// verdict.
    Unrestricted,
    /// The extension is present without the bit: refused.
    Lacks(&'static str),
}

/// Checks the end-entity certificate's keyUsage for `purpose`.
///
/// RFC 5280 §4.2.1.3: when the extension is present, the key MUST only be
/// used for the purposes it names. Only digitalSignature counts for signing
/// (not nonRepudiation alone) and only keyEncipherment for encryption, as the
/// Direct certificate profile asks: Direct keys are RSA and encryption is key
/// transport.
pub fn check_key_usage(cert: &X509Ref, purpose: Purpose) -> KeyUsageCheck {
    match cert.key_usage() {
        None => KeyUsageCheck::Unrestricted,
        Some(ku) if ku.contains(purpose.required_bit()) => KeyUsageCheck::Allowed,
        Some(_) => KeyUsageCheck::Lacks(purpose.required_bit_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_purpose_needs_its_bit() {
        assert_eq!(Purpose::Sign.required_bit_name(), "digitalSignature");
        assert_eq!(Purpose::Encrypt.required_bit_name(), "keyEncipherment");
        assert_eq!(Purpose::Encrypt.to_string(), "encryption");
    }
}
