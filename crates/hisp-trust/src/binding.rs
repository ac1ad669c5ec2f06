//! Address binding (Applicability Statement for Secure Health Transport 1.3
//! §4.1): whether a certificate belongs to a Direct address or its domain.

use std::fmt;

use hisp_address::{DirectAddress, Domain};
use openssl::x509::X509Ref;

/// What a certificate is bound to, relative to one expected address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A subjectAltName rfc822Name equals the address.
    Address,
    /// A subjectAltName dNSName equals the address's domain.
    Domain,
    /// Neither: the certificate does not belong to the address.
    None,
}

impl Binding {
    /// `"address"`, `"domain"` or `"none"`, as the CLI's JSON prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Address => "address",
            Binding::Domain => "domain",
            Binding::None => "none",
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Finds how `cert` is bound to `expected`, a Direct address `user@domain`
/// or a bare domain.
///
/// Applicability Statement 1.3 §4.1: an address-bound certificate MUST carry
/// the address in a subjectAltName rfc822Name, a domain-bound one the domain
/// in a subjectAltName dNSName. Both sides are parsed as [`DirectAddress`] or
/// [`Domain`] and compared as those types compare: without regard to letter
/// case (Direct receivers treat the local part case-insensitively too) or a
/// trailing dot. A name that does not parse binds nothing, on either side.
/// The legacy subject emailAddress attribute is not read: 1.3 dropped it. An
/// address binding wins when a certificate carries both. A bare-domain
/// `expected` can only be domain-bound.
pub fn binding(cert: &X509Ref, expected: &str) -> Binding {
    let expected = expected.trim();
    let (address, domain) = if expected.contains('@') {
        match DirectAddress::parse(expected) {
            Ok(address) => {
                let domain = address.domain().clone();
                (Some(address), domain)
            }
            Err(_) => return Binding::None,
        }
    } else {
        match Domain::parse(expected) {
            Ok(domain) => (None, domain),
            Err(_) => return Binding::None,
        }
    };
    let Some(names) = cert.subject_alt_names() else {
        return Binding::None;
    };
    let mut found = Binding::None;
    for name in &names {
        if let (Some(address), Some(email)) = (&address, name.email()) {
            if DirectAddress::parse(email.trim()).is_ok_and(|email| email == *address) {
                return Binding::Address;
            }
        }
        if let Some(dns) = name.dnsname() {
            if Domain::parse(dns.trim()).is_ok_and(|dns| dns == domain) {
                found = Binding::Domain;
            }
        }
    }
    found
}
