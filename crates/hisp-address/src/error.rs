//! Why an address or domain is refused.

use thiserror::Error;

/// A refused address or domain, with the value as given and the rule it breaks.
///
/// The texts read `invalid domain '<value>': <reason>` and
/// `invalid address '<value>': <reason>`, so an administrator learns which
/// name and which rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// A domain name that is not an LDH DNS name.
    #[error("invalid domain '{domain}': {reason}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// The rule it breaks.
        reason: Reason,
    },
    /// A Direct address that is not `dot-atom@domain`.
    #[error("invalid address '{address}': {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// The rule it breaks (of the local part or of the domain).
        reason: Reason,
    },
}

impl AddressError {
    /// The rule the value breaks.
    pub fn reason(&self) -> &Reason {
        match self {
            AddressError::InvalidDomain { reason, .. }
            | AddressError::InvalidAddress { reason, .. } => reason,
        }
    }

    /// The value as given.
    pub fn value(&self) -> &str {
        match self {
            AddressError::InvalidDomain { domain, .. } => domain,
            AddressError::InvalidAddress { address, .. } => address,
        }
    }
}

/// The rule an address or domain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reason {
    /// The address has no `@`.
    #[error("it has no '@'")]
    NoAt,
    /// Nothing before the `@`.
    #[error("the local part before '@' is empty")]
    EmptyLocalPart,
    /// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
    #[error("the local part is longer than 64 characters")]
    LocalPartTooLong,
    /// The local part is not an unquoted dot-atom (RFC 5321 §4.1.2).
    #[error("the local part must be dot-separated letters, digits and !#$%&'*+-/=?^_`{{|}}~")]
    LocalPartNotDotAtom,
    /// Nothing is left once a trailing dot is dropped.
    #[error("the domain is empty")]
    EmptyDomain,
    /// RFC 1035 §2.3.4: at most 253 characters in text.
    #[error("the domain is longer than 253 characters")]
    DomainTooLong,
    /// Two dots in a row, or a leading dot.
    #[error("the domain has an empty label")]
    EmptyLabel,
    /// RFC 1035 §2.3.4: a label is at most 63 octets.
    #[error("the label '{0}' is longer than 63 characters")]
    LabelTooLong(String),
    /// RFC 1035 §2.3.1: a label holds letters, digits and hyphens only.
    #[error("the label '{0}' may hold only letters, digits and '-'")]
    LabelNotLdh(String),
    /// RFC 1035 §2.3.1: a label starts and ends with a letter or digit.
    #[error("the label '{0}' must not start or end with '-'")]
    LabelHyphenAtEdge(String),
}
