//! Login throttling (issue 11, "Accounts"): after [`MAX_FAILURES`] failed
//! logins for one address within [`WINDOW`], further attempts are refused
//! with 429 and `Retry-After` until the oldest of those failures leaves the
//! window; then the right password works again.
//!
//! The failures are the store's `login-failed` audit events, so they count
//! across restarts and across processes sharing the store.

use hisp_store::{AuditFilter, AuditKind, DirectAddress, Store, StoreError};
use time::{Duration, OffsetDateTime};

/// Failed logins for one address that are tolerated within [`WINDOW`].
pub const MAX_FAILURES: u64 = 5;

/// How far back failed logins count.
pub const WINDOW: Duration = Duration::minutes(15);

/// The throttle's verdict on a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password may be checked.
    Allowed,
    /// Refused without checking the password: try again after this many
    /// seconds (at least 1).
    Throttled {
        /// Seconds until an attempt is allowed again.
        retry_after: u64,
    },
}

/// Decides whether a login for an address may be tried now.
#[derive(Debug, Clone, Copy)]
pub struct LoginThrottle {
    max_failures: u64,
    window: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            max_failures: MAX_FAILURES,
            window: WINDOW,
        }
    }
}

impl LoginThrottle {
    /// Whether a login as `address` may be tried at `now`.
    pub fn check(
        &self,
        store: &dyn Store,
        address: &DirectAddress,
        now: OffsetDateTime,
    ) -> Result<Verdict, StoreError> {
        let since = now - self.window;
        let failures = store.failed_portal_logins(address, since)?;
        if failures < self.max_failures {
            return Ok(Verdict::Allowed);
        }
        // Attempts are allowed again once fewer than `max_failures` of them
        // are inside the window: when the failure that many places from the
        // newest leaves it.
        let mut times: Vec<OffsetDateTime> = store
            .audit_export(&AuditFilter {
                since: Some(since),
                address: Some(address.clone()),
            })?
            .into_iter()
            .filter(|e| e.kind == AuditKind::LoginFailed && e.address.as_ref() == Some(address))
            .map(|e| e.at)
            .collect();
        times.sort_unstable();
        let excess = times.len().saturating_sub(self.max_failures as usize);
        let leaves_at = times
            .get(excess)
            .map_or(now + self.window, |at| *at + self.window);
        let wait = (leaves_at - now).whole_seconds().max(1);
        Ok(Verdict::Throttled {
            retry_after: u64::try_from(wait).unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hisp_store::{Domain, NotifySettings, SqliteStore};

    #[test]
    fn the_sixth_attempt_waits_until_the_oldest_of_five_failures_is_fifteen_minutes_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        store
            .add_domain(&Domain::parse("a.example").unwrap(), &[])
            .unwrap();
        let pat = DirectAddress::parse("pat@a.example").unwrap();
        store.add_address(&pat, &[]).unwrap();
        store
            .add_portal_user(&pat, "a long portal password", &NotifySettings::default())
            .unwrap();
        let throttle = LoginThrottle::default();
        // The store stamps failures with the system clock, to the second.
        let start = OffsetDateTime::now_utc();
        for n in 0..MAX_FAILURES {
            assert_eq!(
                throttle.check(&store, &pat, start).unwrap(),
                Verdict::Allowed,
                "{n}"
            );
            assert!(store.verify_portal_login(&pat, "wrong password!!").is_err());
        }
        let first = store
            .audit_export(&AuditFilter::default())
            .unwrap()
            .into_iter()
            .find(|e| e.kind == AuditKind::LoginFailed)
            .unwrap()
            .at;
        let wait = |now: OffsetDateTime| match throttle.check(&store, &pat, now).unwrap() {
            Verdict::Throttled { retry_after } => Some(retry_after),
            Verdict::Allowed => None,
        };
        let expect = |now: OffsetDateTime| {
            u64::try_from((first + WINDOW - now).whole_seconds().max(1)).unwrap()
        };
        let now = first + Duration::seconds(1);
        assert_eq!(wait(now), Some(expect(now)));
        let later = first + Duration::minutes(10);
        assert_eq!(wait(later), Some(expect(later)));
        assert_eq!(wait(later), Some(300));
        // A fake clock past the window: the right password may be tried again.
        assert_eq!(wait(first + WINDOW + Duration::seconds(1)), None);
        // Another address is not held back by pat's failures.
        let sam = DirectAddress::parse("sam@a.example").unwrap();
        assert_eq!(throttle.check(&store, &sam, now).unwrap(), Verdict::Allowed);
    }
}
