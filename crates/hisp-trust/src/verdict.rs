//! The one judgement of a certificate for a use: path to an anchor,
//! validity, key usage, revocation and address binding, with a reason an
//! administrator can act on.

use openssl::x509::X509;

use crate::anchors::Anchors;
use crate::binding::{binding, Binding};
use crate::describe::{cert_id, name_line};
use crate::failure::TrustFailure;
use crate::path::{validate_path, Intermediates, PathFailure, ValidPath};
use crate::remote::Remote;
use crate::revocation::{check_revocation, RevocationMode, RevocationStatus};
use crate::usage::{check_key_usage, KeyUsageCheck, Purpose};

/// Everything a judgement needs besides the network.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The certificate to judge (a signer's or a recipient's).
    pub cert: &'a X509,
    /// What it is about to be used for.
    pub purpose: Purpose,
    /// The Direct address it must belong to (`user@domain`; a bare domain
    /// admits only domain-bound certificates).
    pub expected: &'a str,
    /// The anchors in force for this use (the local domain's incoming
    /// anchors for a signer, outgoing anchors for a recipient), as they are
    /// now: a caller that keeps them rebuilds them when they change.
    pub anchors: &'a Anchors,
    /// Intermediates from the message and local storage.
    pub intermediates: Intermediates<'a>,
    /// The validation time, Unix seconds.
    pub at: i64,
    /// What to do when a CRL cannot be had.
    pub revocation: RevocationMode,
}

/// The outcome of a judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The certificate may be used.
    pub usable: bool,
    /// Not usable now, but asking again later may change that (a CRL or a
    /// caIssuers URL could not be reached): 4xx at SMTP, not 5xx.
    pub temporary: bool,
    /// How the certificate is bound to the expected address.
    pub binding: Binding,
    /// Every check that failed, in the order they ran (binding, key usage,
    /// path, revocation); empty when usable.
    pub failures: Vec<TrustFailure>,
    /// Why: which certificate (subject, serial), which anchors and which
    /// check failed, or what made it usable and what was not checked.
    pub reason: String,
}

/// Judges `q.cert` for `q.purpose` by `q.expected`, fetching AIA issuers and
/// CRLs through `remote`. Nothing is remembered between calls but downloads:
/// a changed anchor set is in force for the next call.
///
/// Every check that can be made without the network is made and every
/// failure is named; revocation is checked only for a certificate that
/// passed the others.
pub fn judge(q: &Question<'_>, remote: &Remote) -> Verdict {
    let id = cert_id(q.cert);
    let bound = binding(q.cert, q.expected);
    let mut failures = Vec::new();
    let mut kinds = Vec::new();
    let mut notes = Vec::new();

    // Applicability Statement 1.3 §4.1: the certificate MUST be bound to
    // the address, or to its domain.
    if bound == Binding::None {
        kinds.push(TrustFailure::Unbound);
        failures.push(format!(
            "{id} is not bound to {} (no subjectAltName rfc822Name or dNSName matches)",
            q.expected
        ));
    }

    // RFC 5280 §4.2.1.3: a key is used only for what its keyUsage allows.
    match check_key_usage(q.cert, q.purpose) {
        KeyUsageCheck::Allowed => {}
        KeyUsageCheck::Unrestricted => notes.push(format!(
            "{id} has no keyUsage extension: unrestricted (RFC 5280 §4.2.1.3)"
        )),
        KeyUsageCheck::Lacks(bit) => {
            kinds.push(TrustFailure::KeyUsage);
            failures.push(format!(
                "{id}: key usage lacks {bit}, needed for {}",
                q.purpose
            ))
        }
    }

    // RFC 5280 §6.1: a valid path to one of the anchors at the given time.
    let path = match validate_path(q.cert, q.anchors, &q.intermediates, q.at, remote) {
        Ok(path) => Some(path),
        Err(failure) => {
            let temporary = failure.is_temporary() && failures.is_empty();
            kinds.push(failure.failure());
            // Every refusal names the certificate it is about.
            failures.push(match failure {
                PathFailure::Expired { .. } | PathFailure::NotYetValid { .. } => {
                    failure.to_string()
                }
                _ => format!("{id}: {failure}"),
            });
            if temporary {
                return verdict(false, true, bound, kinds, failures.join("; "));
            }
            None
        }
    };
    let Some(path) = path.filter(|_| failures.is_empty()) else {
        return verdict(false, false, bound, kinds, failures.join("; "));
    };

    // RFC 5280 §6.3: no certificate of the path may be revoked.
    match check_revocation(&path.chain, q.revocation, q.at, remote) {
        RevocationStatus::Revoked { detail } => {
            verdict(false, false, bound, vec![TrustFailure::Revoked], detail)
        }
        RevocationStatus::Unavailable { detail } => verdict(
            false,
            true,
            bound,
            vec![TrustFailure::RevocationUnavailable],
            format!("{detail} (temporary)"),
        ),
        RevocationStatus::Good { notes: crl_notes } => {
            notes.extend(crl_notes);
            let mut reason = format!(
                "{id} is usable for {} by {}: {}-bound; {}",
                q.purpose,
                q.expected,
                bound,
                describe_path(&path)
            );
            for note in notes {
                reason.push_str("; ");
                reason.push_str(&note);
            }
            verdict(true, false, bound, Vec::new(), reason)
        }
    }
}

fn verdict(
    usable: bool,
    temporary: bool,
    binding: Binding,
    failures: Vec<TrustFailure>,
    reason: String,
) -> Verdict {
    tracing::debug!(usable, temporary, %binding, ?failures, %reason, "certificate judged");
    Verdict {
        usable,
        temporary,
        binding,
        failures,
        reason,
    }
}

fn describe_path(path: &ValidPath) -> String {
    let mut text = String::from("path ");
    let n = path.chain.len();
    for (i, c) in path.chain.iter().enumerate() {
        if i + 1 == n {
            text.push_str(&format!("anchor {}", cert_id(c)));
        } else {
            text.push_str(&format!("'{}' -> ", name_line(c.subject_name())));
        }
    }
    if !path.aia_used.is_empty() {
        text.push_str(&format!(
            " (issuers from caIssuers {})",
            path.aia_used.join(", ")
        ));
    }
    text
}
