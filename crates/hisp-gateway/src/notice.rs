//! The notifications hisp writes (Implementation Guide for Delivery
//! Notification in Direct 1.0): MDNs from a local recipient back to the
//! sender of a message it received, and DSNs to a local sender naming the
//! recipients that will not get its message. Building only; the workers
//! queue and deliver them.

use hisp_mdn::{
    build_dsn, build_mdn, Disposition, DispositionType, DsnAction, DsnRecipient, DsnSpec, MdnSpec,
};
use hisp_smtp::Reply;
use hisp_store::{DeliveryStatus, DirectAddress};
use mail_parser::{HeaderName, HeaderValue, MessageParser};
use time::OffsetDateTime;

use crate::policy::new_message_id;

/// What hisp says about itself in Reporting-UA and Reporting-MTA.
pub(crate) const PRODUCT: &str = concat!("hisp ", env!("CARGO_PKG_VERSION"));

/// The Message-ID and Subject of a message, read from its header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Original {
    pub(crate) message_id: Option<String>,
    pub(crate) subject: Option<String>,
}

impl Original {
    /// Reads the header of `message`; fields that are missing or do not
    /// parse are `None`.
    pub(crate) fn of(message: &[u8]) -> Original {
        let Some(parsed) = MessageParser::new()
            .with_message_ids()
            .parse_headers(message)
        else {
            return Original::default();
        };
        let message_id = match parsed.header(HeaderName::MessageId) {
            Some(HeaderValue::Text(id)) if !id.is_empty() => Some(id.to_string()),
            _ => None,
        };
        Original {
            message_id,
            subject: parsed.subject().map(str::to_string),
        }
    }
}

/// One MDN about `original`, from the local `recipient` to the remote
/// `sender`. `reporting_host` is this HISP's host name.
pub(crate) struct MdnNotice<'a> {
    pub(crate) original: &'a Original,
    pub(crate) recipient: &'a DirectAddress,
    pub(crate) sender: &'a DirectAddress,
    pub(crate) kind: DispositionType,
    pub(crate) failure: Option<&'a str>,
    /// The sender asked for final-destination delivery: the extension
    /// field goes into the report (Direct IG §3.3).
    pub(crate) final_delivery: bool,
    pub(crate) reporting_host: &'a str,
    pub(crate) now: OffsetDateTime,
}

/// The MDN's bytes and its Message-ID.
pub(crate) fn mdn(notice: &MdnNotice<'_>) -> (Vec<u8>, String) {
    let id = new_message_id(notice.recipient.domain().as_str());
    let reporting_ua = format!("{}; {PRODUCT}", notice.reporting_host);
    let (from, to) = (notice.recipient.to_string(), notice.sender.to_string());
    let bytes = build_mdn(&MdnSpec {
        message_id: &id,
        date: notice.now,
        from: &from,
        to: &to,
        reporting_ua: &reporting_ua,
        // RFC 8098 §3.2.3: only when the original recipient (ORCPT) is
        // known, which hisp's backbone listener does not take.
        original_recipient: None,
        final_recipient: &from,
        original_message_id: notice.original.message_id.as_deref(),
        original_subject: notice.original.subject.as_deref(),
        disposition: Disposition::automatic(notice.kind.clone()),
        failure: notice.failure,
        final_delivery_extension: notice.final_delivery,
    });
    (bytes, id)
}

/// One recipient a DSN names, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) address: DirectAddress,
    pub(crate) reason: String,
    /// The RFC 3463 status the refusal carried, as tracking kept it.
    pub(crate) status: Option<DeliveryStatus>,
    pub(crate) at: Option<OffsetDateTime>,
}

/// A DSN (action failed) to the local `sender` about `failures`, from
/// postmaster of the sender's domain, with the subject "Not Delivered: ...".
pub(crate) struct DsnNotice<'a> {
    pub(crate) original: &'a Original,
    pub(crate) original_headers: Option<&'a [u8]>,
    pub(crate) sender: &'a DirectAddress,
    pub(crate) arrival: Option<OffsetDateTime>,
    pub(crate) failures: &'a [Failure],
    pub(crate) reporting_host: &'a str,
    pub(crate) now: OffsetDateTime,
}

