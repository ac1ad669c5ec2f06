//! RFC 5322 date-times, written one way for every hisp crate.
//!
//! Every date hisp writes into a message goes through [`rfc5322`]: the Date
//! field of the mail it composes (portal messages, MDNs, DSNs, notices), the
//! time stamp of the Received fields its listeners add (RFC 5321 §4.4), and
//! the dates inside delivery reports (RFC 3464 `Arrival-Date` and
//! `Last-Attempt-Date`, which RFC 3464 §2.2.5 and §2.3.7 define as RFC 5322
//! date-times). Composing with `mail-builder`, its `Date` writer does the
//! work; this crate is the one door to it, so no date is formatted by hand
//! anywhere else and every date reads the same.
//!
//! No I/O and no clock: the time is a parameter.

use mail_builder::headers::date::Date;
use time::OffsetDateTime;

/// `at` as an RFC 5322 §3.3 date-time in UTC, such as
/// `Fri, 27 Nov 2026 07:01:13 +0000`.
///
/// The instant is kept and the zone is always `+0000`: RFC 5322 lets a
/// writer choose its zone, and one zone makes hisp's dates comparable at a
/// glance. Seconds are whole (a fraction is dropped, as RFC 5322 has none).
/// It cannot fail: any `OffsetDateTime` has a date-time (years outside
/// 0-9999 are written with their digits, which no clock of a running HISP
/// gives).
pub fn rfc5322(at: OffsetDateTime) -> String {
    Date::new(at.unix_timestamp()).to_rfc822()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc2822;
    use time::macros::datetime;

    #[test]
    fn writes_rfc5322_3_3_date_time_in_utc() {
        assert_eq!(
            rfc5322(datetime!(2026-11-27 07:01:13 +00:00)),
            "Fri, 27 Nov 2026 07:01:13 +0000"
        );
        // The same instant from another zone is written in UTC.
        assert_eq!(
            rfc5322(datetime!(2024-02-29 23:59:59 -05:30)),
            "Fri, 1 Mar 2024 05:29:59 +0000"
        );
        assert_eq!(
            rfc5322(OffsetDateTime::UNIX_EPOCH),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
    }

    #[test]
    fn what_it_writes_parses_back_to_the_same_instant() {
        for at in [
            datetime!(2026-11-27 07:01:13.999 +00:00),
            datetime!(2000-01-01 00:00:00 +14:00),
            datetime!(2099-12-31 23:59:59 -12:00),
        ] {
            let text = rfc5322(at);
            let back = OffsetDateTime::parse(&text, &Rfc2822).unwrap();
            assert_eq!(back.unix_timestamp(), at.unix_timestamp(), "{text}");
            let parsed = mail_parser::MessageParser::default()
                .parse_headers(format!("Date: {text}\r\n\r\n").as_bytes())
                .and_then(|m| m.date().map(|d| d.to_timestamp()));
            assert_eq!(parsed, Some(at.unix_timestamp()), "{text}");
        }
    }
}
