//! What a message asks for in its header: Disposition-Notification-To (RFC 8098 §2.1)
//! and the Direct final-delivery option in Disposition-Notification-Options (RFC 8098
//! §2.2; Implementation Guide for Delivery Notification in Direct 1.0 §3).

use mail_parser::{HeaderName, Message, MessageParser};

/// The Disposition-Notification-Options parameter by which a Direct sender asks for
/// final-destination delivery notification (the `dispatched` MDN).
pub const FINAL_DELIVERY_PARAMETER: &str = "X-DIRECT-FINAL-DESTINATION-DELIVERY";

/// What a message asked for in its header (RFC 8098 §2.1, §2.2; Direct IG §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRequest {
    /// Addresses from Disposition-Notification-To (empty if absent).
    pub disposition_notification_to: Vec<String>,
    /// Whether the sender asked for final-destination delivery notification.
    pub final_delivery: FinalDelivery,
}

/// The state of the Direct `X-DIRECT-FINAL-DESTINATION-DELIVERY` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalDelivery {
    /// The option is absent, or its value is `false`.
    NotRequested,
    /// The option is `true`; `required` when its importance is `required` (RFC 8098
    /// §2.2: a receiver that does not understand a required option must treat the
    /// request as failed rather than ignore it).
    Requested {
        /// Importance `required` rather than `optional`.
        required: bool,
    },
    /// The option is present but cannot be read; the text says why.
    Malformed(String),
}

/// Reads Disposition-Notification-To and Disposition-Notification-Options.
///
/// The option is `X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true` or `required,true`;
/// parameter names and keywords compare case-insensitively, several parameters are
/// separated by `;`, folded header lines are unfolded. Value `false` gives
/// [`FinalDelivery::NotRequested`]; anything unreadable (unknown importance, a value other
/// than `true`/`false`, no `=`) gives [`FinalDelivery::Malformed`]. Other parameters are
/// ignored. Works on a whole message or only its header block; never fails.
pub fn requested(message: &[u8]) -> NotificationRequest {
    match MessageParser::default().parse_headers(message) {
        Some(parsed) => requested_in(&parsed),
        None => NotificationRequest {
            disposition_notification_to: Vec::new(),
            final_delivery: FinalDelivery::NotRequested,
        },
    }
}

/// [`requested`] of a message whose header the caller parsed already (with
/// `MessageParser::default()`), so several checks share one parse.
pub fn requested_in(parsed: &Message<'_>) -> NotificationRequest {
    let mut request = NotificationRequest {
        disposition_notification_to: Vec::new(),
        final_delivery: FinalDelivery::NotRequested,
    };
    let raw = parsed.raw_message();
    let mut found = false;
    for header in parsed.root_part().headers() {
        match header.name {
            HeaderName::DispositionNotificationTo => {
                let value = raw
                    .get(header.offset_start as usize..header.offset_end as usize)
                    .unwrap_or_default();
                request.disposition_notification_to.extend(addresses(value));
            }
            HeaderName::DispositionNotificationOptions if !found => {
                let value = raw
                    .get(header.offset_start as usize..header.offset_end as usize)
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                if let Some(fd) = final_delivery_from_options(&value) {
                    request.final_delivery = fd;
                    found = true;
                }
            }
            _ => {}
        }
    }
    request
}

/// The header field to add to an outbound message asking for final delivery
/// notification (Direct IG §3: importance `optional`, so a receiver that does not know
/// the option still accepts the message).
pub fn final_delivery_option_field() -> &'static str {
    "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true"
}

