//! Certification path validation (RFC 5280 §6) from an end-entity
//! certificate to one of a domain's anchors, at a given time.
//!
//! OpenSSL's `X509StoreContext` builds and checks the path: signatures,
//! validity periods, basicConstraints and pathLenConstraint, keyCertSign on
//! issuers, unknown critical extensions. Intermediates come from the message,
//! from local storage, and from the caIssuers URL of a certificate whose
//! issuer is missing. Any anchor ends a path, root or not (partial chains):
//! Direct trust anchors are often intermediate CAs. Every certificate of a
//! path must meet security level 2 (keys of 112 bits of strength or more,
//! no MD5 or SHA-1 signatures).

use std::collections::HashSet;
use std::fmt;

use foreign_types::ForeignTypeRef;
use openssl::stack::Stack;
use openssl::x509::{X509Ref, X509StoreContext, X509VerifyResult, X509};
use openssl_sys as ffi;

use crate::anchors::Anchors;

use crate::aia::ca_issuer_urls;
use crate::describe::{asn1_rfc3339, cert_id, name_line, rfc3339};
use crate::error::TrustError;
use crate::failure::TrustFailure;
use crate::remote::Remote;

/// At most this many rounds of caIssuers fetching for one path (one round
/// per missing issuer), so a loop of AIA pointers ends.
pub const MAX_AIA_ROUNDS: usize = 4;

/// Certificates that may serve as intermediates, by where they came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Intermediates<'a> {
    /// The certificates the message carried (the CMS SignedData certificates).
    pub message: &'a [X509],
    /// Intermediates kept in local storage.
    pub local: &'a [X509],
}

/// A validated path.
#[derive(Debug, Clone)]
pub struct ValidPath {
    /// The certificates from the end-entity certificate (first) to the
    /// anchor (last). A certificate that is itself an anchor is a path of one.
    pub chain: Vec<X509>,
    /// caIssuers URLs fetched (or taken from the cache) to build it.
    pub aia_used: Vec<String>,
}

impl ValidPath {
    /// The anchor the path ends at.
    pub fn anchor(&self) -> Option<&X509> {
        self.chain.last()
    }
}

/// Why no valid path exists.
#[derive(Debug)]
pub enum PathFailure {
    /// The domain has no anchor for this direction.
    NoAnchors,
    /// A certificate in the path had expired at the validation time.
    Expired {
        /// The certificate, subject and serial.
        cert: String,
        /// Its notAfter, RFC 3339.
        not_after: String,
        /// The validation time, RFC 3339.
        at: String,
    },
    /// A certificate in the path was not yet valid at the validation time.
    NotYetValid {
        /// The certificate, subject and serial.
        cert: String,
        /// Its notBefore, RFC 3339.
        not_before: String,
        /// The validation time, RFC 3339.
        at: String,
    },
    /// The path cannot reach an anchor: an issuer is missing, or the path
    /// ends at a self-signed certificate that is not an anchor.
    NoPath {
        /// What is missing, naming the certificates.
        detail: String,
        /// The anchors tried.
        anchors: String,
        /// caIssuers downloads that failed, with their causes.
        aia_failures: Vec<String>,
        /// Whether an issuer might be found later: a caIssuers URL could
        /// not be reached.
        temporary: bool,
    },
    /// Another RFC 5280 check failed (signature, basicConstraints, path
    /// length, keyCertSign, unknown critical extension, ...).
    Check {
        /// The certificate, subject and serial.
        cert: String,
        /// Its depth in the path, 0 for the end-entity certificate.
        depth: u32,
        /// OpenSSL's description of the check that failed.
        check: String,
        /// The anchors tried.
        anchors: String,
    },
    /// OpenSSL failed to run the validation at all.
    Internal(TrustError),
}

impl PathFailure {
    /// Whether asking again later may succeed (a caIssuers URL was
    /// unreachable, or an internal failure).
    pub fn is_temporary(&self) -> bool {
        self.failure().is_temporary()
    }

