//! The store's composite operations, written once for every backend over
//! the transaction seam ([`crate::tx::Tx`]): each takes the backend's open
//! transaction and makes every decision (state moves, audit events, what
//! an idempotent repeat returns, caps per destination, errors), leaving
//! the backend only its statements.
//!
//! A backend's [`Store`](crate::Store) method opens one transaction and
//! calls one of these in it; the operation's writes commit together or not
//! at all.

pub(crate) mod audit;
pub(crate) mod filing;
pub(crate) mod mailbox;
pub(crate) mod portal_user;
pub(crate) mod quarantine;
pub(crate) mod queue;
pub(crate) mod tracking;
