//! Trust anchors and bundles, RFC 5280 path validation, revocation and
//! address binding for Direct.
//!
//! The entry point is [`judge`]: given a certificate, what it is for, the
//! address it must belong to, the anchors in force and the intermediates at
//! hand, it returns a [`Verdict`] that says whether the certificate may be
//! used, whether a refusal is temporary, which checks failed (as
//! [`TrustFailure`] values), and why, naming the certificate, the anchors
//! and the check. Anchors are the certificates the caller (the
//! store, per domain and direction) passes in as [`Anchors`] (their
//! certificate store built once, so a caller may keep it until they
//! change), and bundles ([`BundleState`]) are plain values; nothing caches
//! verdicts, so a changed anchor set is in force for the next call.
//! Network access (caIssuers, CRLs) goes through a [`Fetcher`] held in a
//! [`Remote`] with its download caches.

#![warn(missing_docs)]

mod aia;
mod anchors;
mod binding;
mod bundle;
mod crl;
mod describe;
mod error;
mod failure;
mod fetch;
mod path;
mod remote;
mod revocation;
mod usage;
mod verdict;

pub use aia::{ca_issuer_urls, parse_issuer_certs, AiaCache};
pub use anchors::Anchors;
pub use binding::{binding, Binding};
pub use bundle::{parse_bundle, Bundle, BundleSource, BundleState};
pub use crl::{crl_urls, fetchable_crl_urls, parse_crl, CrlCache, NO_NEXT_UPDATE_REUSE_SECS};
pub use describe::{cert_id, name_line, rfc3339, serial_hex};
pub use error::TrustError;
pub use failure::TrustFailure;
pub use fetch::{is_fetchable, Fetcher, HttpFetcher};
pub use path::{anchor_list, validate_path, Intermediates, PathFailure, ValidPath, MAX_AIA_ROUNDS};
pub use remote::Remote;
pub use revocation::{check_revocation, RevocationMode, RevocationStatus, UnknownRevocationMode};
pub use usage::{check_key_usage, KeyUsageCheck, Purpose};
pub use verdict::{judge, Question, Verdict};
