//! A cache of DNS CERT answers that respects their TTL.
//!
//! Positive answers live for the smallest TTL of their records; definite
//! negative answers (NXDOMAIN, NODATA) for a short fixed time; temporary
//! failures are never cached, so the next message asks again. Time comes
//! from a [`Clock`] so tests can move it without sleeping.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::types::SourceResult;

/// Where the cache reads the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Entries kept at most; beyond this the expired ones go first, then the
/// ones closest to expiry.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
struct Entry {
    result: SourceResult,
    stored: Instant,
    expires: Instant,
}

/// Owner name (lower-cased) -> answer, until it expires.
#[derive(Debug)]
pub(crate) struct AnswerCache {
    entries: Mutex<HashMap<String, Entry>>,
    negative_ttl: Duration,
}

impl AnswerCache {
    /// A cache that keeps negative answers for `negative_ttl` (zero: never).
    pub(crate) fn new(negative_ttl: Duration) -> Self {
        AnswerCache {
            entries: Mutex::new(HashMap::new()),
            negative_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a map that is still
        // consistent (every operation is a single insert or remove).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached answer for `owner` at `now`, with the certificates' TTLs
    /// lowered by the time already spent in the cache.
    pub(crate) fn get(&self, owner: &str, now: Instant) -> Option<SourceResult> {
        let key = owner.to_ascii_lowercase();
        let mut entries = self.lock();
        let entry = entries.get(&key)?;
        if now >= entry.expires {
            entries.remove(&key);
            return None;
        }
        let elapsed = u32::try_from(now.duration_since(entry.stored).as_secs()).unwrap_or(u32::MAX);
        Some(match &entry.result {
            SourceResult::Found(certs) => SourceResult::Found(
                certs
                    .iter()
                    .map(|c| {
                        let mut c = c.clone();
                        c.ttl = c.ttl.saturating_sub(elapsed);
                        c
                    })
                    .collect(),
            ),
            other => other.clone(),
        })
    }

    /// Remembers `result` for `owner` as of `now`, if it may be cached.
    pub(crate) fn put(&self, owner: &str, result: &SourceResult, now: Instant) {
        let lifetime = match result {
            SourceResult::Found(certs) => certs
                .iter()
                .map(|c| Duration::from_secs(u64::from(c.ttl)))
                .min()
                .unwrap_or(Duration::ZERO),
            SourceResult::NotFound => self.negative_ttl,
            // Issue 4: temporary failures are never remembered.
            SourceResult::Temporary(_) => Duration::ZERO,
        };
        if lifetime.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            owner.to_ascii_lowercase(),
            Entry {
                result: result.clone(),
                stored: now,
                expires: now + lifetime,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FoundCert, Source};

    fn found(ttl: u32) -> SourceResult {
        SourceResult::Found(vec![FoundCert {
            source: Source::Dns,
            owner: "a.example.org".into(),
            der: vec![1, 2, 3],
            ttl,
        }])
    }

    #[test]
    fn positive_answer_lives_for_its_ttl() {
        let cache = AnswerCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        cache.put("A.example.org", &found(300), t0);
        let later = cache.get("a.example.org", t0 + Duration::from_secs(100));
        assert_eq!(later, Some(found(200)));
        assert_eq!(
            cache.get("a.example.org", t0 + Duration::from_secs(300)),
            None
        );
    }

    #[test]
    fn negative_answer_lives_for_the_negative_ttl() {
        let cache = AnswerCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        cache.put("x.example.org", &SourceResult::NotFound, t0);
        assert_eq!(
            cache.get("x.example.org", t0 + Duration::from_secs(59)),
            Some(SourceResult::NotFound)
        );
        assert_eq!(
            cache.get("x.example.org", t0 + Duration::from_secs(60)),
            None
        );
    }

    #[test]
    fn temporary_failure_is_never_cached() {
        let cache = AnswerCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        cache.put(
            "x.example.org",
            &SourceResult::Temporary("SERVFAIL".into()),
            t0,
        );
        assert_eq!(cache.get("x.example.org", t0), None);
    }

    #[test]
    fn zero_ttl_is_not_cached() {
        let cache = AnswerCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.put("a.example.org", &found(0), t0);
        cache.put("x.example.org", &SourceResult::NotFound, t0);
        assert_eq!(cache.get("a.example.org", t0), None);
        assert_eq!(cache.get("x.example.org", t0), None);
    }
}
