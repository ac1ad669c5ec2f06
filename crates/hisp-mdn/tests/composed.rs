//! The MDNs and DSNs hisp composes, read by `mail-parser` (not by hisp-mdn's own parsers)
//! and checked field by field: the message header (RFC 5322 §3.6, RFC 3834 §5), the
//! multipart/report structure (RFC 6522 §3), every field of the machine-readable part
//! (RFC 8098 §3.1-§3.2, RFC 3464 §2.2-§2.3) and the fields the Implementation Guide for
//! Delivery Notification in Direct 1.0 requires.

use hisp_mdn::{
    build_dsn, build_mdn, Disposition, DispositionType, DsnAction, DsnRecipient, DsnSpec, MdnSpec,
};
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use time::macros::datetime;
use time::OffsetDateTime;

const MDN_DATE: OffsetDateTime = datetime!(2026-11-27 07:30:00 +00:00);
const DSN_DATE: OffsetDateTime = datetime!(2026-11-27 08:31:05 +01:00);
const ARRIVAL: OffsetDateTime = datetime!(2026-11-27 07:29:00 +00:00);

fn mdn_spec(kind: DispositionType) -> MdnSpec<'static> {
    MdnSpec {
        message_id: "mdn-7@b.example",
        date: MDN_DATE,
        from: "bob@b.example",
        to: "alice@a.example",
        reporting_ua: "hisp.b.example; hisp 0.1.0",
        original_recipient: Some("Bob@b.example"),
        final_recipient: "bob@b.example",
        original_message_id: Some("orig-7@a.example"),
        original_subject: Some("Referral for Zoë"),
        disposition: Disposition::automatic(kind),
        failure: None,
        final_delivery_extension: false,
    }
}

fn dsn_spec() -> DsnSpec<'static> {
    DsnSpec {
        message_id: "dsn-7@a.example",
        date: DSN_DATE,
        from: "postmaster@a.example",
        to: "alice@a.example",
        reporting_mta: "hisp.a.example",
        original_message_id: Some("orig-8@a.example"),
        original_subject: Some("Lab results"),
        original_headers: Some(
            b"From: alice@a.example\r\nTo: bob@b.example, carol@c.example\r\n\
              Subject: Lab results\r\nMessage-ID: <orig-8@a.example>\r\n\r\nsecret body\r\n",
        ),
        arrival_date: Some(ARRIVAL),
        recipients: vec![
            DsnRecipient {
                final_recipient: "bob@b.example".into(),
                original_recipient: Some("Bob@b.example".into()),
                action: DsnAction::Failed,
                status: "5.1.1".into(),
                diagnostic: Some("smtp; 550 5.1.1 <bob@b.example>: no such user".into()),
                remote_mta: Some("mx.b.example".into()),
                last_attempt: Some(hisp_date::rfc5322(ARRIVAL)),
            },
            DsnRecipient {
                final_recipient: "carol@c.example".into(),
                original_recipient: None,
                action: DsnAction::Failed,
                status: "5.0.0".into(),
                diagnostic: Some("no processed MDN within 1h".into()),
                remote_mta: None,
                last_attempt: None,
            },
        ],
        explanation: "Your message could not be delivered.",
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("mail-parser reads it")
}

fn first_address(a: Option<&mail_parser::Address<'_>>) -> Option<String> {
    a.and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string)
}

/// The leaf parts under the multipart/report root, in order.
fn parts<'m>(message: &'m Message<'m>) -> Vec<&'m MessagePart<'m>> {
    match &message.root_part().body {
        PartType::Multipart(ids) => ids.iter().map(|id| message.part(*id).unwrap()).collect(),
        other => panic!("root is not multipart: {other:?}"),
    }
}

fn media_type(part: &MessagePart<'_>) -> String {
    let ct = part.content_type().expect("a Content-Type");
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
}

fn transfer_encoding(part: &MessagePart<'_>) -> Option<String> {
    part.content_transfer_encoding()
        .map(str::to_ascii_lowercase)
}

