//! Reading a resolver's answer to a CERT query: records, a definite "none",
//! or a failure. Kept apart from the sockets so the rules are in one place.

use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::CERT;
use hickory_resolver::proto::rr::{RData, Record};

/// One CERT record as received.
#[derive(Debug, Clone)]
pub(crate) struct CertRecord {
    /// Its owner name, without the trailing dot.
    pub(crate) owner: String,
    /// Its TTL in seconds.
    pub(crate) ttl: u32,
    /// Its data.
    pub(crate) cert: CERT,
}

/// What one DNS question came to.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// The CERT records in the answer section (possibly after a CNAME).
    Records(Vec<CertRecord>),
    /// NXDOMAIN or NODATA: the name has no CERT record.
    Negative,
    /// The server answered, but not usefully: SERVFAIL, REFUSED, a referral.
    /// The text says which, for logs and the temporary reason.
    Failed(String),
    /// No answer at all: a timeout, no server reachable. Asking other
    /// servers through the same resolver would only time out again.
    Unreachable(String),
}

/// The owner name as hisp prints it: no trailing dot.
pub(crate) fn display_name(name: &hickory_resolver::proto::rr::Name) -> String {
    let text = name.to_ascii();
    text.strip_suffix('.').unwrap_or(&text).to_string()
}

/// The CERT records among `answers`.
pub(crate) fn cert_records(answers: &[Record]) -> Vec<CertRecord> {
    answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CERT(cert) => Some(CertRecord {
                owner: display_name(&r.name),
                ttl: r.ttl,
                cert: cert.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Sorts a resolver error into a definite negative or a failure.
pub(crate) fn classify_error(error: &NetError) -> Answer {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => classify_no_records(no_records),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            Answer::Failed(format!("the name server answered {}", rcode_text(*code)))
        }
        NetError::Timeout => {
            Answer::Unreachable("no answer from the name server (timed out)".into())
        }
        NetError::Io(e) => {
            Answer::Unreachable(format!("the name server could not be reached: {e}"))
        }
        NetError::NoConnections => Answer::Unreachable("no name server could be reached".into()),
        NetError::Truncated => Answer::Failed(
            "the answer was truncated even over TCP (Applicability Statement §5.4)".into(),
        ),
        other => Answer::Failed(format!("DNS error: {other}")),
    }
}

fn classify_no_records(no_records: &NoRecords) -> Answer {
    match no_records.response_code {
        ResponseCode::NXDomain | ResponseCode::NoError => {
            // A referral (NS in the authority section, no SOA) is not an
            // answer: the server asked is not authoritative and did not
            // recurse, so nothing is known yet about the name.
            if no_records.soa.is_none() && no_records.ns.is_some() {
                Answer::Failed("the name server sent a referral instead of an answer".into())
            } else {
                Answer::Negative
            }
        }
        code => Answer::Failed(format!("the name server answered {}", rcode_text(code))),
    }
}

fn rcode_text(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::Query;

    #[test]
    fn nxdomain_and_nodata_are_negative() {
        for code in [ResponseCode::NXDomain, ResponseCode::NoError] {
            let e = NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(Query::new(), code)));
            assert!(matches!(classify_error(&e), Answer::Negative), "{code:?}");
        }
    }

    #[test]
    fn servfail_refused_and_timeout_are_failures() {
        for e in [
            NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)),
            NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)),
            NetError::Timeout,
            NetError::NoConnections,
        ] {
            assert!(
                matches!(
                    classify_error(&e),
                    Answer::Failed(_) | Answer::Unreachable(_)
                ),
                "{e}"
            );
        }
    }
}