    /// The failed check as a value.
    pub fn failure(&self) -> TrustFailure {
        match self {
            PathFailure::NoAnchors => TrustFailure::NoAnchors,
            PathFailure::Expired { .. } => TrustFailure::Expired,
            PathFailure::NotYetValid { .. } => TrustFailure::NotYetValid,
            PathFailure::NoPath {
                temporary: true, ..
            } => TrustFailure::IssuerUnavailable,
            PathFailure::NoPath { .. } => TrustFailure::NoPath,
            PathFailure::Check { .. } => TrustFailure::InvalidPath,
            PathFailure::Internal(_) => TrustFailure::Internal,
        }
    }
}

impl fmt::Display for PathFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathFailure::NoAnchors => f.write_str("no path to anchors []: no trust anchor is configured"),
            PathFailure::Expired { cert, not_after, at } => {
                write!(f, "{cert} expired at {not_after} (validated at {at})")
            }
            PathFailure::NotYetValid {
                cert,
                not_before,
                at,
            } => write!(f, "{cert} is not valid before {not_before} (validated at {at})"),
            PathFailure::NoPath {
                detail,
                anchors,
                aia_failures,
                temporary,
            } => {
                write!(f, "no path to anchors [{anchors}]: {detail}")?;
                for failure in aia_failures {
                    write!(f, "; {failure}")?;
                }
                if *temporary {
                    f.write_str(" (temporary)")?;
                }
                Ok(())
            }
            PathFailure::Check {
                cert,
                depth,
                check,
                anchors,
            } => write!(
                f,
                "{cert} at depth {depth} fails RFC 5280 path validation: {check} (anchors [{anchors}])"
            ),
            PathFailure::Internal(e) => write!(f, "path validation could not run: {e}"),
        }
    }
}