/// The fields of one block of a report part, read by mail-parser as a header block:
/// (name, unfolded value) in order.
fn fields(block: &[u8]) -> Vec<(String, String)> {
    let mut text = block.to_vec();
    text.extend_from_slice(b"\r\n\r\n");
    let parsed = MessageParser::default()
        .parse_headers(&text)
        .expect("a field block");
    parsed
        .headers()
        .iter()
        .map(|h| {
            let raw = parsed
                .raw_message()
                .get(h.offset_start() as usize..h.offset_end() as usize)
                .unwrap();
            let value = String::from_utf8_lossy(raw)
                .replace("\r\n", "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (h.name().to_string(), value)
        })
        .collect()
}

/// The blocks of a report part (RFC 3464 §2.1: separated by blank lines).
fn blocks(contents: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8(contents.to_vec()).expect("7bit report part");
    text.split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| fields(b.as_bytes()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The header every report hisp writes carries, whatever its kind.
fn assert_report_header(m: &Message<'_>, from: &str, to: &str, date: OffsetDateTime) {
    assert_eq!(first_address(m.from()).as_deref(), Some(from));
    assert_eq!(first_address(m.to()).as_deref(), Some(to));
    assert_eq!(
        m.date().map(|d| d.to_timestamp()),
        Some(date.unix_timestamp()),
        "RFC 5322 §3.6.1: Date"
    );
    assert_eq!(
        m.header_raw("Date").map(str::trim),
        Some(hisp_date::rfc5322(date).as_str()),
        "the workspace's one date writer"
    );
    assert_eq!(
        m.header_raw("MIME-Version").map(str::trim),
        Some("1.0"),
        "RFC 2045 §4"
    );
    assert_eq!(
        m.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied"),
        "RFC 3834 §5"
    );
    assert!(
        m.header_raw("Disposition-Notification-To").is_none(),
        "RFC 8098 §2.1: a report requests no MDN"
    );
    assert!(m.header_raw("Disposition-Notification-Options").is_none());
}

#[test]
fn processed_mdn_read_by_mail_parser_has_every_field_rfc8098_3() {
    let bytes = build_mdn(&mdn_spec(DispositionType::Processed));
    let m = parse(&bytes);
    assert_report_header(&m, "bob@b.example", "alice@a.example", MDN_DATE);
    assert_eq!(m.message_id(), Some("mdn-7@b.example"));
    assert_eq!(m.subject(), Some("Processed: Referral for Zoë"));
    assert_eq!(m.in_reply_to().as_text(), Some("orig-7@a.example"));
    assert_eq!(m.references().as_text(), Some("orig-7@a.example"));
    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("report")),
        "RFC 6522 §3"
    );
    assert_eq!(
        ct.attribute("report-type"),
        Some("disposition-notification")
    );

    let parts = parts(&m);
    assert_eq!(parts.len(), 2, "human part and report part");
    assert_eq!(media_type(parts[0]), "text/plain");
    assert_eq!(
        parts[0].content_type().unwrap().attribute("charset"),
        Some("us-ascii")
    );
    let human = parts[0].text_contents().unwrap();
    assert!(
        human.contains("Your message <orig-7@a.example> to bob@b.example was received"),
        "{human}"
    );
    assert!(
        !human.contains("Referral"),
        "no subject in the text: {human}"
    );

    assert_eq!(media_type(parts[1]), "message/disposition-notification");
    assert_eq!(
        transfer_encoding(parts[1]).as_deref(),
        Some("7bit"),
        "RFC 8098 §3.1: 7bit MUST be used"
    );
    assert_eq!(
        blocks(parts[1].contents()),
        vec![pairs(&[
            ("Reporting-UA", "hisp.b.example; hisp 0.1.0"),
            ("Original-Recipient", "rfc822;Bob@b.example"),
            ("Final-Recipient", "rfc822;bob@b.example"),
            ("Original-Message-ID", "<orig-7@a.example>"),
            (
                "Disposition",
                "automatic-action/MDN-sent-automatically; processed"
            ),
        ])]
    );
}

#[test]
fn dispatched_mdn_carries_the_direct_final_delivery_field_direct_ig() {
    let mut spec = mdn_spec(DispositionType::Dispatched);
    spec.final_delivery_extension = true;
    spec.original_recipient = None;
    let bytes = build_mdn(&spec);
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("Dispatched: Referral for Zoë"));
    let parts = parts(&m);
    assert_eq!(
        blocks(parts[1].contents()),
        vec![pairs(&[
            ("Reporting-UA", "hisp.b.example; hisp 0.1.0"),
            ("Final-Recipient", "rfc822;bob@b.example"),
            ("Original-Message-ID", "<orig-7@a.example>"),
            (
                "Disposition",
                "automatic-action/MDN-sent-automatically; dispatched"
            ),
            ("X-DIRECT-FINAL-DESTINATION-DELIVERY", ""),
        ])]
    );
}