/// The DSN's bytes.
pub(crate) fn dsn(notice: &DsnNotice<'_>) -> Vec<u8> {
    let domain = notice.sender.domain().as_str();
    let id = new_message_id(domain);
    let from = format!("postmaster@{domain}");
    let to = notice.sender.to_string();
    let reporting_mta = format!("dns; {}", notice.reporting_host);
    let recipients = notice
        .failures
        .iter()
        .map(|f| DsnRecipient {
            final_recipient: f.address.to_string(),
            original_recipient: Some(f.address.to_string()),
            action: DsnAction::Failed,
            status: dsn_status(f.status),
            diagnostic: Some(f.reason.clone()),
            remote_mta: None,
            // RFC 3464 §2.3.7: an RFC 5322 date-time.
            last_attempt: f.at.map(hisp_date::rfc5322),
        })
        .collect();
    let names: Vec<String> = notice
        .failures
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    let explanation = format!(
        "Your message could not be delivered to {}. hisp at {} gave up on {}.",
        names.join(", "),
        notice.reporting_host,
        if names.len() == 1 {
            "this recipient"
        } else {
            "these recipients"
        }
    );
    build_dsn(&DsnSpec {
        message_id: &id,
        date: notice.now,
        from: &from,
        to: &to,
        reporting_mta: &reporting_mta,
        original_message_id: notice.original.message_id.as_deref(),
        original_subject: notice.original.subject.as_deref(),
        original_headers: notice.original_headers,
        arrival_date: notice.arrival,
        recipients,
        explanation: &explanation,
    })
}

/// The RFC 3463 status of a failed recipient in a DSN (RFC 3464 §2.3.4):
/// the permanent status its refusal carried (`5.1.1` from a destination's
/// `550 5.1.1`), else `5.0.0` (other undefined status: timeouts, hisp's
/// own refusals, a temporary status that the lifetime made final).
fn dsn_status(status: Option<DeliveryStatus>) -> String {
    match status {
        Some(s) if s.is_permanent() => s.to_string(),
        _ => "5.0.0".into(),
    }
}

