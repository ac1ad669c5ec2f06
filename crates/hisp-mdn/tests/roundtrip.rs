//! What the builders write, read back by the parsers, and checked line by line against
//! the wire rules (RFC 5322 §2.1.1, §2.3; RFC 8098 §2.1; RFC 6522 §3).

use hisp_mdn::{
    build_dsn, build_mdn, parse_dsn, parse_mdn, parse_report, report_kind, requested, Disposition,
    DispositionType, DsnAction, DsnRecipient, DsnSpec, FinalDelivery, MdnSpec, Report, ReportKind,
};
use time::macros::datetime;

fn mdn_spec(kind: DispositionType) -> MdnSpec<'static> {
    MdnSpec {
        message_id: "mdn-1@hisp.example.org",
        date: datetime!(2026-11-27 07:30:00 +00:00),
        from: "bob@b.example",
        to: "alice@a.example",
        reporting_ua: "hisp.example.org; hisp 0.1.0",
        original_recipient: Some("Bob@B.example"),
        final_recipient: "bob@b.example",
        original_message_id: Some("orig-1@a.example"),
        original_subject: Some("Referral"),
        disposition: Disposition::automatic(kind),
        failure: None,
        final_delivery_extension: false,
    }
}

fn recipient(addr: &str, action: DsnAction, status: &str, diag: Option<&str>) -> DsnRecipient {
    DsnRecipient {
        final_recipient: addr.to_string(),
        original_recipient: None,
        action,
        status: status.to_string(),
        diagnostic: diag.map(str::to_string),
        remote_mta: None,
        last_attempt: None,
    }
}

fn dsn_spec(recipients: Vec<DsnRecipient>) -> DsnSpec<'static> {
    DsnSpec {
        message_id: "dsn-1@hisp.example.org",
        date: datetime!(2026-11-27 07:31:00 +01:00),
        from: "postmaster@a.example",
        to: "alice@a.example",
        reporting_mta: "dns; hisp.example.org",
        original_message_id: Some("orig-2@a.example"),
        original_subject: Some("Lab results"),
        original_headers: Some(
            b"From: alice@a.example\nTo: bob@b.example\nSubject: Lab results\nMessage-ID: <orig-2@a.example>\n\nbody must not be copied\n",
        ),
        arrival_date: Some(datetime!(2026-11-27 07:29:00 +00:00)),
        recipients,
        explanation: "Your message could not be delivered to one or more recipients.",
    }
}