#[test]
fn failed_mdn_names_the_failure_and_error_mdn_the_error_rfc8098_3_2_7() {
    let mut spec = mdn_spec(DispositionType::Failed);
    spec.failure = Some("address no longer exists");
    let m_bytes = build_mdn(&spec);
    let m = parse(&m_bytes);
    let block = &blocks(parts(&m)[1].contents())[0];
    assert!(
        block.contains(&(
            "Disposition".into(),
            "automatic-action/MDN-sent-automatically; failed".into()
        )),
        "{block:?}"
    );
    assert_eq!(
        block.last(),
        Some(&("Failure".into(), "address no longer exists".into()))
    );

    let mut spec = mdn_spec(DispositionType::Processed);
    spec.disposition.modifiers = vec!["error".into()];
    spec.failure = Some("could not decrypt");
    let e_bytes = build_mdn(&spec);
    let e = parse(&e_bytes);
    let block = &blocks(parts(&e)[1].contents())[0];
    assert_eq!(
        block.last(),
        Some(&("Error".into(), "could not decrypt".into()))
    );
}

#[test]
fn dsn_read_by_mail_parser_has_every_field_rfc3464_2() {
    let bytes = build_dsn(&dsn_spec());
    let m = parse(&bytes);
    assert_report_header(&m, "postmaster@a.example", "alice@a.example", DSN_DATE);
    assert_eq!(m.message_id(), Some("dsn-7@a.example"));
    assert_eq!(m.subject(), Some("Not Delivered: Lab results"));
    assert_eq!(m.in_reply_to().as_text(), Some("orig-8@a.example"));
    assert_eq!(m.references().as_text(), Some("orig-8@a.example"));
    let ct = m.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));

    let parts = parts(&m);
    assert_eq!(parts.len(), 3, "human, report, original header");
    assert_eq!(media_type(parts[0]), "text/plain");
    let human = parts[0].text_contents().unwrap();
    assert!(human.starts_with("Your message could not be delivered."));
    assert!(human.contains("bob@b.example: not delivered (status 5.1.1)"));
    assert!(human.contains("carol@c.example: not delivered (status 5.0.0)"));

    assert_eq!(media_type(parts[1]), "message/delivery-status");
    assert_eq!(
        transfer_encoding(parts[1]).as_deref(),
        Some("7bit"),
        "RFC 3464 §6.1: 7bit MUST be used"
    );
    let arrival = hisp_date::rfc5322(ARRIVAL);
    assert_eq!(
        blocks(parts[1].contents()),
        vec![
            pairs(&[
                ("Reporting-MTA", "dns; hisp.a.example"),
                ("Arrival-Date", &arrival),
            ]),
            pairs(&[
                ("Original-Recipient", "rfc822;Bob@b.example"),
                ("Final-Recipient", "rfc822;bob@b.example"),
                ("Action", "failed"),
                ("Status", "5.1.1"),
                ("Remote-MTA", "dns; mx.b.example"),
                (
                    "Diagnostic-Code",
                    "smtp; 550 5.1.1 <bob@b.example>: no such user"
                ),
                ("Last-Attempt-Date", &arrival),
            ]),
            pairs(&[
                ("Final-Recipient", "rfc822;carol@c.example"),
                ("Action", "failed"),
                ("Status", "5.0.0"),
                ("Diagnostic-Code", "X-hisp; no processed MDN within 1h"),
            ]),
        ]
    );
    // RFC 3464 §2.2.5: Arrival-Date is an RFC 5322 date-time.
    let read = MessageParser::default()
        .parse_headers(format!("Date: {arrival}\r\n\r\n").as_bytes())
        .and_then(|h| h.date().map(|d| d.to_timestamp()));
    assert_eq!(read, Some(ARRIVAL.unix_timestamp()));

    assert_eq!(media_type(parts[2]), "text/rfc822-headers");
    assert_eq!(
        blocks(parts[2].contents()),
        vec![pairs(&[
            ("From", "alice@a.example"),
            ("To", "bob@b.example, carol@c.example"),
            ("Subject", "Lab results"),
            ("Message-ID", "<orig-8@a.example>"),
        ])]
    );
    assert!(!String::from_utf8_lossy(&bytes).contains("secret body"));
}

#[test]
fn non_ascii_original_header_decodes_back_to_its_bytes() {
    let mut spec = dsn_spec();
    let headers = "Subject: Befund f\u{fc}r Frau M\u{fc}ller\r\nMessage-ID: <q@a.example>\r\n";
    spec.original_headers = Some(headers.as_bytes());
    let bytes = build_dsn(&spec);
    assert!(bytes.is_ascii(), "the report stays 7bit");
    let m = parse(&bytes);
    let part = parts(&m)[2];
    assert_eq!(transfer_encoding(part).as_deref(), Some("quoted-printable"));
    assert_eq!(part.contents(), headers.as_bytes());
}
