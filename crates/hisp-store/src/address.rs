//! `DirectAddress`: a Direct address, parsed at the edge.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::domain::{check as check_domain, Domain};
use crate::error::StoreError;

/// A Direct address `local@domain`.
///
/// The domain is lower-cased; the local part is kept as given (it is what the
/// user typed and what certificates carry) but compared without regard to
/// ASCII letter case, as Direct receivers must (Applicability Statement 1.3
/// §4.1 compares the rfc822Name binding case-insensitively), so
/// `Alice@A.example` and `alice@a.example` are the same address.
#[derive(Debug, Clone)]
pub struct DirectAddress {
    local: String,
    domain: Domain,
}

impl DirectAddress {
    /// Parses an address. The local part must be an unquoted dot-atom
    /// (RFC 5321 §4.1.2) of at most 64 characters; quoted local parts are legal
    /// e-mail but no HISP issues certificates for them.
    pub fn parse(text: &str) -> Result<DirectAddress, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            what: "address",
            value: text.to_string(),
            reason,
        };
        let (local, domain) = text
            .rsplit_once('@')
            .ok_or_else(|| invalid("it has no '@'".into()))?;
        if local.is_empty() {
            return Err(invalid("the local part before '@' is empty".into()));
        }
        // RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
        if local.len() > 64 {
            return Err(invalid(
                "the local part is longer than 64 characters".into(),
            ));
        }
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if !local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext))
        {
            return Err(invalid(
                "the local part must be dot-separated letters, digits and !#$%&'*+-/=?^_`{|}~"
                    .into(),
            ));
        }
        let domain = check_domain(domain).map_err(invalid)?;
        Ok(DirectAddress {
            local: local.to_string(),
            domain: Domain(domain),
        })
    }

    /// The local part, as given.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl PartialEq for DirectAddress {
    fn eq(&self, other: &Self) -> bool {
        self.local.eq_ignore_ascii_case(&other.local) && self.domain == other.domain
    }
}

impl Eq for DirectAddress {}

impl Hash for DirectAddress {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: the local part is hashed lower-cased.
        self.local.to_ascii_lowercase().hash(state);
        self.domain.hash(state);
    }
}

impl fmt::Display for DirectAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl FromStr for DirectAddress {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DirectAddress::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_lower_cased_local_part_kept() {
        let a = DirectAddress::parse("Alice.Smith@Direct.A.Example").unwrap();
        assert_eq!(a.to_string(), "Alice.Smith@direct.a.example");
        assert_eq!(a.local_part(), "Alice.Smith");
        assert_eq!(a.domain().as_str(), "direct.a.example");
    }

    #[test]
    fn local_part_compared_case_insensitively_applicability_statement_4_1() {
        let a = DirectAddress::parse("Alice@a.example").unwrap();
        let b = DirectAddress::parse("aLICE@A.EXAMPLE").unwrap();
        assert_eq!(a, b);
        let mut set = std::collections::HashSet::new();
        set.insert(a);
        assert!(set.contains(&b));
        assert_ne!(b, DirectAddress::parse("alice2@a.example").unwrap());
    }

    #[test]
    fn bad_addresses_say_why() {
        let cases = [
            ("alice", "it has no '@'"),
            ("@a.example", "the local part before '@' is empty"),
            (
                "a..b@a.example",
                "the local part must be dot-separated letters, digits and !#$%&'*+-/=?^_`{|}~",
            ),
            ("alice@", "the domain is empty"),
            (
                "alice@a_b",
                "the label 'a_b' may hold only letters, digits and '-'",
            ),
        ];
        for (text, reason) in cases {
            match DirectAddress::parse(text) {
                Err(StoreError::Invalid { reason: r, .. }) => assert_eq!(r, reason, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
