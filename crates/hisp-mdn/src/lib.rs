//! Delivery notification for Direct: message disposition notifications (MDNs, RFC 8098)
//! and delivery status notifications (DSNs, RFC 3464), carried in multipart/report
//! (RFC 6522), plus the Direct final-delivery request option (Implementation Guide for
//! Delivery Notification in Direct 1.0).
//!
//! Pure bytes in, bytes out: no I/O and no clock (times are parameters). Builders always
//! produce 7bit CRLF messages; parsers are total (a value or a typed [`MdnError`], never a
//! panic), liberal in the shapes they accept and strict about the fields the RFCs require.
//!
//! - [`requested`] reads what a message asks for; [`final_delivery_option_field`] asks.
//! - [`report_kind`] says whether a message is a report (never answer one with an MDN).
//! - [`build_mdn`] / [`parse_mdn`], [`build_dsn`] / [`parse_dsn`], [`parse_report`].

mod compose;
mod disposition;
mod dsn;
mod error;
mod fields;
mod mdn;
mod report;
mod request;

pub use disposition::{Disposition, DispositionType};
pub use dsn::{build_dsn, parse_dsn, Dsn, DsnAction, DsnRecipient, DsnSpec};
pub use error::MdnError;
pub use mdn::{build_mdn, parse_mdn, Mdn, MdnSpec};
pub use report::{parse_report, report_kind, report_kind_with_head, Report, ReportKind};
pub use request::{
    final_delivery_option_field, requested, requested_in, FinalDelivery, NotificationRequest,
    FINAL_DELIVERY_PARAMETER,
};
