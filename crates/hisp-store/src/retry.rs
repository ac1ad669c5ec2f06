//! Running a store call again after a retryable failure (busy, serialization
//! failure, connection lost: [`StoreError::is_retryable`]).
//!
//! Every store call is one transaction, so a call that failed left nothing
//! behind and running it again is safe. The attempts are few and the waits
//! short: a busy SQLite has already waited its busy timeout inside the
//! call, and a serialization failure wants only a new transaction. The
//! wait between attempts grows and is jittered, so contending processes do
//! not collide again in step.

use std::time::Duration;

use rand::Rng;

use crate::error::StoreError;

/// How often and how patiently [`retry`] runs a call again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting about 25, 50 and 100 ms between them.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// `attempts` attempts without waiting between them, for tests.
    pub fn immediate(attempts: u32) -> Self {
        RetryPolicy {
            attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// The wait after failed attempt `attempt` (1 for the first): the
    /// doubled base capped at `max_delay`, then a uniform draw between half
    /// of it and all of it (so contending callers spread out, and none
    /// retries at once).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let full = doubled.min(self.max_delay);
        if full.is_zero() {
            return full;
        }
        let half = full / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=full - half)
    }
}

/// Runs `call` until it succeeds, fails with an error that is not
/// retryable, or has had `policy.attempts` attempts; the last result is
/// returned. Sleeps the calling thread between attempts: call it where
/// blocking is allowed (a store call's thread). Each retried failure is
/// logged as a warning naming `what` (the store call, e.g. "claiming due
/// queue items"), the attempt and the error.
pub fn retry<T>(
    policy: &RetryPolicy,
    what: &str,
    mut call: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        match call() {
            Err(e) if e.is_retryable() && attempt < attempts => {
                let wait = policy.delay(attempt);
                tracing::warn!(
                    call = what,
                    attempt,
                    of = attempts,
                    wait_ms = wait.as_millis() as u64,
                    error = %e,
                    "store call failed, retrying"
                );
                std::thread::sleep(wait);
                attempt += 1;
            }
            Err(e) => {
                if e.is_retryable() {
                    tracing::error!(call = what, attempts, error = %e, "store call failed after every retry");
                }
                return Err(e);
            }
            Ok(value) => return Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DatabaseErrorKind;

    fn failure(kind: DatabaseErrorKind) -> StoreError {
        StoreError::Database {
            context: "claiming due queue items",
            kind,
            message: "test".to_string(),
        }
    }

    #[test]
    fn a_busy_failure_is_retried_until_the_call_succeeds() {
        let mut calls = 0;
        let result = retry(&RetryPolicy::immediate(4), "claiming", || {
            calls += 1;
            if calls < 3 {
                Err(failure(DatabaseErrorKind::Busy))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls, 3);
    }

    #[test]
    fn serialization_failure_and_connection_lost_are_retried() {
        for kind in [
            DatabaseErrorKind::Serialization,
            DatabaseErrorKind::ConnectionLost,
        ] {
            let mut calls = 0;
            let result = retry(&RetryPolicy::immediate(2), "tracking", || {
                calls += 1;
                if calls == 1 {
                    Err(failure(kind))
                } else {
                    Ok(())
                }
            });
            assert!(result.is_ok(), "{kind}");
            assert_eq!(calls, 2, "{kind}");
        }
    }

    #[test]
    fn a_failure_that_is_not_retryable_is_returned_at_once() {
        let not_retryable = [
            failure(DatabaseErrorKind::Constraint),
            failure(DatabaseErrorKind::Other),
            StoreError::LeaseLost { item: 7 },
        ];
        for error in not_retryable {
            let text = error.to_string();
            let mut error = Some(error);
            let mut calls = 0;
            let result: Result<(), _> = retry(&RetryPolicy::immediate(4), "completing", || {
                calls += 1;
                Err(error.take().expect("called once"))
            });
            assert_eq!(result.unwrap_err().to_string(), text);
            assert_eq!(calls, 1, "{text}");
        }
    }

    #[test]
    fn retries_stop_after_the_attempts_and_return_the_last_failure() {
        let mut calls = 0;
        let result: Result<(), _> = retry(&RetryPolicy::immediate(3), "claiming", || {
            calls += 1;
            Err(failure(DatabaseErrorKind::Busy))
        });
        assert_eq!(calls, 3);
        assert!(result.unwrap_err().is_retryable());
    }

    #[test]
    fn delays_grow_stay_under_the_cap_and_are_jittered_within_half() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        };
        for (attempt, full) in [(1, 20), (2, 40), (3, 80), (4, 100), (9, 100)] {
            for _ in 0..50 {
                let d = policy.delay(attempt);
                assert!(
                    d >= Duration::from_millis(full / 2) && d <= Duration::from_millis(full),
                    "attempt {attempt}: {d:?}"
                );
            }
        }
        assert_eq!(RetryPolicy::immediate(3).delay(2), Duration::ZERO);
    }
}
