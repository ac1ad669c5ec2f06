//! Why a certificate is not usable, as a value: one variant per check of
//! [`judge`](crate::judge), so callers (quarantine, SMTP replies, tracking)
//! decide by the check that failed, never by the wording of a reason.

use std::fmt;

/// One check a certificate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrustFailure {
    /// Not bound to the expected address or its domain (Applicability
    /// Statement 1.3 §4.1).
    Unbound,
    /// Its keyUsage lacks the bit the purpose needs (RFC 5280 §4.2.1.3).
    KeyUsage,
    /// A certificate of the path had expired at the validation time
    /// (RFC 5280 §6.1.3 (a)(2)).
    Expired,
    /// A certificate of the path was not yet valid at the validation time.
    NotYetValid,
    /// No anchor is configured for this use.
    NoAnchors,
    /// No path reaches an anchor: an issuer is missing, or the path ends at
    /// a self-signed certificate that is not an anchor.
    NoPath,
    /// A path was built but another RFC 5280 §6.1 check failed (signature,
    /// basicConstraints, path length, key strength, unknown critical
    /// extension).
    InvalidPath,
    /// An issuer could be fetched from a caIssuers URL that did not answer:
    /// asking again later may find a path.
    IssuerUnavailable,
    /// A certificate of the path is revoked (RFC 5280 §6.3).
    Revoked,
    /// A CRL could not be had and revocation is hard-fail.
    RevocationUnavailable,
    /// The validation itself could not run (OpenSSL failed).
    Internal,
}

impl TrustFailure {
    /// Every failure.
    pub const ALL: [TrustFailure; 11] = [
        TrustFailure::Unbound,
        TrustFailure::KeyUsage,
        TrustFailure::Expired,
        TrustFailure::NotYetValid,
        TrustFailure::NoAnchors,
        TrustFailure::NoPath,
        TrustFailure::InvalidPath,
        TrustFailure::IssuerUnavailable,
        TrustFailure::Revoked,
        TrustFailure::RevocationUnavailable,
        TrustFailure::Internal,
    ];

    /// A stable code for scripts, logs and stored records.
    pub fn code(self) -> &'static str {
        match self {
            TrustFailure::Unbound => "unbound",
            TrustFailure::KeyUsage => "key-usage",
            TrustFailure::Expired => "expired",
            TrustFailure::NotYetValid => "not-yet-valid",
            TrustFailure::NoAnchors => "no-anchors",
            TrustFailure::NoPath => "no-path",
            TrustFailure::InvalidPath => "invalid-path",
            TrustFailure::IssuerUnavailable => "issuer-unavailable",
            TrustFailure::Revoked => "revoked",
            TrustFailure::RevocationUnavailable => "revocation-unavailable",
            TrustFailure::Internal => "internal",
        }
    }

    /// The failure a code names.
    pub fn from_code(code: &str) -> Option<TrustFailure> {
        TrustFailure::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Whether asking again later may give another answer.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            TrustFailure::IssuerUnavailable
                | TrustFailure::RevocationUnavailable
                | TrustFailure::Internal
        )
    }

    /// Whether the certificate (or one of its path) is outside its
    /// validity period at the validation time.
    pub fn is_validity(self) -> bool {
        matches!(self, TrustFailure::Expired | TrustFailure::NotYetValid)
    }
}

impl fmt::Display for TrustFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_to_its_failure() {
        for failure in TrustFailure::ALL {
            assert_eq!(TrustFailure::from_code(failure.code()), Some(failure));
        }
        assert_eq!(TrustFailure::from_code("untrusted"), None);
    }

    #[test]
    fn only_unreachable_sources_are_temporary() {
        let temporary: Vec<_> = TrustFailure::ALL
            .into_iter()
            .filter(|f| f.is_temporary())
            .collect();
        assert_eq!(
            temporary,
            [
                TrustFailure::IssuerUnavailable,
                TrustFailure::RevocationUnavailable,
                TrustFailure::Internal
            ]
        );
    }
}
