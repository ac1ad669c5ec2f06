//! Submission accounts: the portals and EHRs that relay mail over SMTP AUTH,
//! and the sender addresses each may use.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::error::StoreError;
use hisp_address::DirectAddress;
use hisp_address::Domain;

/// The name an account logs in with (the SMTP AUTH authentication
/// identity): 1 to 64 characters of ASCII letters, digits and `.-_@+`,
/// compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    /// Parses a user name.
    pub fn parse(text: &str) -> Result<UserName, StoreError> {
        let invalid = |reason: &str| StoreError::Invalid {
            what: "user name",
            value: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.len() > 64 {
            return Err(invalid("it is longer than 64 characters"));
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@+".contains(c))
        {
            return Err(invalid("use only letters, digits and .-_@+"));
        }
        Ok(UserName(text.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserName {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserName::parse(s)
    }
}

/// The row id of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// A sender address, or a whole local domain, an account may use as MAIL
/// FROM and From.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grant {
    /// One local address.
    Address(DirectAddress),
    /// Every address of a local domain, present and future.
    Domain(Domain),
}

impl Grant {
    /// Parses `user@domain` (one address) or `@domain` (the whole domain).
    pub fn parse(text: &str) -> Result<Grant, StoreError> {
        match text.strip_prefix('@') {
            Some(domain) => Ok(Grant::Domain(Domain::parse(domain)?)),
            None => Ok(Grant::Address(DirectAddress::parse(text)?)),
        }
    }

    /// Whether this grant lets its account send as `address`.
    pub fn covers(&self, address: &DirectAddress) -> bool {
        match self {
            Grant::Address(a) => a == address,
            Grant::Domain(d) => address.domain() == d,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::Address(a) => write!(f, "{a}"),
            Grant::Domain(d) => write!(f, "@{d}"),
        }
    }
}

impl FromStr for Grant {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Grant::parse(s)
    }
}

/// A submission account as stored. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: UserId,
    /// The login name.
    pub name: UserName,
    /// Whether mail this account submits asks for final delivery
    /// notification (Implementation Guide for Delivery Notification in
    /// Direct 1.0: the `X-DIRECT-FINAL-DESTINATION-DELIVERY` option), so that
    /// tracking waits for a dispatched MDN. True for new accounts.
    pub request_final_delivery: bool,
    /// What it may send as, in the order granted.
    pub grants: Vec<Grant>,
    /// When it was added.
    pub added_at: OffsetDateTime,
}

impl Account {
    /// Whether the account may use `address` as its sender (MAIL FROM and
    /// From): one of its grants covers it.
    pub fn may_send_as(&self, address: &DirectAddress) -> bool {
        self.grants.iter().any(|g| g.covers(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_grant_covers_every_address_of_the_domain_only() {
        let g = Grant::parse("@A.example").unwrap();
        assert_eq!(g.to_string(), "@a.example");
        assert!(g.covers(&DirectAddress::parse("x@a.example").unwrap()));
        assert!(!g.covers(&DirectAddress::parse("x@b.a.example").unwrap()));
        let one = Grant::parse("Alice@a.example").unwrap();
        assert!(one.covers(&DirectAddress::parse("alice@A.EXAMPLE").unwrap()));
        assert!(!one.covers(&DirectAddress::parse("bob@a.example").unwrap()));
    }

    #[test]
    fn user_names_say_what_is_wrong() {
        assert!(UserName::parse("portal-1@ehr").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
    }
}
