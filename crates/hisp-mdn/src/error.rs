//! The one error type of this crate.

/// Why a delivery report could not be read.
///
/// Every variant has a stable [`code`](MdnError::code) for logs and metrics; the
/// `Display` text says what was wrong with which field so an administrator can
/// find it in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MdnError {
    /// The input has no header block at all.
    #[error("not an RFC 5322 message: no header fields found")]
    NotAMessage,
    /// The message is neither a multipart/report nor a bare report body.
    #[error("not a delivery report: top-level Content-Type is {0:?}, not multipart/report")]
    NotAReport(String),
    /// A multipart/report whose report-type is neither an MDN nor a DSN.
    #[error("unsupported report-type {0:?} (only disposition-notification and delivery-status)")]
    UnsupportedReportType(String),
    /// The machine-readable part (`message/disposition-notification` or
    /// `message/delivery-status`) was not found among the parts.
    #[error("no {0} part found in the report")]
    MissingReportPart(&'static str),
    /// A field the RFC requires is absent.
    #[error("required field {field} missing ({rule})")]
    MissingField {
        /// The field name, e.g. `Final-Recipient`.
        field: &'static str,
        /// Where it is required, e.g. `RFC 8098 §3.1`; for a DSN also which recipient block.
        rule: String,
    },
    /// The Disposition field does not follow RFC 8098 §3.2.6.
    #[error("malformed Disposition field {0:?}: expected action-mode/sending-mode; type")]
    MalformedDisposition(String),
    /// A DSN Action field with a value RFC 3464 §2.3.3 does not define.
    #[error("unknown DSN Action {0:?} (failed, delayed, delivered, relayed, expanded)")]
    UnknownAction(String),
    /// A DSN Status field that is not an RFC 3463 status code.
    #[error("malformed DSN Status {0:?}: expected class.subject.detail, e.g. 5.1.1")]
    MalformedStatus(String),
    /// A recipient address field (`Final-Recipient`, `Original-Recipient`) with no address.
    #[error("malformed {field} field {value:?}: expected address-type; address")]
    MalformedAddress {
        /// The field name.
        field: &'static str,
        /// The field value as found.
        value: String,
    },
    /// A DSN with no per-recipient block (RFC 3464 §2.1 requires at least one).
    #[error("delivery-status report has no per-recipient block (RFC 3464 §2.1)")]
    NoRecipients,
}

impl MdnError {
    /// A short stable identifier for the variant, for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            MdnError::NotAMessage => "not-a-message",
            MdnError::NotAReport(_) => "not-a-report",
            MdnError::UnsupportedReportType(_) => "unsupported-report-type",
            MdnError::MissingReportPart(_) => "missing-report-part",
            MdnError::MissingField { .. } => "missing-field",
            MdnError::MalformedDisposition(_) => "malformed-disposition",
            MdnError::UnknownAction(_) => "unknown-action",
            MdnError::MalformedStatus(_) => "malformed-status",
            MdnError::MalformedAddress { .. } => "malformed-address",
            MdnError::NoRecipients => "no-recipients",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            MdnError::NotAMessage,
            MdnError::NotAReport(String::new()),
            MdnError::UnsupportedReportType(String::new()),
            MdnError::MissingReportPart("x"),
            MdnError::MissingField {
                field: "x",
                rule: String::new(),
            },
            MdnError::MalformedDisposition(String::new()),
            MdnError::UnknownAction(String::new()),
            MdnError::MalformedStatus(String::new()),
            MdnError::MalformedAddress {
                field: "x",
                value: String::new(),
            },
            MdnError::NoRecipients,
        ];
        let mut codes: Vec<&str> = all.iter().map(MdnError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
