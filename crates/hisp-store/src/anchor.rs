//! Trust anchors of local domains.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::cert::{CertInfo, Fingerprint, Serial};
use crate::error::StoreError;
use hisp_address::Domain;

/// Which mail an anchor (or bundle) is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Signers of incoming mail to the domain.
    Incoming,
    /// Recipients of outgoing mail from the domain.
    Outgoing,
    /// Both.
    Both,
}

impl Direction {
    /// `in`, `out` or `both`: the name in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
            Direction::Both => "both",
        }
    }

    /// Whether an anchor marked `self` is used for mail flowing `flow`.
    pub fn covers(self, flow: Flow) -> bool {
        matches!(
            (self, flow),
            (Direction::Both, _)
                | (Direction::Incoming, Flow::Incoming)
                | (Direction::Outgoing, Flow::Outgoing)
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "in" => Ok(Direction::Incoming),
            "out" => Ok(Direction::Outgoing),
            "both" => Ok(Direction::Both),
            other => Err(StoreError::Invalid {
                what: "direction",
                value: other.to_string(),
                reason: "use in, out or both".into(),
            }),
        }
    }
}

/// The way a message travels, relative to a local domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// From another HISP to the local domain: the signer is checked against
    /// the domain's incoming anchors.
    Incoming,
    /// From the local domain to another HISP: recipient certificates are
    /// checked against the domain's outgoing anchors.
    Outgoing,
}

/// The row id of an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnchorId(pub i64);

/// A certificate to be added as an anchor: checked to parse, its
/// fingerprint and subject read from it.
#[derive(Debug, Clone)]
pub struct NewAnchor {
    pub(crate) der: Vec<u8>,
    pub(crate) info: CertInfo,
}

impl NewAnchor {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<NewAnchor, StoreError> {
        Ok(NewAnchor {
            der: der.to_vec(),
            info: CertInfo::from_der(der)?,
        })
    }

    /// What was read from the certificate.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }
}

/// An anchor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorRecord {
    /// Row id.
    pub id: AnchorId,
    /// The local domain it belongs to.
    pub domain: Domain,
    /// Which mail it is trusted for.
    pub direction: Direction,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Subject, issuer, serial, fingerprint and validity. The SAN lists are
    /// not kept for anchors and come back empty.
    pub info: CertInfo,
    /// When it was added.
    pub added_at: OffsetDateTime,
}

/// How an administrator names an anchor to remove: its SHA-256 fingerprint,
/// or its serial number (refused when several anchors of the domain share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorSelector {
    /// The SHA-256 fingerprint.
    Fingerprint(Fingerprint),
    /// The serial number.
    Serial(Serial),
}

impl AnchorSelector {
    /// 64 hex digits (colons allowed) name a fingerprint; other hex names a
    /// serial (RFC 5280 §4.1.2.2 caps serials at 20 octets, 40 digits, so the
    /// two cannot be confused).
    pub fn parse(text: &str) -> Result<AnchorSelector, StoreError> {
        let digits = text.chars().filter(|&c| c != ':').count();
        if digits == 64 {
            Fingerprint::parse(text).map(AnchorSelector::Fingerprint)
        } else {
            Serial::parse(text).map(AnchorSelector::Serial)
        }
    }
}

impl fmt::Display for AnchorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorSelector::Fingerprint(fp) => write!(f, "with fingerprint {fp}"),
            AnchorSelector::Serial(s) => write!(f, "with serial {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_covers_flows() {
        assert!(Direction::Both.covers(Flow::Incoming));
        assert!(Direction::Both.covers(Flow::Outgoing));
        assert!(Direction::Incoming.covers(Flow::Incoming));
        assert!(!Direction::Incoming.covers(Flow::Outgoing));
        assert!(!Direction::Outgoing.covers(Flow::Incoming));
        assert_eq!("in".parse::<Direction>().unwrap(), Direction::Incoming);
        assert!("inbound".parse::<Direction>().is_err());
    }

    #[test]
    fn selector_tells_fingerprint_from_serial() {
        let fp = Fingerprint::of(b"x");
        assert_eq!(
            AnchorSelector::parse(&fp.to_string()).unwrap(),
            AnchorSelector::Fingerprint(fp)
        );
        assert_eq!(
            AnchorSelector::parse("0A:1B").unwrap(),
            AnchorSelector::Serial(Serial::parse("a1b").unwrap())
        );
    }
}
