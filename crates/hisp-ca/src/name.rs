//! What a certificate is bound to: a Direct address or a whole domain.

use std::fmt;

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
    pub fn normalized(&self) -> Result<Binding, CaError> {
        match self {
            Binding::Address(address) => normalize_address(address).map(Binding::Address),
            Binding::Domain(domain) => {
                normalize_domain(domain)
                    .map(Binding::Domain)
                    .map_err(|reason| CaError::InvalidDomain {
                        domain: domain.clone(),
                        reason,
                    })
            }
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

fn normalize_address(address: &str) -> Result<String, CaError> {
    let invalid = |reason: &str| CaError::InvalidAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| invalid("it has no '@'"))?;
    if local.is_empty() {
        return Err(invalid("the local part before '@' is empty"));
    }
    if local.len() > 64 {
        return Err(invalid("the local part is longer than 64 characters"));
    }
    // RFC 5321 §4.1.2 dot-atom: the characters an unquoted local part may hold.
    // Quoted local parts are legal but no HISP issues certificates for them.
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    {
        return Err(invalid(
            "the local part must be dot-separated letters, digits and !#$%&'*+-/=?^_`{|}~",
        ));
    }
    let domain = normalize_domain(domain).map_err(|reason| invalid(&reason))?;
    Ok(format!("{local}@{domain}"))
}

fn normalize_domain(domain: &str) -> Result<String, String> {
    let domain = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    if domain.is_empty() {
        return Err("the domain is empty".into());
    }
    if domain.len() > 253 {
        return Err("the domain is longer than 253 characters".into());
    }
    for label in domain.split('.') {
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
    Ok(domain)
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
