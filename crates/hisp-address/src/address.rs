//! `DirectAddress`: a Direct address, parsed at the edge.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::domain::{check as check_domain, checked, Domain};
use crate::error::{AddressError, Reason};

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
    /// e-mail but no HISP issues certificates for them. The domain follows
    /// [`Domain::parse`].
    pub fn parse(text: &str) -> Result<DirectAddress, AddressError> {
        let invalid = |reason: Reason| AddressError::InvalidAddress {
            address: text.to_string(),
            reason,
        };
        let (local, domain) = text.rsplit_once('@').ok_or(invalid(Reason::NoAt))?;
        if local.is_empty() {
            return Err(invalid(Reason::EmptyLocalPart));
        }
        // RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
        if local.len() > 64 {
            return Err(invalid(Reason::LocalPartTooLong));
        }
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if !local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext))
        {
            return Err(invalid(Reason::LocalPartNotDotAtom));
        }
        let domain = check_domain(domain).map_err(invalid)?;
        Ok(DirectAddress {
            local: local.to_string(),
            domain: checked(domain),
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
    type Err = AddressError;
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
    fn domain_trailing_dot_is_dropped() {
        let a = DirectAddress::parse("alice@A.Example.").unwrap();
        assert_eq!(a.to_string(), "alice@a.example");
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
        let dot_atom =
            "the local part must be dot-separated letters, digits and !#$%&'*+-/=?^_`{|}~";
        let cases = [
            ("alice", "it has no '@'"),
            ("@a.example", "the local part before '@' is empty"),
            ("a..b@a.example", dot_atom),
            (".a@a.example", dot_atom),
            ("a b@a.example", dot_atom),
            ("\"a b\"@a.example", dot_atom),
            ("a;b@a.example", dot_atom),
            ("alice@", "the domain is empty"),
            ("a@x..org", "the domain has an empty label"),
            (
                "alice@a_b",
                "the label 'a_b' may hold only letters, digits and '-'",
            ),
            ("a@-x.org", "the label '-x' must not start or end with '-'"),
        ];
        for (text, reason) in cases {
            let err = DirectAddress::parse(text).unwrap_err();
            assert_eq!(err.reason().to_string(), reason, "{text}");
            assert_eq!(
                err.to_string(),
                format!("invalid address '{text}': {reason}")
            );
        }
    }

    #[test]
    fn local_part_is_at_most_64_characters_rfc_5321_4_5_3_1_1() {
        assert!(DirectAddress::parse(&format!("{}@a.example", "a".repeat(64))).is_ok());
        assert_eq!(
            DirectAddress::parse(&format!("{}@a.example", "a".repeat(65)))
                .unwrap_err()
                .reason(),
            &Reason::LocalPartTooLong
        );
    }

    #[test]
    fn last_at_splits_the_address() {
        // "a@b@c.example": the local part "a@b" is not a dot-atom.
        assert_eq!(
            DirectAddress::parse("a@b@c.example").unwrap_err().reason(),
            &Reason::LocalPartNotDotAtom
        );
    }
}
