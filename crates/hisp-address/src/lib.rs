//! Direct addresses and domains.
//!
//! [`Domain`] is a DNS domain name and [`DirectAddress`] a Direct address
//! `local@domain`, both checked and normalised at the edge so that every hisp
//! crate (store, CA, trust, discovery, gateway) agrees on what a name is and
//! when two names are the same. A refusal is an [`AddressError`] naming the
//! value and the [`Reason`] it breaks.
//!
//! This crate has no I/O and depends on nothing but `thiserror`, so any
//! crate may sit on top of it.

mod address;
mod domain;
mod error;

pub use address::DirectAddress;
pub use domain::Domain;
pub use error::{AddressError, Reason};
