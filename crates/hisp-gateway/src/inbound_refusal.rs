//! Why an inbound message is kept out of every mailbox, as a value: what
//! opening it found (a `hisp_smime` error), or what hisp-trust found about
//! its verified signers. The quarantine reason and the stable code of a
//! quarantine record are read from the value, never from the wording of a
//! reason.

use std::fmt;

use hisp_smime::{SmimeError, Step};
use hisp_store::QuarantineReason;
use hisp_trust::TrustFailure;

/// Why an inbound message is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRefusal {
    /// It could not be opened: not S/MIME, not for us, undecryptable,
    /// unsigned, a bad signature or digest, a refused algorithm or key.
    Open(SmimeError),
    /// Signed but not encrypted: Direct messages must be encrypted
    /// (Applicability Statement 1.3).
    NotEncrypted,
    /// The opened message has no single From address to bind the signer to
    /// (RFC 5322 §3.6; Applicability Statement 1.3 §4.1).
    NoFrom,
    /// No verified signer is trusted by the recipient domain's incoming
    /// anchors; the most telling failure of hisp-trust's judgements
    /// ([`InboundRefusal::of_signers`]).
    Signer(TrustFailure),
}

impl InboundRefusal {
    /// The refusal for signers that hisp-trust refused, from every failure
    /// of every signer's verdict: a path that is out of validity first, then
    /// one that reaches no anchor, then a missing address binding, then
    /// revocation, then key usage (the order in which the checks decided
    /// before hisp-trust alone judged signers). `None` when there is none.
    pub fn of_signers(failures: impl IntoIterator<Item = TrustFailure>) -> Option<InboundRefusal> {
        fn rank(f: TrustFailure) -> u8 {
            match f {
                TrustFailure::Expired | TrustFailure::NotYetValid => 0,
                TrustFailure::NoAnchors | TrustFailure::NoPath | TrustFailure::InvalidPath => 1,
                TrustFailure::Unbound => 2,
                TrustFailure::Revoked => 3,
                TrustFailure::KeyUsage => 4,
                TrustFailure::IssuerUnavailable
                | TrustFailure::RevocationUnavailable
                | TrustFailure::Internal => 5,
            }
        }
        failures
            .into_iter()
            .min_by_key(|f| rank(*f))
            .map(InboundRefusal::Signer)
    }

    /// The stable code of the refusal, first word of a quarantine record's
    /// detail: `hisp_smime`'s error code, `not-encrypted`, `no-from`,
    /// `expired-signer`, `unbound-signer` or `untrusted-signer`.
    pub fn code(&self) -> &'static str {
        match self {
            InboundRefusal::Open(e) => e.code(),
            InboundRefusal::NotEncrypted => "not-encrypted",
            InboundRefusal::NoFrom => "no-from",
            InboundRefusal::Signer(f) if f.is_validity() => "expired-signer",
            InboundRefusal::Signer(TrustFailure::Unbound) => "unbound-signer",
            InboundRefusal::Signer(_) => "untrusted-signer",
        }
    }

    /// The store's reason for the quarantine.
    pub fn quarantine_reason(&self) -> QuarantineReason {
        match self {
            InboundRefusal::Open(e) => match e {
                SmimeError::NotARecipient { .. }
                | SmimeError::BadCiphertext(_)
                | SmimeError::BadKeyMaterial(_)
                | SmimeError::Crypto { .. } => QuarantineReason::Undecryptable,
                SmimeError::DigestMismatch { .. } | SmimeError::BadSignature { .. } => {
                    QuarantineReason::Tampered
                }
                // A refused digest is found while verifying; a refused
                // cipher or key transport while decrypting.
                SmimeError::UnsupportedAlgorithm {
                    step: Step::Verify, ..
                } => QuarantineReason::DisallowedDigest,
                SmimeError::SignerCertificateMissing(_) | SmimeError::WeakKey { .. } => {
                    QuarantineReason::Untrusted
                }
                _ => QuarantineReason::Malformed,
            },
            InboundRefusal::NotEncrypted | InboundRefusal::NoFrom => QuarantineReason::Malformed,
            InboundRefusal::Signer(TrustFailure::Unbound) => QuarantineReason::Unbound,
            InboundRefusal::Signer(TrustFailure::Revoked) => QuarantineReason::Revoked,
            InboundRefusal::Signer(_) => QuarantineReason::Untrusted,
        }
    }
}

impl fmt::Display for InboundRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_codes_and_quarantine_reasons() {
        let cases = [
            (
                InboundRefusal::Open(SmimeError::NotARecipient {
                    recipients: String::new(),
                }),
                "not-a-recipient",
                QuarantineReason::Undecryptable,
            ),
            (
                InboundRefusal::Open(SmimeError::DigestMismatch {
                    signer: String::new(),
                }),
                "digest-mismatch",
                QuarantineReason::Tampered,
            ),
            (
                InboundRefusal::Open(SmimeError::UnsupportedAlgorithm {
                    step: Step::Verify,
                    what: "digest sha-1 is not allowed".into(),
                }),
                "unsupported-algorithm",
                QuarantineReason::DisallowedDigest,
            ),
            (
                InboundRefusal::Open(SmimeError::UnsupportedAlgorithm {
                    step: Step::Decrypt,
                    what: "content cipher 3DES is not allowed".into(),
                }),
                "unsupported-algorithm",
                QuarantineReason::Malformed,
            ),
            (
                InboundRefusal::Open(SmimeError::NotSmime(String::new())),
                "not-smime",
                QuarantineReason::Malformed,
            ),
            (
                InboundRefusal::NotEncrypted,
                "not-encrypted",
                QuarantineReason::Malformed,
            ),
            (
                InboundRefusal::NoFrom,
                "no-from",
                QuarantineReason::Malformed,
            ),
            (
                InboundRefusal::Signer(TrustFailure::Unbound),
                "unbound-signer",
                QuarantineReason::Unbound,
            ),
            (
                InboundRefusal::Signer(TrustFailure::NoPath),
                "untrusted-signer",
                QuarantineReason::Untrusted,
            ),
            (
                InboundRefusal::Signer(TrustFailure::Expired),
                "expired-signer",
                QuarantineReason::Untrusted,
            ),
            (
                InboundRefusal::Signer(TrustFailure::Revoked),
                "untrusted-signer",
                QuarantineReason::Revoked,
            ),
            (
                InboundRefusal::Signer(TrustFailure::KeyUsage),
                "untrusted-signer",
                QuarantineReason::Untrusted,
            ),
        ];
        for (refusal, code, reason) in cases {
            assert_eq!(refusal.code(), code, "{refusal:?}");
            assert_eq!(refusal.quarantine_reason(), reason, "{refusal:?}");
        }
    }

    #[test]
    fn the_most_telling_signer_failure_is_chosen() {
        use TrustFailure::*;
        let pick = |f: &[TrustFailure]| InboundRefusal::of_signers(f.iter().copied());
        assert_eq!(pick(&[]), None);
        assert_eq!(
            pick(&[Unbound, KeyUsage, Expired]),
            Some(InboundRefusal::Signer(Expired))
        );
        assert_eq!(
            pick(&[Unbound, NoPath]),
            Some(InboundRefusal::Signer(NoPath))
        );
        assert_eq!(
            pick(&[KeyUsage, Unbound]),
            Some(InboundRefusal::Signer(Unbound))
        );
        assert_eq!(
            pick(&[KeyUsage, Revoked]),
            Some(InboundRefusal::Signer(Revoked))
        );
    }
}
