//! Trust anchors per local domain, each for incoming mail, outgoing mail or both.
//!
//! An [`AnchorSet`] is a plain value: whoever owns the anchors (the store)
//! builds or updates it, and every judgement reads it afresh, so a change is
//! in force for the next call. Nothing here remembers a verdict.

use std::fmt;
use std::str::FromStr;

use openssl::hash::MessageDigest;
use openssl::x509::{X509Ref, X509};

use crate::describe::cert_id;
use crate::error::TrustError;

/// Which mail an anchor is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Signers of mail received for the domain.
    Incoming,
    /// Recipients' certificates for mail the domain sends.
    Outgoing,
    /// Both.
    Both,
}

impl Direction {
    /// Whether an anchor marked `self` serves `wanted`. Asking for `Both`
    /// matches every anchor.
    pub fn covers(self, wanted: Direction) -> bool {
        self == Direction::Both || wanted == Direction::Both || self == wanted
    }

    /// `"in"`, `"out"` or `"both"`, as the CLI takes and prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
            Direction::Both => "both",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not `in`, `out` or `both`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown anchor direction '{0}': use in, out or both")]
pub struct UnknownDirection(pub String);

impl FromStr for Direction {
    type Err = UnknownDirection;

    /// Reads `in`/`incoming`, `out`/`outgoing` or `both`, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "in" | "incoming" => Ok(Direction::Incoming),
            "out" | "outgoing" => Ok(Direction::Outgoing),
            "both" => Ok(Direction::Both),
            _ => Err(UnknownDirection(s.to_string())),
        }
    }
}

/// One trust anchor: a CA certificate trusted by a local domain.
#[derive(Clone)]
pub struct Anchor {
    /// The local domain, lower-case, without a trailing dot.
    pub domain: String,
    /// Which mail it is trusted for.
    pub direction: Direction,
    /// The CA certificate (a root or an intermediate).
    pub cert: X509,
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anchor")
            .field("domain", &self.domain)
            .field("direction", &self.direction)
            .field("cert", &cert_id(&self.cert))
            .finish()
    }
}

impl Anchor {
    /// An anchor for `domain` (normalised: lower-cased, trailing dot dropped).
    pub fn new(domain: &str, direction: Direction, cert: X509) -> Self {
        Anchor {
            domain: normalize_domain(domain),
            direction,
            cert,
        }
    }

    /// The SHA-256 fingerprint of the certificate, lower-case hex: how an
    /// anchor is named for removal.
    pub fn fingerprint(&self) -> Result<String, TrustError> {
        fingerprint(&self.cert)
    }
}

/// The SHA-256 fingerprint of a certificate's DER, lower-case hex.
pub fn fingerprint(cert: &X509Ref) -> Result<String, TrustError> {
    let digest = cert
        .digest(MessageDigest::sha256())
        .map_err(TrustError::crypto("hashing a certificate"))?;
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Lower-cases a domain and drops a trailing dot, so that lookups match
/// the way DNS compares names.
pub fn normalize_domain(domain: &str) -> String {
    let d = domain.trim();
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

/// The anchors of every local domain.
#[derive(Debug, Clone, Default)]
pub struct AnchorSet {
    anchors: Vec<Anchor>,
}

impl AnchorSet {
    /// An empty set: nothing is trusted.
    pub fn new() -> Self {
        AnchorSet::default()
    }

    /// Adds an anchor. Adding the same certificate again for the same
    /// domain replaces the earlier entry (and so its direction).
    pub fn add(&mut self, anchor: Anchor) {
        let same = |a: &Anchor| a.domain == anchor.domain && a.cert == anchor.cert;
        self.anchors.retain(|a| !same(a));
        self.anchors.push(anchor);
    }

    /// Removes the anchor of `domain` whose SHA-256 fingerprint is
    /// `fingerprint` (hex, any case, colons allowed). Returns whether one was removed.
    pub fn remove(&mut self, domain: &str, fingerprint_hex: &str) -> bool {
        let domain = normalize_domain(domain);
        let wanted: String = fingerprint_hex
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        let before = self.anchors.len();
        self.anchors
            .retain(|a| !(a.domain == domain && fingerprint(&a.cert).is_ok_and(|f| f == wanted)));
        self.anchors.len() != before
    }

    /// Removes every anchor of `domain`; returns how many there were.
    pub fn remove_domain(&mut self, domain: &str) -> usize {
        let domain = normalize_domain(domain);
        let before = self.anchors.len();
        self.anchors.retain(|a| a.domain != domain);
        before - self.anchors.len()
    }

    /// Every anchor, in the order added.
    pub fn all(&self) -> &[Anchor] {
        &self.anchors
    }

    /// The anchors of `domain` that serve `direction`.
    pub fn for_domain(&self, domain: &str, direction: Direction) -> Vec<&Anchor> {
        let domain = normalize_domain(domain);
        self.anchors
            .iter()
            .filter(|a| a.domain == domain && a.direction.covers(direction))
            .collect()
    }

    /// The certificates trusted for mail received by `domain` (anchors
    /// marked incoming or both).
    pub fn incoming(&self, domain: &str) -> Vec<X509> {
        self.certs(domain, Direction::Incoming)
    }

    /// The certificates trusted for mail sent from `domain` (anchors marked
    /// outgoing or both).
    pub fn outgoing(&self, domain: &str) -> Vec<X509> {
        self.certs(domain, Direction::Outgoing)
    }

    fn certs(&self, domain: &str, direction: Direction) -> Vec<X509> {
        self.for_domain(domain, direction)
            .into_iter()
            .map(|a| a.cert.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_covers_each_direction_and_each_covers_only_itself() {
        assert!(Direction::Both.covers(Direction::Incoming));
        assert!(Direction::Both.covers(Direction::Outgoing));
        assert!(Direction::Incoming.covers(Direction::Incoming));
        assert!(!Direction::Incoming.covers(Direction::Outgoing));
        assert!(!Direction::Outgoing.covers(Direction::Incoming));
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            normalize_domain(" Direct.Example.ORG. "),
            "direct.example.org"
        );
    }
}
