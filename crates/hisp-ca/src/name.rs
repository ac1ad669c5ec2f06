//! What a certificate is bound to: a Direct address or a whole domain.

use std::fmt;

use hisp_address::{DirectAddress, Domain};

use crate::error::CaError;

/// The one thing an end-entity certificate is issued for (Applicability
/// Statement 1.3 §4.1: address-bound or organizationally (domain-) bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// A single Direct address, put in an rfc822Name subjectAltName.
    Address(String),
    /// A whole domain, put in a dNSName subjectAltName.
    Domain(String),
}

impl Binding {
    /// Checks the address or domain and returns it normalised: the domain
    /// lower-cased (DNS names compare case-insensitively), the local part as given.
    ///
    /// The rules are those of [`DirectAddress::parse`] and [`Domain::parse`],
    /// so the CA issues for exactly the names the store accepts.
    pub fn normalized(&self) -> Result<Binding, CaError> {
        match self {
            Binding::Address(address) => DirectAddress::parse(address)
                .map(|a| Binding::Address(a.to_string()))
                .map_err(|e| CaError::InvalidAddress {
                    address: address.clone(),
                    reason: e.reason().to_string(),
                }),
            Binding::Domain(domain) => Domain::parse(domain)
                .map(|d| Binding::Domain(d.to_string()))
                .map_err(|e| CaError::InvalidDomain {
                    domain: domain.clone(),
                    reason: e.reason().to_string(),
                }),
        }
    }

    /// The address or domain itself.
    pub fn value(&self) -> &str {
        match self {
            Binding::Address(v) | Binding::Domain(v) => v,
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Address(a) => write!(f, "address {a}"),
            Binding::Domain(d) => write!(f, "domain {d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_domain_is_lower_cased_and_local_part_kept() {
        let b = Binding::Address("John.Doe@Direct.Example.ORG".into());
        assert_eq!(
            b.normalized().unwrap(),
            Binding::Address("John.Doe@direct.example.org".into())
        );
    }

    #[test]
    fn domain_trailing_dot_is_dropped() {
        let b = Binding::Domain("Direct.Example.org.".into());
        assert_eq!(
            b.normalized().unwrap(),
            Binding::Domain("direct.example.org".into())
        );
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        for (address, reason) in [
            ("nobody", "it has no '@'"),
            ("@example.org", "the local part before '@' is empty"),
            ("a..b@example.org", "the local part must be"),
            ("a b@example.org", "the local part must be"),
            ("a@", "the domain is empty"),
            ("a@exa_mple.org", "may hold only letters"),
            ("a@-x.org", "must not start or end with '-'"),
            ("a@x..org", "empty label"),
        ] {
            let err = Binding::Address(address.into()).normalized().unwrap_err();
            let text = err.to_string();
            assert!(text.contains(address), "{text}");
            assert!(text.contains(reason), "{address}: {text}");
        }
    }

    #[test]
    fn bad_domain_is_refused() {
        let err = Binding::Domain("bad domain".into())
            .normalized()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid domain 'bad domain': the label 'bad domain' may hold only letters, digits and '-'"
        );
    }
}
