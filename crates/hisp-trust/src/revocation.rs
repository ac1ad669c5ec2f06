//! Revocation checking with CRLs (RFC 5280 §6.3) for every certificate of a
//! validated path except its anchor.
//!
//! Decisions where the standards leave room:
//! - A certificate without a CRL distribution point is accepted and the
//!   verdict notes it: RFC 5280 §4.2.1.13 makes the extension optional, and
//!   there is nowhere else to look (hisp does not do OCSP).
//! - Only http and https distribution points are fetched; a certificate
//!   with only ldap: points is treated like one without any, and noted.
//! - The first distribution point that yields a CRL which verifies decides;
//!   the others are tried only when one cannot be had.
//! - Delta CRLs, indirect CRLs and issuingDistributionPoint scoping are not
//!   read: a full CRL signed by the certificate's issuer is required.

use std::fmt;
use std::str::FromStr;

use openssl::x509::{CrlStatus, ReasonCode, X509KeyUsage, X509Ref, X509};

use crate::crl::{crl_urls, fetchable_crl_urls};
use crate::describe::{asn1_rfc3339, cert_id, name_line};
use crate::error::TrustError;
use crate::remote::Remote;

/// What to do when a CRL cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RevocationMode {
    /// The verdict is a temporary failure (4xx at SMTP): the default.
    #[default]
    HardFail,
    /// The failure is logged and the certificate accepted.
    SoftFail,
}

impl RevocationMode {
    /// `"hard-fail"` or `"soft-fail"`, as the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationMode::HardFail => "hard-fail",
            RevocationMode::SoftFail => "soft-fail",
        }
    }
}