/// The RFC 3463 status an SMTP reply carries, if it has a valid one.
pub(crate) fn reply_status(reply: &Reply) -> Option<DeliveryStatus> {
    reply
        .enhanced
        .and_then(|(class, subject, detail)| DeliveryStatus::new(class, subject, detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;

    fn addr(s: &str) -> DirectAddress {
        DirectAddress::parse(s).unwrap()
    }

    #[test]
    fn dsn_status_is_the_permanent_status_kept_or_generic_rfc3464_2_3_4() {
        let status = |c, s, d| DeliveryStatus::new(c, s, d);
        assert_eq!(dsn_status(status(5, 1, 1)), "5.1.1");
        assert_eq!(dsn_status(status(5, 7, 1)), "5.7.1");
        assert_eq!(dsn_status(status(4, 4, 3)), "5.0.0");
        assert_eq!(dsn_status(None), "5.0.0");
        assert_eq!(
            reply_status(&Reply::new(550, (5, 1, 1), "<x@y>: no such user")),
            status(5, 1, 1)
        );
        assert_eq!(reply_status(&Reply::plain(554, "no")), None);
        // A peer's malformed enhanced code is no status.
        assert_eq!(reply_status(&Reply::new(550, (7, 1, 1), "odd")), None);
    }

    #[test]
    fn original_fields_are_read_from_the_header() {
        let o = Original::of(b"Subject: Lab results\r\nMessage-ID: <m1@a.example>\r\n\r\nbody\r\n");
        assert_eq!(o.message_id.as_deref(), Some("m1@a.example"));
        assert_eq!(o.subject.as_deref(), Some("Lab results"));
        assert_eq!(Original::of(b"\xff\xfe"), Original::default());
    }

    #[test]
    fn processed_mdn_answers_the_original_and_reads_back() {
        let original = Original {
            message_id: Some("m1@a.example".into()),
            subject: Some("Referral".into()),
        };
        let (bytes, id) = mdn(&MdnNotice {
            original: &original,
            recipient: &addr("doc@b.example"),
            sender: &addr("pat@a.example"),
            kind: DispositionType::Processed,
            failure: None,
            final_delivery: true,
            reporting_host: "hisp.b.example",
            now: OffsetDateTime::UNIX_EPOCH,
        });
        assert!(id.ends_with("@b.example"), "{id}");
        let parsed = hisp_mdn::parse_mdn(&bytes).unwrap();
        assert_eq!(parsed.final_recipient, "doc@b.example");
        assert_eq!(parsed.original_message_id.as_deref(), Some("m1@a.example"));
        assert_eq!(parsed.disposition.kind, DispositionType::Processed);
        assert!(parsed.final_delivery_extension);
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text
            .to_ascii_lowercase()
            .contains("disposition-notification-to"));
    }

    #[test]
    fn dsn_names_each_failed_recipient_with_its_reason() {
        let original = Original {
            message_id: Some("m2@a.example".into()),
            subject: Some("Referral".into()),
        };
        let failures = [
            Failure {
                address: addr("doc@b.example"),
                reason: "no processed MDN within 1h".into(),
                status: None,
                at: Some(OffsetDateTime::UNIX_EPOCH),
            },
            Failure {
                address: addr("nurse@b.example"),
                reason: "550 5.1.1 <nurse@b.example>: no such address here".into(),
                status: DeliveryStatus::new(5, 1, 1),
                at: None,
            },
        ];
        let bytes = dsn(&DsnNotice {
            original: &original,
            original_headers: Some(b"Subject: Referral\r\n\r\n"),
            sender: &addr("pat@a.example"),
            arrival: Some(OffsetDateTime::UNIX_EPOCH),
            failures: &failures,
            reporting_host: "hisp.a.example",
            now: OffsetDateTime::UNIX_EPOCH,
        });
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.contains("From: <postmaster@a.example>\r\n"), "{text}");
        assert!(text.contains("Subject: Not Delivered: Referral"), "{text}");
        // Read by mail-parser, field by field.
        let m = MessageParser::default().parse(&bytes).unwrap();
        let addr = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_string)
        };
        assert_eq!(addr(m.from()).as_deref(), Some("postmaster@a.example"));
        assert_eq!(addr(m.to()).as_deref(), Some("pat@a.example"));
        assert_eq!(m.subject(), Some("Not Delivered: Referral"));
        assert_eq!(m.date().map(|d| d.to_timestamp()), Some(0));
        assert!(m.message_id().is_some_and(|id| id.ends_with("@a.example")));
        assert_eq!(m.in_reply_to().as_text(), Some("m2@a.example"));
        let report = m
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|c| c.subtype() == Some("delivery-status"))
            })
            .unwrap();
        let report = String::from_utf8_lossy(report.contents()).into_owned();
        assert!(
            report.contains("\r\nReporting-MTA: dns; hisp.a.example\r\n")
                || report.starts_with("Reporting-MTA: dns; hisp.a.example\r\n"),
            "{report}"
        );
        // RFC 3464 §2.2.5, §2.3.7: RFC 5322 date-times, from the one writer.
        let epoch = hisp_date::rfc5322(OffsetDateTime::UNIX_EPOCH);
        assert!(
            report.contains(&format!("Arrival-Date: {epoch}\r\n")),
            "{report}"
        );
        assert!(
            report.contains(&format!("Last-Attempt-Date: {epoch}\r\n")),
            "{report}"
        );
        let parsed = hisp_mdn::parse_dsn(&bytes).unwrap();
        assert_eq!(
            parsed.recipients[0].last_attempt.as_deref(),
            Some("Thu, 1 Jan 1970 00:00:00 +0000")
        );
        assert_eq!(parsed.recipients.len(), 2);
        assert_eq!(parsed.recipients[0].status, "5.0.0");
        assert_eq!(parsed.recipients[1].status, "5.1.1");
        assert_eq!(parsed.original_message_id.as_deref(), Some("m2@a.example"));
    }
}
