//! When a queue entry that could not be finished is tried again: the retry
//! schedule (`[queue] retry_base_secs` and `retry_max_secs`).

use std::time::Duration;

/// Delays between attempts at one queue entry: `base` after the first
/// attempt, doubled after each further one, never more than `max`. An
/// entry is tried until its lifetime ends
/// ([`WorkerSettings::lifetime`](super::WorkerSettings::lifetime)).
///
/// With the defaults (1 minute, at most 1 hour) the attempts of a message to
/// a peer that stays down are 1, 2, 4, 8, 16, 32 minutes apart, then hourly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Delay after the first attempt.
    pub base: Duration,
    /// Longest delay between two attempts.
    pub max: Duration,
}

impl RetrySchedule {
    /// 1 minute, doubling up to 1 hour.
    pub const DEFAULT: RetrySchedule = RetrySchedule {
        base: Duration::from_secs(60),
        max: Duration::from_secs(3600),
    };

    /// The delay after attempt number `attempts` (1 for the first):
    /// `base * 2^(attempts-1)`, at most `max`.
    pub fn delay(&self, attempts: u32) -> Duration {
        Self::doubled(self.base, attempts, self.max)
    }

    /// [`delay`](Self::delay) from another first delay (portal notices have
    /// their own, `[notify] retry_base_secs`), with this schedule's maximum.
    pub fn delay_from(&self, base: Duration, attempts: u32) -> Duration {
        Self::doubled(base, attempts, self.max)
    }

    fn doubled(base: Duration, attempts: u32, max: Duration) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        base.checked_mul(factor).map_or(max, |d| d.min(max))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_doubles_from_a_minute_up_to_an_hour() {
        let s = RetrySchedule::default();
        let minutes: Vec<u64> = (1..=8).map(|n| s.delay(n).as_secs() / 60).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(s.delay(400), Duration::from_secs(3600));
        assert_eq!(s.delay(0), Duration::from_secs(60), "as after the first");
    }

    #[test]
    fn a_configured_schedule_is_followed() {
        let s = RetrySchedule {
            base: Duration::from_secs(5),
            max: Duration::from_secs(30),
        };
        let secs: Vec<u64> = (1..=5).map(|n| s.delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 30, 30]);
        assert_eq!(s.delay_from(Duration::from_secs(1), 3).as_secs(), 4);
    }
}
