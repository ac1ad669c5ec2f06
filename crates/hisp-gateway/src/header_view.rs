//! A submitted message's header block, parsed once for every check of the
//! submission: the header policy (`policy`), the requests for notification
//! and whether it is a report (`submit`). Each check used to parse the
//! header again.

use hisp_mdn::{report_kind_with_head, requested_in, NotificationRequest, ReportKind};
use mail_parser::{Message, MessageParser};

/// The parsed header of one message (mail-parser with every registered field
/// read by its own parser: addresses, dates, message ids, MIME fields), and
/// the bytes it was read from.
pub struct HeaderView<'a> {
    bytes: &'a [u8],
    parsed: Option<Message<'a>>,
}

impl<'a> HeaderView<'a> {
    /// Parses the header block of `message` (the body is not read).
    pub fn parse(message: &'a [u8]) -> HeaderView<'a> {
        HeaderView {
            bytes: message,
            parsed: MessageParser::default().parse_headers(message),
        }
    }

    /// The message the view reads.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The parsed header, `None` when the message has no header block.
    pub fn parsed(&self) -> Option<&Message<'a>> {
        self.parsed.as_ref()
    }

    /// Whether the header has a field called `name`, in any letter case.
    pub fn has_field(&self, name: &str) -> bool {
        self.parsed.as_ref().is_some_and(|m| {
            m.headers()
                .iter()
                .any(|h| h.name.as_str().eq_ignore_ascii_case(name))
        })
    }

    /// What the message asks for (Disposition-Notification-To and the
    /// Direct final-delivery option), as `hisp_mdn::requested` reads it.
    pub fn requested(&self) -> NotificationRequest {
        match &self.parsed {
            Some(parsed) => requested_in(parsed),
            None => hisp_mdn::requested(b""),
        }
    }

    /// Whether the message is a delivery report, as `hisp_mdn::report_kind`
    /// reads it (the body only for a multipart message).
    pub fn report_kind(&self) -> Option<ReportKind> {
        report_kind_with_head(self.parsed.as_ref()?, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view answers every question as the functions that parse for
    /// themselves do.
    #[test]
    fn one_parse_answers_as_each_check_parsing_alone_would() {
        let messages: [&[u8]; 4] = [
            b"From: a@b.example\r\nDisposition-Notification-To: <a@b.example>\r\nDisposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n\r\nbody\r\n",
            b"From: a@b.example\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n",
            b"disposition-notification-options: x=optional,false\r\nFrom: a@b\r\n\r\n",
            b"",
        ];
        for m in messages {
            let view = HeaderView::parse(m);
            assert_eq!(view.requested(), hisp_mdn::requested(m));
            assert_eq!(view.report_kind(), hisp_mdn::report_kind(m));
        }
        let view = HeaderView::parse(messages[2]);
        assert!(view.has_field("Disposition-Notification-Options"));
        assert!(!view.has_field("Disposition-Notification-To"));
    }
}
