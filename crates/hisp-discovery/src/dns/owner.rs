//! DNS owner names at which Direct certificates are published.
//!
//! Certificate Discovery for Direct §3 (after RFC 4398 §3.3): an
//! address-bound certificate for `user@domain` is a CERT record at
//! `user.domain` (the `@` replaced by a dot); a domain-bound certificate is
//! a CERT record at `domain`.

use hisp_address::{DirectAddress, Domain};
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
/// The address must parse as a [`DirectAddress`] (unquoted dot-atom local
/// part, LDH domain). On top of that, since the local part becomes DNS
/// labels here, each of its dot-separated parts must be a DNS label of at
/// most 63 octets holding no character a zone file must escape, and the whole
/// owner name at most 253 characters. The domain is lower-cased; the local
/// part keeps its letters (DNS compares names without regard to ASCII case
/// anyway). A dot in the local part simply becomes a label boundary, as the
/// Direct Certificate Discovery Tool does.
pub fn owner_name_for_address(address: &str) -> Result<String, OwnerNameError> {
    let invalid = |reason: &str| OwnerNameError::InvalidAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    // The DNS-specific refusals come first, so they name the DNS rule rather
    // than the generic dot-atom one.
    if let Some((local, _)) = address.rsplit_once('@') {
        if local.starts_with('"') {
            return Err(invalid("a quoted local part has no DNS owner name"));
        }
        if !local.is_empty() {
            for label in local.split('.') {
                check_label(label).map_err(|reason| invalid(&reason))?;
            }
        }
    }
    let parsed = DirectAddress::parse(address).map_err(|e| invalid(&e.reason().to_string()))?;
    let name = format!("{}.{}", parsed.local_part(), parsed.domain());
    if name.len() > 253 {
        return Err(invalid(
            "the owner name would be longer than 253 characters",
        ));
    }
    Ok(name)
}

/// The owner name of domain-bound CERT records for `domain`: the domain as
/// [`Domain::parse`] normalises it, lower-cased and without a trailing dot.
pub fn owner_name_for_domain(domain: &str) -> Result<String, OwnerNameError> {
    Domain::parse(domain)
        .map(|d| d.to_string())
        .map_err(|e| OwnerNameError::InvalidDomain {
            domain: domain.to_string(),
            reason: e.reason().to_string(),
        })
}

/// A label of the local part must be 1-63 octets (RFC 1035 §2.3.4) and,
/// since hisp writes these names into zone files and queries, hold no
/// character that needs escaping there.
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

    #[test]
    fn address_follows_the_shared_direct_address_rules() {
        for (address, reason) in [
            // Not an RFC 5321 dot-atom: once accepted here, refused by the store.
            ("a,b@example.org", "the local part must be dot-separated"),
            ("a@exa_mple.org", "may hold only letters, digits and '-'"),
            ("a@-x.org", "must not start or end with '-'"),
        ] {
            let err = owner_name_for_address(address).unwrap_err().to_string();
            assert!(err.contains(reason), "{address}: {err}");
        }
        let long = format!("{}@example.org", "a".repeat(65));
        let err = owner_name_for_address(&long).unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
    }

    #[test]
    fn local_part_characters_a_zone_file_must_escape_are_refused() {
        // '$' is legal in a dot-atom but starts a zone-file directive.
        let err = owner_name_for_address("a$b@example.org")
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds '$'"), "{err}");
    }

    #[test]
    fn domain_follows_the_shared_domain_rules() {
        for (domain, reason) in [
            ("", "the domain is empty"),
            ("a..example", "the domain has an empty label"),
            ("_tcp.example", "may hold only letters, digits and '-'"),
        ] {
            let err = owner_name_for_domain(domain).unwrap_err().to_string();
            assert!(err.contains(reason), "{domain:?}: {err}");
        }
    }
}