/// Names the anchors for a message: `'CN=A' (serial ..), 'CN=B' (serial ..)`.
pub fn anchor_list(anchors: &[X509]) -> String {
    anchors
        .iter()
        .map(|a| cert_id(a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Validates a path from `leaf` to one of `anchors` at `at` (Unix seconds),
/// RFC 5280 §6.1, fetching missing issuers by caIssuers through `remote`.
///
/// Key usage of the end-entity certificate, revocation and binding are not
/// checked here (see `usage`, `revocation` and `binding`).
pub fn validate_path(
    leaf: &X509Ref,
    anchors: &Anchors,
    intermediates: &Intermediates<'_>,
    at: i64,
    remote: &Remote,
) -> Result<ValidPath, PathFailure> {
    if anchors.is_empty() {
        return Err(PathFailure::NoAnchors);
    }
    let mut pool: Vec<X509> = Vec::new();
    for c in intermediates.message.iter().chain(intermediates.local) {
        if !pool.contains(c) {
            pool.push(c.clone());
        }
    }
    let mut tried: HashSet<String> = HashSet::new();
    let mut aia_used = Vec::new();
    let mut aia_failures = Vec::new();
    let mut unreachable = false;
    let mut round = 0;
    loop {
        let attempt = attempt(leaf, anchors, &pool, at).map_err(PathFailure::Internal)?;
        let failed = match attempt {
            Attempt::Valid(chain) => return Ok(ValidPath { chain, aia_used }),
            Attempt::Failed(failed) => failed,
        };
        let raw = failed.error.as_raw();
        if is_issuer_missing(raw) && round < MAX_AIA_ROUNDS {
            if let Some(cert) = &failed.cert {
                let urls: Vec<String> = ca_issuer_urls(cert)
                    .into_iter()
                    .filter(|u| !tried.contains(u))
                    .collect();
                let mut added = false;
                for url in urls {
                    tried.insert(url.clone());
                    match remote.aia().issuers(remote.fetcher(), &url) {
                        Ok(certs) => {
                            aia_used.push(url);
                            for c in certs {
                                if !pool.contains(&c) {
                                    pool.push(c);
                                    added = true;
                                }
                            }
                        }
                        Err(e) => {
                            if matches!(e, TrustError::Fetch { .. }) {
                                unreachable = true;
                                aia_failures.push(format!("caIssuers {url} unreachable: {e}"));
                            } else {
                                aia_failures.push(format!("caIssuers {url} unusable: {e}"));
                            }
                        }
                    }
                }
                if added {
                    round += 1;
                    continue;
                }
            }
        }
        return Err(describe_failure(
            leaf,
            anchors,
            at,
            failed,
            aia_failures,
            unreachable,
        ));
    }
}

struct Failed {
    error: X509VerifyResult,
    depth: u32,
    cert: Option<X509>,
}

enum Attempt {
    Valid(Vec<X509>),
    Failed(Failed),
}

fn is_issuer_missing(raw: i32) -> bool {
    raw == ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        || raw == ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        || raw == ffi::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
}

// OpenSSL 3.0 exports it; openssl-sys does not declare it.
extern "C" {
    fn X509_STORE_CTX_set_time(
        ctx: *mut ffi::X509_STORE_CTX,
        flags: std::ffi::c_ulong,
        t: libc::time_t,
    );
}

/// One run of OpenSSL's path building and validation.
fn attempt(
    leaf: &X509Ref,
    anchors: &Anchors,
    pool: &[X509],
    at: i64,
) -> Result<Attempt, TrustError> {
    let mut untrusted = Stack::new().map_err(TrustError::crypto("making a stack"))?;
    for c in pool {
        untrusted
            .push(c.clone())
            .map_err(TrustError::crypto("stacking intermediates"))?;
    }
    let mut ctx = X509StoreContext::new().map_err(TrustError::crypto("making a context"))?;
    ctx.init(anchors.store(), leaf, &untrusted, |c| {
        // RFC 5280 §6.1.1 (b): validity is judged at the validation time,
        // not now. The context took the store's parameters at init; the
        // time is this validation's own.
        // SAFETY: `c` is an initialised context, alive for this call.
        unsafe { X509_STORE_CTX_set_time(c.as_ptr(), 0, at as libc::time_t) };
        if c.verify_cert()? {
            let chain = c
                .chain()
                .map(|s| s.iter().map(|x| x.to_owned()).collect())
                .unwrap_or_default();
            Ok(Attempt::Valid(chain))
        } else {
            Ok(Attempt::Failed(Failed {
                error: c.error(),
                depth: c.error_depth(),
                cert: c.current_cert().map(|x| x.to_owned()),
            }))
        }
    })
    .map_err(TrustError::crypto("validating the path"))
}

fn describe_failure(
    leaf: &X509Ref,
    anchors: &Anchors,
    at: i64,
    failed: Failed,
    aia_failures: Vec<String>,
    unreachable: bool,
) -> PathFailure {
    let raw = failed.error.as_raw();
    let cert_ref: &X509Ref = failed.cert.as_deref().unwrap_or(leaf);
    let cert = cert_id(cert_ref);
    let at_text = rfc3339(at);
    let anchors_text = anchor_list(anchors.certs());
    if raw == ffi::X509_V_ERR_CERT_HAS_EXPIRED {
        return PathFailure::Expired {
            cert,
            not_after: asn1_rfc3339(cert_ref.not_after()),
            at: at_text,
        };
    }
    if raw == ffi::X509_V_ERR_CERT_NOT_YET_VALID {
        return PathFailure::NotYetValid {
            cert,
            not_before: asn1_rfc3339(cert_ref.not_before()),
            at: at_text,
        };
    }
    if is_issuer_missing(raw) {
        let urls = ca_issuer_urls(cert_ref);
        let aia = if urls.is_empty() {
            "it has no http caIssuers URL".to_string()
        } else {
            format!("nor at its caIssuers URL(s) {}", urls.join(", "))
        };
        return PathFailure::NoPath {
            detail: format!(
                "the issuer '{}' of {cert} is neither an anchor, in the message nor in local storage; {aia}",
                name_line(cert_ref.issuer_name())
            ),
            anchors: anchors_text,
            aia_failures,
            temporary: unreachable,
        };
    }
    if raw == ffi::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        || raw == ffi::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    {
        return PathFailure::NoPath {
            detail: format!("the path ends at the self-signed {cert}, which is not an anchor"),
            anchors: anchors_text,
            aia_failures,
            temporary: false,
        };
    }
    PathFailure::Check {
        cert,
        depth: failed.depth,
        check: failed.error.error_string().to_string(),
        anchors: anchors_text,
    }
}