/// The wire rules every built message must meet.
fn assert_wire_clean(msg: &[u8], report_type: &str) {
    let text = std::str::from_utf8(msg).expect("ASCII");
    assert!(text.is_ascii(), "7bit: only US-ASCII");
    for (i, b) in msg.iter().enumerate() {
        if *b == b'\n' {
            assert_eq!(msg.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
        }
        if *b == b'\r' {
            assert_eq!(msg.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    for line in text.split("\r\n") {
        assert!(line.len() < 998, "RFC 5322 §2.1.1: line of {}", line.len());
    }
    let header = text.split("\r\n\r\n").next().unwrap();
    assert!(
        !header
            .to_ascii_lowercase()
            .contains("disposition-notification-to"),
        "RFC 8098 §2.1: a report must not request an MDN"
    );
    assert!(header.contains(&format!("report-type={report_type};")));
    assert!(header.contains("MIME-Version: 1.0\r\n"));
    assert!(requested(msg).disposition_notification_to.is_empty());
    assert_eq!(requested(msg).final_delivery, FinalDelivery::NotRequested);
}

#[test]
fn processed_mdn_round_trips() {
    let msg = build_mdn(&mdn_spec(DispositionType::Processed));
    assert_wire_clean(&msg, "disposition-notification");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(text.contains("Subject: Processed: Referral\r\n"));
    assert!(text.contains("Date: Fri, 27 Nov 2026 07:30:00 +0000\r\n"));
    assert!(text.contains("Message-ID: <mdn-1@hisp.example.org>\r\n"));
    assert!(text.contains("In-Reply-To: <orig-1@a.example>\r\n"));
    assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically; processed\r\n"));
    assert!(!text.contains("X-DIRECT-FINAL-DESTINATION-DELIVERY"));
    assert_eq!(report_kind(&msg), Some(ReportKind::Mdn));
    let mdn = parse_mdn(&msg).unwrap();
    assert_eq!(
        mdn.reporting_ua.as_deref(),
        Some("hisp.example.org; hisp 0.1.0")
    );
    assert_eq!(mdn.original_recipient.as_deref(), Some("Bob@B.example"));
    assert_eq!(mdn.final_recipient, "bob@b.example");
    assert_eq!(mdn.original_message_id.as_deref(), Some("orig-1@a.example"));
    assert_eq!(
        mdn.disposition,
        Disposition::automatic(DispositionType::Processed)
    );
    assert_eq!(mdn.from.as_deref(), Some("bob@b.example"));
    assert!(!mdn.final_delivery_extension);
    assert!(mdn.extension_fields.is_empty());
}

#[test]
fn dispatched_mdn_with_direct_extension_round_trips() {
    let mut spec = mdn_spec(DispositionType::Dispatched);
    spec.final_delivery_extension = true;
    let msg = build_mdn(&spec);
    assert_wire_clean(&msg, "disposition-notification");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(text.contains("\r\nX-DIRECT-FINAL-DESTINATION-DELIVERY:\r\n"));
    assert!(text.contains("Subject: Dispatched: Referral\r\n"));
    match parse_report(&msg).unwrap() {
        Report::Mdn(mdn) => {
            assert_eq!(mdn.disposition.kind, DispositionType::Dispatched);
            assert!(mdn.final_delivery_extension);
            assert!(mdn.extension_fields.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_mdn_carries_failure_text_round_trip() {
    let mut spec = mdn_spec(DispositionType::Failed);
    spec.failure = Some("no trusted certificate for bob@b.example");
    spec.original_subject = None;
    let msg = build_mdn(&spec);
    assert_wire_clean(&msg, "disposition-notification");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(text.contains("Subject: Failed\r\n"));
    assert!(text.contains("\r\nFailure: no trusted certificate for bob@b.example\r\n"));
    let mdn = parse_mdn(&msg).unwrap();
    assert_eq!(mdn.disposition.kind, DispositionType::Failed);
    assert_eq!(
        mdn.failure.as_deref(),
        Some("no trusted certificate for bob@b.example")
    );
    assert_eq!(mdn.error, None);
}

#[test]
fn error_modifier_writes_error_field_rfc8098_3_2_7() {
    let mut spec = mdn_spec(DispositionType::Processed);
    spec.disposition.modifiers = vec!["error".to_string()];
    spec.failure = Some("could not decrypt");
    let mdn = parse_mdn(&build_mdn(&spec)).unwrap();
    assert_eq!(mdn.disposition.modifiers, vec!["error".to_string()]);
    assert_eq!(mdn.error.as_deref(), Some("could not decrypt"));
    assert_eq!(mdn.failure, None);
}

#[test]
fn hostile_values_cannot_add_header_lines_or_break_limits() {
    let long = "x".repeat(3000);
    let subject = format!("Ärztebrief\r\nBcc: evil@x.example {long}");
    let mut spec = mdn_spec(DispositionType::Failed);
    spec.original_subject = Some(&subject);
    spec.failure = Some(&long);
    spec.reporting_ua = "ua\r\nDisposition-Notification-To: evil@x.example";
    let msg = build_mdn(&spec);
    assert_wire_clean(&msg, "disposition-notification");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(!text.contains("\r\nBcc:"));
    let mdn = parse_mdn(&msg).unwrap();
    assert_eq!(
        mdn.reporting_ua.as_deref(),
        Some("ua Disposition-Notification-To: evil@x.example")
    );
    assert_eq!(mdn.failure.unwrap().replace(' ', ""), long);
}

#[test]
fn dsn_with_one_recipient_round_trips() {
    let mut r = recipient(
        "bob@b.example",
        DsnAction::Failed,
        "5.1.1",
        Some("smtp; 550 5.1.1 <bob@b.example>: user unknown"),
    );
    r.original_recipient = Some("Bob@b.example".to_string());
    r.remote_mta = Some("dns; mx.b.example".to_string());
    r.last_attempt = Some("Fri, 27 Nov 2026 07:30:59 +0000".to_string());
    let spec = dsn_spec(vec![r.clone()]);
    let msg = build_dsn(&spec);
    assert_wire_clean(&msg, "delivery-status");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(text.contains("Subject: Not Delivered: Lab results\r\n"));
    assert!(text.contains("References: <orig-2@a.example>\r\n"));
    assert!(text.contains("Arrival-Date: Fri, 27 Nov 2026 07:29:00 +0000\r\n"));
    assert!(text.contains("Content-Type: text/rfc822-headers\r\n"));
    assert!(!text.contains("body must not be copied"));
    assert_eq!(report_kind(&msg), Some(ReportKind::Dsn));
    let dsn = parse_dsn(&msg).unwrap();
    assert_eq!(dsn.reporting_mta.as_deref(), Some("dns; hisp.example.org"));
    assert_eq!(
        dsn.arrival_date.as_deref(),
        Some("Fri, 27 Nov 2026 07:29:00 +0000")
    );
    assert_eq!(dsn.recipients, vec![r]);
    assert_eq!(dsn.original_message_id.as_deref(), Some("orig-2@a.example"));
    assert_eq!(dsn.from.as_deref(), Some("postmaster@a.example"));
}

#[test]
fn dsn_with_three_recipients_round_trips() {
    let recipients = vec![
        recipient(
            "a@x.example",
            DsnAction::Failed,
            "5.7.1",
            Some("no trusted certificate"),
        ),
        recipient(
            "b@y.example",
            DsnAction::Delayed,
            "4.4.1",
            Some("smtp; 421 try later"),
        ),
        recipient("c@z.example", DsnAction::Failed, "5.1.1", None),
    ];
    let mut spec = dsn_spec(recipients.clone());
    spec.original_headers = None;
    spec.arrival_date = None;
    let msg = build_dsn(&spec);
    assert_wire_clean(&msg, "delivery-status");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(!text.contains("rfc822-headers"));
    assert!(text.contains("a@x.example: not delivered (status 5.7.1)"));
    assert!(text.contains("\r\nReason: X-hisp; no trusted certificate\r\n"));
    let dsn = match parse_report(&msg).unwrap() {
        Report::Dsn(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(dsn.recipients.len(), 3);
    assert_eq!(
        dsn.recipients[0].diagnostic.as_deref(),
        Some("X-hisp; no trusted certificate")
    );
    assert_eq!(dsn.recipients[1], recipients[1]);
    assert_eq!(dsn.recipients[2], recipients[2]);
    // No header part to name the original: the DSN's In-Reply-To does.
    assert_eq!(dsn.original_message_id.as_deref(), Some("orig-2@a.example"));
}

#[test]
fn non_ascii_original_headers_go_quoted_printable() {
    let headers =
        "From: alice@a.example\r\nSubject: Befund für Frau Müller\r\nMessage-ID: <q@a.example>\r\n";
    let mut spec = dsn_spec(vec![recipient(
        "b@b.example",
        DsnAction::Failed,
        "5.0.0",
        None,
    )]);
    spec.original_headers = Some(headers.as_bytes());
    let msg = build_dsn(&spec);
    assert_wire_clean(&msg, "delivery-status");
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(text.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
    let dsn = parse_dsn(&msg).unwrap();
    assert_eq!(dsn.original_message_id.as_deref(), Some("q@a.example"));
}

#[test]
fn invalid_status_is_replaced_by_class_code_rfc3463() {
    let spec = dsn_spec(vec![recipient(
        "b@b.example",
        DsnAction::Failed,
        "bogus",
        None,
    )]);
    let dsn = parse_dsn(&build_dsn(&spec)).unwrap();
    assert_eq!(dsn.recipients[0].status, "5.0.0");
}

#[test]
fn boundary_differs_when_content_contains_it() {
    let spec = mdn_spec(DispositionType::Processed);
    let first = String::from_utf8(build_mdn(&spec)).unwrap();
    let boundary = first
        .split("boundary=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let mut spec2 = mdn_spec(DispositionType::Failed);
    let failure = format!("--{boundary}");
    spec2.failure = Some(&failure);
    let second = String::from_utf8(build_mdn(&spec2)).unwrap();
    assert!(!second.contains(&format!("boundary=\"{boundary}\"")));
    assert!(parse_mdn(second.as_bytes()).is_ok());
}
