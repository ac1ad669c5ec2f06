//! How certificates and times are named in verdicts and logs: the subject and
//! serial of a certificate, instants as RFC 3339.

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509NameRef, X509Ref};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::TrustError;

/// A one-line distinguished name, attributes in the certificate's order
/// (`O=Example, CN=a@b.org`), for messages.
pub fn name_line(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_string)
                .unwrap_or_else(|_| e.object().to_string());
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={value}")
        })
        .collect();
    if parts.is_empty() {
        "(empty name)".to_string()
    } else {
        parts.join(", ")
    }
}

/// The serial number in upper-case hexadecimal, as `openssl x509 -serial` prints it.
pub fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_else(|_| "?".to_string())
}

/// Names a certificate for a human: `'CN=..' (serial 0A1B..)`.
pub fn cert_id(cert: &X509Ref) -> String {
    format!(
        "'{}' (serial {})",
        name_line(cert.subject_name()),
        serial_hex(cert)
    )
}

/// An ASN.1 time as Unix seconds.
pub fn unix_of(t: &Asn1TimeRef) -> Result<i64, TrustError> {
    let epoch = Asn1Time::from_unix(0).map_err(TrustError::crypto("making the epoch"))?;
    let diff = epoch
        .diff(t)
        .map_err(|e| TrustError::Time(format!("cannot read {t}: {e}")))?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// Unix seconds as RFC 3339 UTC (`2026-01-31T12:00:00Z`), or the bare number
/// when out of range.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}

/// An ASN.1 time as RFC 3339, or as OpenSSL prints it when it cannot be read.
pub fn asn1_rfc3339(t: &Asn1TimeRef) -> String {
    unix_of(t).map(rfc3339).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_time_round_trips_through_unix_seconds() {
        let t = Asn1Time::from_unix(1_700_000_123).unwrap();
        assert_eq!(unix_of(&t).unwrap(), 1_700_000_123);
        assert_eq!(asn1_rfc3339(&t), "2023-11-14T22:15:23Z");
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        let t = Asn1Time::from_unix(-86_401).unwrap();
        assert_eq!(unix_of(&t).unwrap(), -86_401);
    }
}