/// The addresses of an address-list value. mail-parser keeps Disposition-Notification-To
/// as unstructured text, so the value is handed to its address parser as a To field.
fn addresses(value: &[u8]) -> Vec<String> {
    let mut field = Vec::with_capacity(value.len() + 8);
    field.extend_from_slice(b"To:");
    field.extend_from_slice(value);
    field.extend_from_slice(b"\r\n\r\n");
    let Some(parsed) = MessageParser::default().parse_headers(&field) else {
        return Vec::new();
    };
    parsed
        .to()
        .map(|list| {
            list.iter()
                .filter_map(|a| a.address())
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Finds the Direct parameter in one Disposition-Notification-Options value; `None` when
/// the value does not mention it.
fn final_delivery_from_options(value: &str) -> Option<FinalDelivery> {
    // RFC 5322 §2.2.3: unfold before reading.
    let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    for parameter in value.split(';') {
        let (name, rest) = match parameter.split_once('=') {
            Some((name, rest)) => (name.trim(), Some(rest)),
            None => (parameter.trim(), None),
        };
        if !name.eq_ignore_ascii_case(FINAL_DELIVERY_PARAMETER) {
            continue;
        }
        let Some(rest) = rest else {
            return Some(FinalDelivery::Malformed(format!(
                "{FINAL_DELIVERY_PARAMETER} has no '=importance,value'"
            )));
        };
        return Some(parse_parameter_value(rest));
    }
    None
}

/// RFC 8098 §2.2: `importance "," value *("," value)`, importance `required`/`optional`.
fn parse_parameter_value(rest: &str) -> FinalDelivery {
    let mut items = rest.split(',').map(|s| s.trim().trim_matches('"').trim());
    let importance = items.next().unwrap_or_default();
    let required = if importance.eq_ignore_ascii_case("required") {
        true
    } else if importance.eq_ignore_ascii_case("optional") {
        false
    } else {
        return FinalDelivery::Malformed(format!(
            "importance {:?} is neither required nor optional",
            crate::fields::clip(importance)
        ));
    };
    match items.next() {
        Some(v) if v.eq_ignore_ascii_case("true") => FinalDelivery::Requested { required },
        Some(v) if v.eq_ignore_ascii_case("false") => FinalDelivery::NotRequested,
        Some(v) => FinalDelivery::Malformed(format!(
            "value {:?} is neither true nor false",
            crate::fields::clip(v)
        )),
        None => FinalDelivery::Malformed("no value after the importance".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(header: &str) -> FinalDelivery {
        requested(format!("From: a@b.example\r\n{header}\r\n\r\nbody\r\n").as_bytes())
            .final_delivery
    }

    #[test]
    fn absent_option_is_not_requested() {
        let r = requested(b"From: a@b.example\r\nSubject: x\r\n\r\nhi\r\n");
        assert_eq!(r.final_delivery, FinalDelivery::NotRequested);
        assert!(r.disposition_notification_to.is_empty());
    }

    #[test]
    fn optional_and_required_true_direct_ig_3() {
        assert_eq!(
            fd(final_delivery_option_field()),
            FinalDelivery::Requested { required: false }
        );
        assert_eq!(
            fd("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=required,true"),
            FinalDelivery::Requested { required: true }
        );
    }

    #[test]
    fn false_is_not_requested() {
        assert_eq!(
            fd("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,false"),
            FinalDelivery::NotRequested
        );
    }

    #[test]
    fn names_and_keywords_are_case_insensitive() {
        assert_eq!(
            fd("disposition-notification-options: x-direct-final-destination-delivery = Required , TRUE"),
            FinalDelivery::Requested { required: true }
        );
    }

    #[test]
    fn other_parameters_are_skipped_rfc8098_2_2() {
        assert_eq!(
            fd("Disposition-Notification-Options: signed-receipt-protocol=optional,pkcs7-signature; X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true; foo=required,bar"),
            FinalDelivery::Requested { required: false }
        );
        assert_eq!(
            fd("Disposition-Notification-Options: foo=optional,true"),
            FinalDelivery::NotRequested
        );
    }

    #[test]
    fn malformed_values_are_reported() {
        for h in [
            "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=maybe",
            "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY",
            "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,maybe",
            "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional",
        ] {
            assert!(matches!(fd(h), FinalDelivery::Malformed(_)), "{h}");
        }
    }

    #[test]
    fn folded_header_is_unfolded_rfc5322_2_2_3() {
        assert_eq!(
            fd("Disposition-Notification-Options:\r\n X-DIRECT-FINAL-DESTINATION-DELIVERY=\r\n\toptional,true"),
            FinalDelivery::Requested { required: false }
        );
    }

    #[test]
    fn disposition_notification_to_addresses_rfc8098_2_1() {
        let r = requested(
            b"Disposition-Notification-To: Alice <alice@a.example>, bob@b.example\r\nSubject: x\r\n",
        );
        assert_eq!(
            r.disposition_notification_to,
            vec!["alice@a.example".to_string(), "bob@b.example".to_string()]
        );
    }

    #[test]
    fn header_only_and_garbage_inputs_do_not_fail() {
        let r = requested(
            b"Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true",
        );
        assert_eq!(
            r.final_delivery,
            FinalDelivery::Requested { required: false }
        );
        let r = requested(b"");
        assert_eq!(r.final_delivery, FinalDelivery::NotRequested);
        let r = requested(b"\xff\xfe:::\n\n");
        assert_eq!(r.final_delivery, FinalDelivery::NotRequested);
    }
}
