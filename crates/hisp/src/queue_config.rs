//! `[queue]`: the queue engine of `hisp serve` — how many messages it
//! handles at once, how many for one destination, the retry schedule, how
//! long a message is tried, how often it sweeps, and how long a claim
//! (lease) holds a message. Checked and applied to the gateway's
//! `WorkerSettings`.

use std::time::Duration;

use hisp_gateway::{
    default_concurrency, RetrySchedule, WorkerSettings, DEFAULT_LEASE, DEFAULT_PER_DESTINATION,
};
use serde::Deserialize;

use crate::config::SmtpConfig;

/// `[queue]`: the queue engine.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Queued messages handled at the same time. Unset: `[smtp]
    /// relay_concurrency` if that is set, else four per processor core (at
    /// least 8).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Most of them for one destination (a recipient domain), so that a
    /// destination that is slow or down holds only its own. Default 4.
    #[serde(default = "default_per_destination")]
    pub per_destination: usize,
    /// Seconds before the first retry of a message that could not be
    /// delivered yet; doubled for each further attempt. Default 60.
    #[serde(default = "default_retry_base_secs")]
    pub retry_base_secs: u64,
    /// Longest wait between two attempts, in seconds. Default 3600.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// Seconds a message is tried before it is given up (its recipients
    /// not yet relayed fail, and the sender gets a DSN). Default 86400.
    #[serde(default = "default_lifetime_secs")]
    pub lifetime_secs: u64,
    /// Seconds between the engine's looks at the queue when nothing wakes
    /// it; MDN timeouts are checked then. Default 15.
    #[serde(default = "default_sweep_secs")]
    pub sweep_secs: u64,
    /// Seconds a claim holds a message before another instance sharing the
    /// store may take it; renewed every third of it while the message is in
    /// hand, so it bounds how long a killed instance's messages wait.
    /// Default 120, at least [`MIN_LEASE_SECS`].
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

/// The shortest `[queue] lease_secs`: the lease is renewed every third of
/// it, and the store keeps its end in whole seconds (rounded up), so below
/// this a renewal delayed by a second or two (a busy database, a slow
/// machine) would let another instance take a message still in hand.
pub const MIN_LEASE_SECS: u64 = 6;

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: None,
            per_destination: default_per_destination(),
            retry_base_secs: default_retry_base_secs(),
            retry_max_secs: default_retry_max_secs(),
            lifetime_secs: default_lifetime_secs(),
            sweep_secs: default_sweep_secs(),
            lease_secs: default_lease_secs(),
        }
    }
}

fn default_per_destination() -> usize {
    DEFAULT_PER_DESTINATION
}

fn default_retry_base_secs() -> u64 {
    RetrySchedule::DEFAULT.base.as_secs()
}

fn default_retry_max_secs() -> u64 {
    RetrySchedule::DEFAULT.max.as_secs()
}

fn default_lifetime_secs() -> u64 {
    24 * 3600
}

fn default_sweep_secs() -> u64 {
    15
}

fn default_lease_secs() -> u64 {
    DEFAULT_LEASE.as_secs()
}

/// Refuses values that would stop the queue, naming the key.
pub(crate) fn check(queue: &QueueConfig) -> anyhow::Result<()> {
    if queue.concurrency == Some(0) {
        anyhow::bail!("[queue] concurrency is 0: give at least 1, or nothing is ever sent");
    }
    for (key, value) in [
        ("per_destination", queue.per_destination as u64),
        ("retry_base_secs", queue.retry_base_secs),
        ("retry_max_secs", queue.retry_max_secs),
        ("lifetime_secs", queue.lifetime_secs),
        ("sweep_secs", queue.sweep_secs),
    ] {
        if value == 0 {
            anyhow::bail!("[queue] {key} is 0: it must be at least 1");
        }
    }
    if queue.lease_secs < MIN_LEASE_SECS {
        anyhow::bail!(
            "[queue] lease_secs is {}: it must be at least {MIN_LEASE_SECS}, since the lease is renewed every third of it and a shorter one could run out while its message is still in hand",
            queue.lease_secs
        );
    }
    if queue.retry_max_secs < queue.retry_base_secs {
        anyhow::bail!(
            "[queue] retry_max_secs ({}) is less than retry_base_secs ({}): the longest wait cannot be shorter than the first",
            queue.retry_max_secs,
            queue.retry_base_secs
        );
    }
    Ok(())
}

/// The number of messages handled at once: `[queue] concurrency`, else
/// `[smtp] relay_concurrency`, else the default.
pub(crate) fn concurrency(queue: &QueueConfig, smtp: &SmtpConfig) -> usize {
    queue
        .concurrency
        .or(smtp.relay_concurrency)
        .unwrap_or_else(default_concurrency)
        .max(1)
}

