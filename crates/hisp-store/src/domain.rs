//! `Domain`: a DNS domain name, checked and lower-cased at the edge.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

/// A domain name: checked (LDH labels, RFC 1035 §2.3.1 lengths) and
/// lower-cased, without a trailing dot. Two `Domain`s are equal exactly when
/// DNS would treat them as the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(pub(crate) String);

impl Domain {
    /// Parses and normalises a domain name; the error says which rule it breaks.
    pub fn parse(text: &str) -> Result<Domain, StoreError> {
        check(text)
            .map(Domain)
            .map_err(|reason| StoreError::Invalid {
                what: "domain",
                value: text.to_string(),
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
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

/// Checks a domain name and returns it lower-cased without the trailing dot,
/// or the reason it is refused.
pub(crate) fn check(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.is_empty() {
        return Err("the domain is empty".into());
    }
    // RFC 1035 §2.3.4: 255 octets on the wire, 253 characters in text.
    if name.len() > 253 {
        return Err("the domain is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the domain has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("the label '{label}' is longer than 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "the label '{label}' may hold only letters, digits and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "the label '{label}' must not start or end with '-'"
            ));
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lower_cased_without_trailing_dot() {
        let d = Domain::parse("Direct.Example.ORG.").unwrap();
        assert_eq!(d.as_str(), "direct.example.org");
        assert_eq!(d, Domain::parse("direct.example.org").unwrap());
    }

    #[test]
    fn bad_domains_say_why() {
        let cases = [
            ("", "the domain is empty"),
            ("a..b", "the domain has an empty label"),
            (
                "a_b.example",
                "the label 'a_b' may hold only letters, digits and '-'",
            ),
            (
                "-a.example",
                "the label '-a' must not start or end with '-'",
            ),
            (
                "user@a.example",
                "the label 'user@a' may hold only letters, digits and '-'",
            ),
        ];
        for (text, reason) in cases {
            match Domain::parse(text) {
                Err(StoreError::Invalid { reason: r, .. }) => assert_eq!(r, reason, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(Domain::parse(&format!("{}.example", "a".repeat(64))).is_err());
    }
}
