//! `Domain`: a DNS domain name, checked and lower-cased at the edge.

use std::fmt;
use std::str::FromStr;

use crate::error::{AddressError, Reason};

/// A domain name: checked (LDH labels, RFC 1035 §2.3.1 lengths) and
/// lower-cased, without a trailing dot. Two `Domain`s are equal exactly when
/// DNS would treat them as the same name.
///
/// Only ASCII is accepted: an internationalised domain must be given in its
/// A-label (`xn--`) form, as it is written in certificates and DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses and normalises a domain name; the error says which rule it breaks.
    pub fn parse(text: &str) -> Result<Domain, AddressError> {
        check(text)
            .map(Domain)
            .map_err(|reason| AddressError::InvalidDomain {
                domain: text.to_string(),
                reason,
            })
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

/// Checks a domain name and returns it lower-cased without the trailing dot,
/// or the rule it breaks.
pub(crate) fn check(text: &str) -> Result<String, Reason> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.is_empty() {
        return Err(Reason::EmptyDomain);
    }
    // RFC 1035 §2.3.4: 255 octets on the wire, 253 characters in text.
    if name.len() > 253 {
        return Err(Reason::DomainTooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(Reason::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(Reason::LabelTooLong(label.to_string()));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Reason::LabelNotLdh(label.to_string()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Reason::LabelHyphenAtEdge(label.to_string()));
        }
    }
    Ok(name)
}

/// Wraps a name that [`check`] returned.
pub(crate) fn checked(name: String) -> Domain {
    Domain(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lower_cased_without_trailing_dot() {
        let d = Domain::parse("Direct.Example.ORG.").unwrap();
        assert_eq!(d.as_str(), "direct.example.org");
        assert_eq!(d, Domain::parse("direct.example.org").unwrap());
        assert_eq!("direct.example.org".parse::<Domain>().unwrap(), d);
    }

    #[test]
    fn bad_domains_say_why() {
        let cases = [
            ("", "the domain is empty"),
            (".", "the domain is empty"),
            ("a..b", "the domain has an empty label"),
            (".a.example", "the domain has an empty label"),
            ("a.example..", "the domain has an empty label"),
            (
                "a_b.example",
                "the label 'a_b' may hold only letters, digits and '-'",
            ),
            (
                "-a.example",
                "the label '-a' must not start or end with '-'",
            ),
            (
                "a-.example",
                "the label 'a-' must not start or end with '-'",
            ),
            (
                "user@a.example",
                "the label 'user@a' may hold only letters, digits and '-'",
            ),
            (
                "bad domain",
                "the label 'bad domain' may hold only letters, digits and '-'",
            ),
        ];
        for (text, reason) in cases {
            let err = Domain::parse(text).unwrap_err();
            assert_eq!(err.reason().to_string(), reason, "{text}");
            assert_eq!(err.value(), text);
            assert_eq!(
                err.to_string(),
                format!("invalid domain '{text}': {reason}")
            );
        }
    }

    #[test]
    fn label_lengths_rfc_1035_2_3_4() {
        let ok = format!("{}.example", "a".repeat(63));
        assert!(Domain::parse(&ok).is_ok());
        let long = format!("{}.example", "a".repeat(64));
        assert_eq!(
            Domain::parse(&long).unwrap_err().reason(),
            &Reason::LabelTooLong("a".repeat(64))
        );
        // 4 labels of 63 plus 3 dots is 255 characters: over 253.
        let name = vec!["a".repeat(63); 4].join(".");
        assert_eq!(
            Domain::parse(&name).unwrap_err().reason(),
            &Reason::DomainTooLong
        );
    }

    #[test]
    fn only_ascii_a_labels_are_accepted() {
        assert!(Domain::parse("xn--bcher-kva.example").is_ok());
        assert_eq!(
            Domain::parse("bücher.example").unwrap_err().reason(),
            &Reason::LabelNotLdh("bücher".into())
        );
    }

    #[test]
    fn surrounding_space_is_refused_not_trimmed() {
        assert!(Domain::parse(" a.example").is_err());
        assert!(Domain::parse("a.example ").is_err());
    }
}
