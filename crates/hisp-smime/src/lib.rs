//! S/MIME for Direct messaging.
//!
//! `seal` turns an RFC 5322 message into what a HISP sends on the backbone: the
//! message wrapped as message/rfc822, signed (detached, SHA-256) and encrypted to
//! every recipient certificate (Applicability Statement for Secure Health
//! Transport 1.3; RFC 8551; RFC 5652). `open` reverses it and reports what it
//! checked and who signed: it verifies signatures and digests, and leaves
//! whether a signer is trusted to hisp-trust.
//!
//! The crate does no I/O: bytes in, bytes out.

mod algorithms;
mod canon;
mod certcache;
mod decrypt;
mod encrypt;
mod error;
mod ffi;
mod inspect;
mod keys;
mod mime;
mod open;
mod seal;
mod sign;
mod size;
mod verify;
mod wrap;

#[cfg(test)]
mod roundtrip_tests;

#[cfg(test)]
mod random_input_tests;

pub use algorithms::{ContentCipher, Digest, KeyTransport};
pub use error::{SmimeError, Step};
pub use keys::{KeyPair, Signer, MIN_RSA_BITS};
pub use open::{open, open_report, OpenOptions, OpenReport, Opened, SignerReport};
pub use seal::{seal, SealOptions};
pub use size::{sealed_size_bound, SEAL_OVERHEAD};
