//! Reports shaped like those other Direct implementations and MTAs send, written by hand
//! under `tests/fixtures/`, and what they must yield.

use hisp_mdn::{
    parse_dsn, parse_mdn, parse_report, report_kind, requested, DispositionType, DsnAction,
    FinalDelivery, MdnError, Report, ReportKind,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn direct_java_ri_processed_mdn_with_extension_field() {
    let mdn = parse_mdn(&fixture("mdn-processed-java-ri.eml")).unwrap();
    assert_eq!(
        mdn.reporting_ua.as_deref(),
        Some("hisp.other.example; Direct-Java-RI")
    );
    assert_eq!(mdn.final_recipient, "provider@other.example");
    assert_eq!(mdn.original_recipient, None);
    assert_eq!(
        mdn.original_message_id.as_deref(),
        Some("20261126190155.4471@example.org")
    );
    assert_eq!(mdn.disposition.kind, DispositionType::Processed);
    assert_eq!(mdn.disposition.action_mode, "automatic-action");
    assert_eq!(mdn.disposition.sending_mode, "MDN-sent-automatically");
    assert!(mdn.final_delivery_extension);
    assert!(mdn.extension_fields.is_empty());
    assert_eq!(mdn.from.as_deref(), Some("provider@other.example"));
}

#[test]
fn lf_endings_and_any_case_field_names_are_read() {
    let mdn = parse_mdn(&fixture("mdn-processed-lf.eml")).unwrap();
    assert_eq!(
        mdn.reporting_ua.as_deref(),
        Some("clinic.example; ClinicMail 4.2")
    );
    assert_eq!(
        mdn.original_recipient.as_deref(),
        Some("Inbox@Clinic.example")
    );
    assert_eq!(mdn.final_recipient, "inbox@clinic.example");
    assert_eq!(
        mdn.original_message_id.as_deref(),
        Some("abc.123@example.org")
    );
    assert_eq!(mdn.disposition.kind, DispositionType::Processed);
    assert_eq!(mdn.disposition.sending_mode, "MDN-sent-automatically");
    assert!(!mdn.final_delivery_extension);
    assert_eq!(mdn.from.as_deref(), Some("inbox@clinic.example"));
    assert_eq!(
        report_kind(&fixture("mdn-processed-lf.eml")),
        Some(ReportKind::Mdn)
    );
}

#[test]
fn quoted_printable_report_part_is_decoded_rfc2045_6_7() {
    let mdn = parse_mdn(&fixture("mdn-quoted-printable.eml")).unwrap();
    assert_eq!(
        mdn.reporting_ua.as_deref(),
        Some(
            "direct.qp.example; QP-HISP/2.0 (build=\"2026.11\"; long product string that goes on)"
        )
    );
    assert_eq!(mdn.final_recipient, "nurse@qp.example");
    assert_eq!(
        mdn.original_message_id.as_deref(),
        Some("qp-orig-42@example.org")
    );
}

#[test]
fn base64_report_part_is_decoded() {
    let mdn = parse_mdn(&fixture("mdn-base64.eml")).unwrap();
    assert_eq!(mdn.final_recipient, "clerk@b64.example");
    assert_eq!(mdn.disposition.kind, DispositionType::Dispatched);
    assert!(mdn.final_delivery_extension);
}

#[test]
fn dispatched_mdn_keeps_gateway_and_unknown_extension_fields_rfc8098_3_3() {
    let mdn = parse_mdn(&fixture("mdn-dispatched.eml")).unwrap();
    assert_eq!(mdn.disposition.kind, DispositionType::Dispatched);
    assert!(mdn.disposition.modifiers.is_empty());
    assert!(mdn.final_delivery_extension);
    assert_eq!(mdn.mdn_gateway.as_deref(), Some("dns; gw.hospital.example"));
    assert_eq!(
        mdn.original_recipient.as_deref(),
        Some("cardiology@hospital.example")
    );
    assert_eq!(
        mdn.extension_fields,
        vec![("X-Hospital-Ticket".to_string(), "4711".to_string())]
    );
}

#[test]
fn failed_mdn_carries_folded_failure_text() {
    let mdn = parse_mdn(&fixture("mdn-failed.eml")).unwrap();
    assert_eq!(mdn.disposition.kind, DispositionType::Failed);
    assert_eq!(
        mdn.failure.as_deref(),
        Some("recipient mailbox is disabled; delivery to the EHR was not possible")
    );
    assert_eq!(mdn.warning.as_deref(), Some("retried 3 times"));
    assert_eq!(mdn.error, None);
}

#[test]
fn postfix_bounce_with_folded_diagnostic_rfc3464() {
    let dsn = parse_dsn(&fixture("dsn-postfix.eml")).unwrap();
    assert_eq!(dsn.reporting_mta.as_deref(), Some("dns; mx.example"));
    assert_eq!(
        dsn.arrival_date.as_deref(),
        Some("Fri, 27 Nov 2026 12:00:58 +0000 (UTC)")
    );
    assert_eq!(dsn.recipients.len(), 1);
    let r = &dsn.recipients[0];
    assert_eq!(r.final_recipient, "nobody@b.example");
    assert_eq!(r.original_recipient.as_deref(), Some("nobody@b.example"));
    assert_eq!(r.action, DsnAction::Failed);
    assert_eq!(r.status, "5.1.1");
    assert_eq!(r.remote_mta.as_deref(), Some("dns; mx.b.example"));
    assert_eq!(
        r.diagnostic.as_deref(),
        Some("smtp; 550 5.1.1 <nobody@b.example>: Recipient address rejected: User unknown")
    );
    assert_eq!(
        dsn.original_message_id.as_deref(),
        Some("20261127120055.991@example.org")
    );
    assert_eq!(dsn.from.as_deref(), Some("MAILER-DAEMON@mx.example"));
    assert_eq!(
        dsn.extension_fields,
        vec![
            ("X-Postfix-Queue-ID".to_string(), "3F2A1C0042".to_string()),
            (
                "X-Postfix-Sender".to_string(),
                "rfc822; doctor@example.org".to_string()
            ),
        ]
    );
}

#[test]
fn dsn_with_two_recipients_and_message_rfc822_third_part() {
    let dsn = parse_dsn(&fixture("dsn-two-recipients-rfc822.eml")).unwrap();
    assert_eq!(dsn.original_envelope_id.as_deref(), Some("env-77"));
    assert_eq!(dsn.recipients.len(), 2);
    assert_eq!(dsn.recipients[0].final_recipient, "a@one.example");
    assert_eq!(dsn.recipients[0].action, DsnAction::Delayed);
    assert_eq!(dsn.recipients[0].status, "4.4.1");
    assert_eq!(
        dsn.recipients[0].last_attempt.as_deref(),
        Some("Fri, 27 Nov 2026 12:59:00 +0000")
    );
    assert_eq!(dsn.recipients[1].action, DsnAction::Failed);
    assert_eq!(dsn.recipients[1].status, "5.7.1");
    assert_eq!(
        dsn.recipients[1].diagnostic.as_deref(),
        Some("X-hisp; no trusted certificate for b@two.example")
    );
    assert_eq!(
        dsn.original_message_id.as_deref(),
        Some("orig-two@example.org")
    );
}

#[test]
fn parse_report_dispatches_on_report_type_rfc6522_3() {
    assert!(matches!(
        parse_report(&fixture("mdn-failed.eml")),
        Ok(Report::Mdn(_))
    ));
    assert!(matches!(
        parse_report(&fixture("dsn-postfix.eml")),
        Ok(Report::Dsn(_))
    ));
    assert_eq!(
        parse_report(&fixture("report-feedback.eml")).unwrap_err(),
        MdnError::UnsupportedReportType("feedback-report".to_string())
    );
    let e = parse_report(&fixture("plain.eml")).unwrap_err();
    assert_eq!(e, MdnError::NotAReport("text/plain".to_string()));
    assert_eq!(e.code(), "not-a-report");
}

/// A report some systems wrap in multipart/mixed is read and classified the
/// same way, so it is never filed as mail nor answered with an MDN.
#[test]
fn report_inside_multipart_mixed_is_found_by_parse_and_by_report_kind() {
    let msg = fixture("mdn-in-mixed.eml");
    match parse_report(&msg).unwrap() {
        Report::Mdn(m) => assert_eq!(m.final_recipient, "wrapped@mixed.example"),
        other => panic!("{other:?}"),
    }
    assert_eq!(report_kind(&msg), Some(ReportKind::Mdn));
}

#[test]
fn multipart_report_without_report_type_is_classified_by_its_part() {
    let msg = b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nprocessed\r\n--b\r\n\
Content-Type: message/disposition-notification\r\n\r\n\
Final-Recipient: rfc822;doc@b.example\r\n\
Disposition: automatic-action/MDN-sent-automatically; processed\r\n\r\n--b--\r\n";
    assert_eq!(report_kind(msg), Some(ReportKind::Mdn));
    let mixed = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
    assert_eq!(report_kind(mixed), None, "ordinary multipart mail");
}

#[test]
fn report_kind_of_each_shape_rfc6522_3() {
    assert_eq!(report_kind(&fixture("plain.eml")), None);
    assert_eq!(
        report_kind(&fixture("mdn-processed-java-ri.eml")),
        Some(ReportKind::Mdn)
    );
    assert_eq!(
        report_kind(&fixture("dsn-postfix.eml")),
        Some(ReportKind::Dsn)
    );
    assert_eq!(
        report_kind(&fixture("report-feedback.eml")),
        Some(ReportKind::Other("feedback-report".to_string()))
    );
    assert_eq!(
        report_kind(b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n"),
        Some(ReportKind::Dsn)
    );
    assert_eq!(
        report_kind(b"Content-Type: MESSAGE/Disposition-Notification\r\n\r\n"),
        Some(ReportKind::Mdn)
    );
    assert_eq!(
        report_kind(b"Content-Type: multipart/report; boundary=x\r\n\r\n"),
        Some(ReportKind::Other(String::new()))
    );
    assert_eq!(report_kind(b""), None);
}

#[test]
fn plain_message_request_is_read() {
    let r = requested(&fixture("plain.eml"));
    assert_eq!(r.disposition_notification_to, vec!["doctor@example.org"]);
    assert_eq!(
        r.final_delivery,
        FinalDelivery::Requested { required: false }
    );
}

#[test]
fn bare_disposition_notification_body_is_an_mdn() {
    let msg = b"Content-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822;x@y\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n";
    let mdn = parse_mdn(msg).unwrap();
    assert_eq!(mdn.final_recipient, "x@y");
    assert_eq!(mdn.disposition.action_mode, "manual-action");
    assert_eq!(mdn.disposition.kind, DispositionType::Displayed);
}

#[test]
fn missing_required_fields_are_errors_rfc8098_3_1() {
    let base = "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\n";
    let no_final = format!(
        "{base}Disposition: automatic-action/MDN-sent-automatically; processed\r\n--b--\r\n"
    );
    let e = parse_mdn(no_final.as_bytes()).unwrap_err();
    assert_eq!(e.code(), "missing-field");
    assert_eq!(
        e.to_string(),
        "required field Final-Recipient missing (RFC 8098 §3.1)"
    );
    let no_disp = format!("{base}Final-Recipient: rfc822; a@b\r\n--b--\r\n");
    let e = parse_mdn(no_disp.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "required field Disposition missing (RFC 8098 §3.1)"
    );
    let bad_disp =
        format!("{base}Final-Recipient: rfc822; a@b\r\nDisposition: processed\r\n--b--\r\n");
    assert_eq!(
        parse_mdn(bad_disp.as_bytes()).unwrap_err().code(),
        "malformed-disposition"
    );
    let no_part = "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
    assert_eq!(
        parse_mdn(no_part.as_bytes()).unwrap_err(),
        MdnError::MissingReportPart("message/disposition-notification")
    );
}

#[test]
fn dsn_recipient_blocks_need_final_recipient_action_status_rfc3464_2_3() {
    let base = "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n";
    let e =
        parse_dsn(format!("{base}Final-Recipient: rfc822;a@b\r\nAction: failed\r\n").as_bytes())
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "required field Status missing (RFC 3464 §2.3, recipient block 1)"
    );
    let e = parse_dsn(base.as_bytes()).unwrap_err();
    assert_eq!(e, MdnError::NoRecipients);
    let e = parse_dsn(
        format!("{base}Final-Recipient: rfc822;a@b\r\nAction: failed\r\nStatus: 550\r\n")
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "malformed-status");
    // A DSN that starts directly with a recipient block is accepted.
    let dsn = parse_dsn(
        b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;a@b\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
    )
    .unwrap();
    assert_eq!(dsn.recipients[0].action, DsnAction::Delivered);
    assert_eq!(dsn.reporting_mta, None);
}

/// RFC 8098 §3.2.5 makes Original-Message-ID a SHOULD: without it, the MDN's
/// In-Reply-To names the original.
#[test]
fn an_mdn_without_original_message_id_is_read_by_in_reply_to() {
    let msg = b"From: doc@b.example\r\nIn-Reply-To: <orig-9@a.example>\r\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nprocessed\r\n--b\r\n\
Content-Type: message/disposition-notification\r\n\r\n\
Final-Recipient: rfc822;doc@b.example\r\n\
Disposition: automatic-action/MDN-sent-automatically; processed\r\n\r\n--b--\r\n";
    match parse_report(msg).unwrap() {
        Report::Mdn(m) => assert_eq!(m.original_message_id.as_deref(), Some("orig-9@a.example")),
        other => panic!("{other:?}"),
    }
}