/// Sets the engine's concurrency, per-destination cap, retry schedule,
/// lifetime, sweep and lease from `[queue]` (as [`check`]ed).
pub(crate) fn apply(queue: &QueueConfig, smtp: &SmtpConfig, settings: &mut WorkerSettings) {
    settings.concurrency = concurrency(queue, smtp);
    settings.per_destination = queue.per_destination.max(1);
    settings.retry = RetrySchedule {
        base: Duration::from_secs(queue.retry_base_secs.max(1)),
        max: Duration::from_secs(queue.retry_max_secs.max(queue.retry_base_secs).max(1)),
    };
    settings.lifetime = Duration::from_secs(queue.lifetime_secs.max(1));
    settings.sweep_interval = Duration::from_secs(queue.sweep_secs.max(1));
    settings.lease = Duration::from_secs(queue.lease_secs.max(MIN_LEASE_SECS));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn queue_section_has_documented_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.queue, QueueConfig::default());
        assert_eq!(c.queue.concurrency, None);
        assert_eq!(
            (
                c.queue.per_destination,
                c.queue.retry_base_secs,
                c.queue.retry_max_secs,
                c.queue.lifetime_secs,
                c.queue.sweep_secs,
                c.queue.lease_secs
            ),
            (4, 60, 3600, 86400, 15, 120)
        );
        assert_eq!(check(&c.queue).ok(), Some(()));
        let mut s = WorkerSettings::new("h");
        apply(&c.queue, &c.smtp, &mut s);
        assert_eq!(s.concurrency, default_concurrency());
        assert_eq!(s.retry, RetrySchedule::DEFAULT);
        assert_eq!(s.lifetime, Duration::from_secs(86400));
        assert_eq!(s.lease, Duration::from_secs(120));
        assert_eq!(s.lease, DEFAULT_LEASE, "the engine's own default");
    }

    #[test]
    fn queue_keys_are_read_and_applied() {
        let c = Config::parse(
            "[queue]\nconcurrency = 3\nper_destination = 2\nretry_base_secs = 5\n\
             retry_max_secs = 40\nlifetime_secs = 600\nsweep_secs = 2\nlease_secs = 15\n",
        )
        .unwrap();
        let mut s = WorkerSettings::new("h");
        apply(&c.queue, &c.smtp, &mut s);
        assert_eq!((s.concurrency, s.per_destination), (3, 2));
        assert_eq!(s.backoff(1), Duration::from_secs(5));
        assert_eq!(s.backoff(4), Duration::from_secs(40));
        assert_eq!(s.lifetime, Duration::from_secs(600));
        assert_eq!(s.sweep_interval, Duration::from_secs(2));
        assert_eq!(s.lease, Duration::from_secs(15));
        let e = Config::parse("[queue]\nretries = 3\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `retries`"), "{e}");
    }

    #[test]
    fn relay_concurrency_still_counts_when_queue_concurrency_is_unset() {
        let c = Config::parse("[smtp]\nrelay_concurrency = 6\n").unwrap();
        assert_eq!(concurrency(&c.queue, &c.smtp), 6);
        let c = Config::parse("[smtp]\nrelay_concurrency = 6\n[queue]\nconcurrency = 2\n").unwrap();
        assert_eq!(concurrency(&c.queue, &c.smtp), 2, "[queue] wins");
    }

    #[test]
    fn a_queue_that_could_not_run_is_refused_naming_the_key() {
        for (text, want) in [
            ("concurrency = 0", "[queue] concurrency is 0"),
            ("per_destination = 0", "[queue] per_destination is 0"),
            ("retry_base_secs = 0", "[queue] retry_base_secs is 0"),
            ("sweep_secs = 0", "[queue] sweep_secs is 0"),
            (
                "lease_secs = 0",
                "[queue] lease_secs is 0: it must be at least 6",
            ),
            (
                "lease_secs = 5",
                "[queue] lease_secs is 5: it must be at least 6",
            ),
            (
                "retry_base_secs = 100\nretry_max_secs = 10",
                "retry_max_secs (10) is less than retry_base_secs (100)",
            ),
        ] {
            let c = Config::parse(&format!("[queue]\n{text}\n")).unwrap();
            let e = check(&c.queue).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn the_shortest_lease_is_accepted_and_renewed_every_two_seconds() {
        let c = Config::parse("[queue]\nlease_secs = 6\n").unwrap();
        assert_eq!(check(&c.queue).ok(), Some(()));
        let mut s = WorkerSettings::new("h");
        apply(&c.queue, &c.smtp, &mut s);
        assert_eq!(s.lease, Duration::from_secs(6));
        assert_eq!(s.lease_renewal(), Duration::from_secs(2));
    }
}
