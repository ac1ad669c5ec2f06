//! The e-mail that tells a portal user new secure mail is waiting (issue 11
//! item 9): plain mail to the user's ordinary address, through the site's
//! smart host, never sealed. It carries no health information: no sender,
//! no subject, no text of the secure message; only that one is waiting and
//! where to read it (`[portal] public_url`).

use std::time::Duration;

use hisp_store::{DirectAddress, EmailAddress};
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use time::OffsetDateTime;

use crate::policy::new_message_id;

/// Where and how notices go out (`[notify]`, `[portal] public_url`).
#[derive(Debug, Clone)]
pub struct NoticeSettings {
    /// The smart host's name or IP address (`[notify] smtp`, before the
    /// colon).
    pub smart_host: String,
    /// The smart host's port.
    pub port: u16,
    /// The notice's From and envelope sender; `None`: `no-reply@` the
    /// domain of the Direct address the secure message came to.
    pub from: Option<DirectAddress>,
    /// The portal's address, the one link in the notice.
    pub public_url: String,
    /// Delay before the first retry of a notice the smart host did not
    /// take; doubled for each further attempt up to the worker's maximum.
    pub retry_base: Duration,
}

impl NoticeSettings {
    /// The sender of the notice about mail that came to `recipient`.
    pub fn sender_for(&self, recipient: &DirectAddress) -> DirectAddress {
        match &self.from {
            Some(from) => from.clone(),
            None => DirectAddress::parse(&format!("no-reply@{}", recipient.domain()))
                .expect("no-reply is a valid local part and the domain is already valid"),
        }
    }
}

/// The Subject of every notice: the same whatever arrived.
pub const NOTICE_SUBJECT: &str = "A new secure message is waiting for you";

/// Writes the notice from `from` to `to` at `now`, pointing to
/// `public_url`: the same words for every message, so nothing of the
/// secure message can leak into it. Composed with mail-builder (Date,
/// Message-ID on `from`'s domain, MIME-Version, quoted-printable or 7bit
/// text as the text needs); `Auto-Submitted: auto-generated` (RFC 3834 §5)
/// so that vacation responders do not answer it.
pub fn compose(
    from: &DirectAddress,
    to: &EmailAddress,
    public_url: &str,
    now: OffsetDateTime,
) -> Vec<u8> {
    let text = format!(
        "A new secure message is waiting for you.\r\n\
         \r\n\
         To read it, sign in to your patient portal:\r\n\
         {public_url}\r\n\
         \r\n\
         For your privacy this e-mail does not say who wrote or what the \
         message is about. It was sent automatically; please do not reply.\r\n"
    );
    MessageBuilder::new()
        .from(Address::new_address(None::<&str>, from.to_string()))
        .to(Address::new_address(None::<&str>, to.to_string()))
        .subject(NOTICE_SUBJECT)
        .header("Date", Raw::new(hisp_date::rfc5322(now)))
        .message_id(new_message_id(from.domain().as_str()))
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .text_body(text)
        .write_to_vec()
        .expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(from: Option<&str>) -> NoticeSettings {
        NoticeSettings {
            smart_host: "127.0.0.1".into(),
            port: 25,
            from: from.map(|f| DirectAddress::parse(f).unwrap()),
            public_url: "https://portal.b.example/".into(),
            retry_base: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_sender_defaults_to_no_reply_at_the_recipients_domain() {
        let doc = DirectAddress::parse("doc@b.example").unwrap();
        assert_eq!(
            settings(None).sender_for(&doc).to_string(),
            "no-reply@b.example"
        );
        assert_eq!(
            settings(Some("portal@mail.b.example"))
                .sender_for(&doc)
                .to_string(),
            "portal@mail.b.example"
        );
    }

    #[test]
    fn a_notice_names_the_portal_and_parses_as_mail_to_the_user() {
        let from = DirectAddress::parse("no-reply@b.example").unwrap();
        let to = EmailAddress::parse("pat.home@mail.example").unwrap();
        let bytes = compose(
            &from,
            &to,
            "https://portal.b.example/inbox",
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        );
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let addr = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_string)
        };
        assert_eq!(addr(parsed.from()).as_deref(), Some("no-reply@b.example"));
        assert_eq!(addr(parsed.to()).as_deref(), Some("pat.home@mail.example"));
        assert_eq!(parsed.subject(), Some(NOTICE_SUBJECT));
        assert_eq!(parsed.date().map(|d| d.to_timestamp()), Some(1_700_000_000));
        assert_eq!(
            parsed.header_raw("Date").map(str::trim),
            Some("Tue, 14 Nov 2023 22:13:20 +0000"),
            "hisp_date::rfc5322 writes every Date"
        );
        assert!(parsed
            .message_id()
            .is_some_and(|m| m.ends_with("@b.example")));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        let body = parsed.body_text(0).unwrap();
        assert!(body.contains("https://portal.b.example/inbox"), "{body}");
        // Every line ends in CRLF, as SMTP carries it.
        assert!(!bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
    }
}
