//! The one error type of hisp-smime: every failure names its step and its cause.

use std::fmt;

/// The step of seal or open at which a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the caller's certificates and keys.
    Keys,
    /// Parsing the MIME structure of the message.
    Mime,
    /// Wrapping the message as message/rfc822 (seal).
    Wrap,
    /// Signing (seal).
    Sign,
    /// Encrypting (seal).
    Encrypt,
    /// Decrypting (open).
    Decrypt,
    /// Checking the signature and digest (open).
    Verify,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Keys => "keys",
            Step::Mime => "mime",
            Step::Wrap => "wrap",
            Step::Sign => "sign",
            Step::Encrypt => "encrypt",
            Step::Decrypt => "decrypt",
            Step::Verify => "verify",
        })
    }
}

/// Why seal or open failed. The message says which certificate, which algorithm
/// and which check, so an administrator can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmimeError {
    /// The input is not a MIME message hisp can read.
    #[error("malformed MIME: {0}")]
    MalformedMime(String),
    /// The message is MIME but neither encrypted nor signed.
    #[error("not S/MIME: {0}")]
    NotSmime(String),
    /// A base64 body that does not decode (truncated, bad characters).
    #[error("malformed base64 in the {part}: {detail}")]
    BadBase64 {
        /// Which part held it.
        part: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// DER that is not a CMS ContentInfo of the expected type.
    #[error("malformed CMS {what}: {detail}")]
    MalformedCms {
        /// What was expected (EnvelopedData, SignedData...).
        what: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// None of our certificates matches a RecipientInfo of the message.
    #[error("not a recipient: the message is encrypted to {recipients}, and no configured certificate matches")]
    NotARecipient {
        /// The recipients named in the message (issuer+serial or subject key id).
        recipients: String,
    },
    /// A RecipientInfo matched but the content would not decrypt.
    #[error("bad ciphertext: {0}")]
    BadCiphertext(String),
    /// An algorithm hisp does not accept (3DES, RC2, MD5, SHA-1, unknown OIDs).
    #[error("unsupported algorithm at {step}: {what}")]
    UnsupportedAlgorithm {
        /// Where it was found.
        step: Step,
        /// Which algorithm, and why it is refused.
        what: String,
    },
    /// A decrypted message without a signature: Direct requires one.
    #[error("not signed: the decrypted content is {0}, and Direct messages must be signed")]
    Unsigned(String),
    /// The content's digest does not match the one the signer signed.
    #[error("digest mismatch: the content was changed after {signer} signed it")]
    DigestMismatch {
        /// The signer's subject and serial.
        signer: String,
    },
    /// The signature over the signed attributes does not verify.
    #[error("bad signature by {signer}: {detail}")]
    BadSignature {
        /// The signer's subject and serial.
        signer: String,
        /// What failed.
        detail: String,
    },
    /// A SignerInfo whose certificate is not in the message.
    #[error("signer certificate missing: {0}")]
    SignerCertificateMissing(String),
    /// An RSA key shorter than 2048 bits.
    #[error(
        "weak key at {step}: {subject} has a {bits}-bit RSA key, at least 2048 bits are required"
    )]
    WeakKey {
        /// Where it was found.
        step: Step,
        /// The certificate's subject.
        subject: String,
        /// Its size.
        bits: u32,
    },
    /// A certificate or key the caller handed in is unusable.
    #[error("bad key material: {0}")]
    BadKeyMaterial(String),
    /// seal was called with no recipient certificate.
    #[error("no recipient certificate to encrypt to")]
    NoRecipients,
    /// OpenSSL failed where it should not have.
    #[error("OpenSSL failed at {step}: {detail}")]
    Crypto {
        /// Where.
        step: Step,
        /// OpenSSL's error stack.
        detail: String,
    },
}

impl SmimeError {
    /// The step this error belongs to.
    pub fn step(&self) -> Step {
        match self {
            SmimeError::MalformedMime(_) | SmimeError::NotSmime(_) => Step::Mime,
            SmimeError::BadBase64 { .. } | SmimeError::MalformedCms { .. } => Step::Mime,
            SmimeError::NotARecipient { .. } | SmimeError::BadCiphertext(_) => Step::Decrypt,
            SmimeError::UnsupportedAlgorithm { step, .. } | SmimeError::WeakKey { step, .. } => {
                *step
            }
            SmimeError::Crypto { step, .. } => *step,
            SmimeError::Unsigned(_)
            | SmimeError::DigestMismatch { .. }
            | SmimeError::BadSignature { .. }
            | SmimeError::SignerCertificateMissing(_) => Step::Verify,
            SmimeError::BadKeyMaterial(_) => Step::Keys,
            SmimeError::NoRecipients => Step::Encrypt,
        }
    }

    /// A short stable code for scripts and audit records (`digest-mismatch`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            SmimeError::MalformedMime(_) => "malformed-mime",
            SmimeError::NotSmime(_) => "not-smime",
            SmimeError::BadBase64 { .. } => "bad-base64",
            SmimeError::MalformedCms { .. } => "malformed-cms",
            SmimeError::NotARecipient { .. } => "not-a-recipient",
            SmimeError::BadCiphertext(_) => "bad-ciphertext",
            SmimeError::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            SmimeError::Unsigned(_) => "unsigned",
            SmimeError::DigestMismatch { .. } => "digest-mismatch",
            SmimeError::BadSignature { .. } => "bad-signature",
            SmimeError::SignerCertificateMissing(_) => "signer-certificate-missing",
            SmimeError::WeakKey { .. } => "weak-key",
            SmimeError::BadKeyMaterial(_) => "bad-key-material",
            SmimeError::NoRecipients => "no-recipients",
            SmimeError::Crypto { .. } => "crypto",
        }
    }

    pub(crate) fn disallowed_cipher(name: &str) -> Self {
        SmimeError::UnsupportedAlgorithm {
            step: Step::Decrypt,
            what: format!(
                "content cipher {name} is not allowed (Applicability Statement 1.3 requires AES)"
            ),
        }
    }

    pub(crate) fn disallowed_digest(name: &str) -> Self {
        SmimeError::UnsupportedAlgorithm {
            step: Step::Verify,
            what: format!(
                "digest {name} is not allowed (Applicability Statement 1.3 requires SHA-256 or stronger)"
            ),
        }
    }

    pub(crate) fn crypto(step: Step, stack: openssl::error::ErrorStack) -> Self {
        SmimeError::Crypto {
            step,
            detail: stack.to_string(),
        }
    }
}
