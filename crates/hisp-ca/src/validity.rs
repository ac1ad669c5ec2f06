//! When a certificate is valid.

use openssl::asn1::Asn1Time;
use time::{Duration, OffsetDateTime};

use crate::error::CaError;

/// The validity period of a new certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now (minus a minute, so a peer with a slightly slow clock accepts
    /// it) for this many days.
    Days(u32),
    /// Exactly this period. Both ends may be in the past, to make expired
    /// certificates for tests, or in the future, for not-yet-valid ones.
    Between {
        /// Start of validity.
        not_before: OffsetDateTime,
        /// End of validity; must be after `not_before`.
        not_after: OffsetDateTime,
    },
}

impl Validity {
    /// A period of `days` days that ended one day ago: an expired certificate.
    pub fn expired(days: u32) -> Validity {
        let not_after = OffsetDateTime::now_utc() - Duration::days(1);
        Validity::Between {
            not_before: not_after - Duration::days(i64::from(days.max(1))),
            not_after,
        }
    }

    /// The start and end as UTC times, checked.
    pub fn resolve(&self) -> Result<(OffsetDateTime, OffsetDateTime), CaError> {
        let (not_before, not_after) = match *self {
            Validity::Days(0) => {
                return Err(CaError::InvalidValidity(
                    "a certificate must be valid for at least one day".into(),
                ))
            }
            Validity::Days(days) => {
                let now = OffsetDateTime::now_utc();
                (
                    now - Duration::minutes(1),
                    now + Duration::days(i64::from(days)),
                )
            }
            Validity::Between {
                not_before,
                not_after,
            } => (not_before, not_after),
        };
        if not_after <= not_before {
            return Err(CaError::InvalidValidity(format!(
                "not-after {not_after} is not later than not-before {not_before}"
            )));
        }
        Ok((not_before, not_after))
    }
}

impl Default for Validity {
    /// One year from now.
    fn default() -> Self {
        Validity::Days(365)
    }
}

pub(crate) fn asn1_time(t: OffsetDateTime) -> Result<Asn1Time, CaError> {
    Asn1Time::from_unix(t.unix_timestamp())
        .map_err(|_| CaError::InvalidValidity(format!("{t} cannot be written in a certificate")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_is_refused() {
        assert!(Validity::Days(0).resolve().is_err());
    }

    #[test]
    fn reversed_period_is_refused() {
        let now = OffsetDateTime::now_utc();
        let err = Validity::Between {
            not_before: now,
            not_after: now - Duration::days(1),
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("is not later than"), "{err}");
    }

    #[test]
    fn expired_period_is_in_the_past() {
        let (nb, na) = Validity::expired(30).resolve().unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(na < now && nb < na);
    }
}