impl fmt::Display for RevocationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not `hard-fail` or `soft-fail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown revocation mode '{0}': use hard-fail or soft-fail")]
pub struct UnknownRevocationMode(pub String);

impl FromStr for RevocationMode {
    type Err = UnknownRevocationMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hard-fail" => Ok(RevocationMode::HardFail),
            "soft-fail" => Ok(RevocationMode::SoftFail),
            _ => Err(UnknownRevocationMode(s.to_string())),
        }
    }
}

/// The revocation status of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationStatus {
    /// No certificate is revoked (as far as could be learnt; see `notes`).
    Good {
        /// What was checked and what was not: one line per certificate.
        notes: Vec<String>,
    },
    /// A certificate is revoked. This wins over an unavailable CRL for
    /// another certificate of the path.
    Revoked {
        /// `<cert> was revoked on <date> (<reason>) by CRL <url>`.
        detail: String,
    },
    /// Hard-fail and at least one CRL could not be had.
    Unavailable {
        /// One line per CRL that could not be had, with the cause.
        detail: String,
    },
}

/// Checks every certificate of `chain` (end-entity first, anchor last)
/// except the anchor against the CRLs of its distribution points, current
/// at `at`.
pub fn check_revocation(
    chain: &[X509],
    mode: RevocationMode,
    at: i64,
    remote: &Remote,
) -> RevocationStatus {
    let mut notes = Vec::new();
    let mut revoked = None;
    let mut unavailable = Vec::new();
    // RFC 5280 §6.3: revocation is checked for each certificate of the path;
    // the anchor is trusted as configured and not checked.
    for pair in chain.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        match check_one(cert, issuer, at, remote) {
            One::Good(note) => notes.push(note),
            One::Revoked(detail) => {
                revoked.get_or_insert(detail);
            }
            One::Unavailable(detail) => match mode {
                RevocationMode::HardFail => unavailable.push(detail),
                RevocationMode::SoftFail => {
                    tracing::warn!(cert = %cert_id(cert), cause = %detail, "revocation unknown; accepted (soft-fail)");
                    notes.push(format!("{detail}; accepted (soft-fail)"));
                }
            },
        }
    }
    if let Some(detail) = revoked {
        RevocationStatus::Revoked { detail }
    } else if !unavailable.is_empty() {
        for detail in &unavailable {
            tracing::warn!(cause = %detail, "revocation unknown; temporary failure (hard-fail)");
        }
        RevocationStatus::Unavailable {
            detail: unavailable.join("; "),
        }
    } else {
        RevocationStatus::Good { notes }
    }
}

enum One {
    Good(String),
    Revoked(String),
    Unavailable(String),
}

fn check_one(cert: &X509, issuer: &X509Ref, at: i64, remote: &Remote) -> One {
    let id = cert_id(cert);
    let urls = fetchable_crl_urls(cert);
    if urls.is_empty() {
        let all = crl_urls(cert);
        return One::Good(if all.is_empty() {
            format!("{id} has no CRL distribution point: revocation not checked")
        } else {
            format!(
                "{id} has no http CRL distribution point ({}): revocation not checked",
                all.join(", ")
            )
        });
    }
    let mut problems = Vec::new();
    for url in &urls {
        let crl = match remote.crls().get(remote.fetcher(), url, at) {
            Ok(crl) => crl,
            Err(TrustError::Fetch { cause, .. }) => {
                problems.push(format!("CRL {url} unreachable: {cause}"));
                continue;
            }
            Err(e) => {
                problems.push(format!("CRL {url} unusable: {e}"));
                continue;
            }
        };
        if let Err(problem) = crl_fits(&crl, cert, issuer, url) {
            problems.push(problem);
            continue;
        }
        return match crl.get_by_cert(cert) {
            CrlStatus::Revoked(entry) => {
                let reason = entry
                    .extension::<ReasonCode>()
                    .ok()
                    .flatten()
                    .and_then(|(_, code)| code.get_i64().ok())
                    .map(|code| format!(" ({})", reason_name(code)))
                    .unwrap_or_default();
                One::Revoked(format!(
                    "{id} was revoked on {}{reason} by CRL {url}",
                    asn1_rfc3339(entry.revocation_date())
                ))
            }
            // RFC 5280 §5.3.1: removeFromCRL lifts an earlier certificateHold.
            CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => {
                One::Good(format!("{id} is not revoked per CRL {url}"))
            }
        };
    }
    One::Unavailable(format!("{} (for {id})", problems.join("; ")))
}

/// RFC 5280 §6.3.3 (b), (f), (g): the CRL must come from the certificate's
/// issuer, whose key must be allowed to sign CRLs, and its signature must
/// verify with that key.
fn crl_fits(
    crl: &openssl::x509::X509CrlRef,
    cert: &X509Ref,
    issuer: &X509Ref,
    url: &str,
) -> Result<(), String> {
    let same_issuer = crl
        .issuer_name()
        .try_cmp(cert.issuer_name())
        .is_ok_and(|o| o.is_eq());
    if !same_issuer {
        return Err(format!(
            "CRL {url} is issued by '{}', not by the issuer '{}' of {}",
            name_line(crl.issuer_name()),
            name_line(cert.issuer_name()),
            cert_id(cert)
        ));
    }
    if issuer
        .key_usage()
        .is_some_and(|ku| !ku.contains(X509KeyUsage::CRL_SIGN))
    {
        return Err(format!(
            "CRL {url}: its issuer {} lacks keyUsage cRLSign",
            cert_id(issuer)
        ));
    }
    let verified = issuer
        .public_key()
        .and_then(|key| crl.verify(&key))
        .unwrap_or(false);
    if !verified {
        return Err(format!(
            "CRL {url}: its signature does not verify with the key of {}",
            cert_id(issuer)
        ));
    }
    Ok(())
}

/// RFC 5280 §5.3.1 CRLReason names.
fn reason_name(code: i64) -> String {
    match code {
        0 => "unspecified".into(),
        1 => "keyCompromise".into(),
        2 => "cACompromise".into(),
        3 => "affiliationChanged".into(),
        4 => "superseded".into(),
        5 => "cessationOfOperation".into(),
        6 => "certificateHold".into(),
        8 => "removeFromCRL".into(),
        9 => "privilegeWithdrawn".into(),
        10 => "aACompromise".into(),
        other => format!("reason {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_reads_the_configuration_words() {
        assert_eq!("hard-fail".parse(), Ok(RevocationMode::HardFail));
        assert_eq!("soft-fail".parse(), Ok(RevocationMode::SoftFail));
        assert_eq!(RevocationMode::default(), RevocationMode::HardFail);
        assert_eq!(
            "ignore".parse::<RevocationMode>().unwrap_err().to_string(),
            "unknown revocation mode 'ignore': use hard-fail or soft-fail"
        );
    }

    #[test]
    fn reason_codes_are_named_as_rfc5280_5_3_1() {
        assert_eq!(reason_name(1), "keyCompromise");
        assert_eq!(reason_name(7), "reason 7");
    }
}
