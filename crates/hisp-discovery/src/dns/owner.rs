//! DNS owner names at which Direct certificates are published.
//!
//! Certificate Discovery for Direct §3 (after RFC 4398 §3.3): an
//! address-bound certificate for `user@domain` is a CERT record at
//! `user.domain` (the `@` replaced by a dot); a domain-bound certificate is
//! a CERT record at `domain`.

use thiserror::Error;

/// Why an address or domain has no DNS owner name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OwnerNameError {
    /// The address is not `local@domain`.
    #[error("'{address}' is not a Direct address: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The domain (or the owner name built from it) is not a DNS name.
    #[error("'{domain}' is not a DNS domain name: {reason}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The owner name of address-bound CERT records for `address`:
/// `user@Example.ORG` gives `user.example.org` (no trailing dot).
///
/// The domain is lower-cased; the local part keeps its letters (DNS compares
/// names without regard to ASCII case anyway). A dot in the local part simply
/// becomes a label boundary, as the Direct Certificate Discovery Tool does.
pub fn owner_name_for_address(address: &str) -> Result<String, OwnerNameError> {
    let invalid = |reason: &str| OwnerNameError::InvalidAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| invalid("it has no '@'"))?;
    if local.is_empty() {
        return Err(invalid("the local part before '@' is empty"));
    }
    if local.starts_with('"') {
        return Err(invalid("a quoted local part has no DNS owner name"));
    }
    for label in local.split('.') {
        check_label(label).map_err(|reason| invalid(&reason))?;
    }
    let domain = owner_name_for_domain(domain).map_err(|e| match e {
        OwnerNameError::InvalidDomain { reason, .. } => invalid(&reason),
        other => other,
    })?;
    let name = format!("{local}.{domain}");
    if name.len() > 253 {
        return Err(invalid(
            "the owner name would be longer than 253 characters",
        ));
    }
    Ok(name)
}

/// The owner name of domain-bound CERT records for `domain`: the domain
/// lower-cased, without a trailing dot.
pub fn owner_name_for_domain(domain: &str) -> Result<String, OwnerNameError> {
    let invalid = |reason: String| OwnerNameError::InvalidDomain {
        domain: domain.to_string(),
        reason,
    };
    let name = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    if name.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if name.len() > 253 {
        return Err(invalid("it is longer than 253 characters".into()));
    }
    for label in name.split('.') {
        check_label(label).map_err(invalid)?;
    }
    Ok(name)
}

/// A label must be 1-63 octets (RFC 1035 §2.3.4) and, since hisp writes these
/// names into zone files and queries, hold no character that needs escaping.
fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label".into());
    }
    if label.len() > 63 {
        return Err(format!("the label '{label}' is longer than 63 characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '\\' | '"' | '(' | ')' | ';' | '@' | '$'))
    {
        return Err(format!("the label '{label}' holds '{c}'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_at_becomes_a_dot_certificate_discovery_3() {
        assert_eq!(
            owner_name_for_address("John.Doe@Direct.Example.ORG").unwrap(),
            "John.Doe.direct.example.org"
        );
    }

    #[test]
    fn domain_is_lower_cased_without_trailing_dot() {
        assert_eq!(
            owner_name_for_domain("Direct.Example.org.").unwrap(),
            "direct.example.org"
        );
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        for (address, reason) in [
            ("nobody", "no '@'"),
            ("@example.org", "empty"),
            ("a..b@example.org", "empty label"),
            ("\"a b\"@example.org", "quoted"),
            ("a;b@example.org", "holds ';'"),
            ("a@", "empty"),
        ] {
            let err = owner_name_for_address(address).unwrap_err().to_string();
            assert!(err.contains(reason), "{address}: {err}");
        }
    }
}
