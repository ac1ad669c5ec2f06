//! Discovery answers kept for a short while.
//!
//! Every message to a remote address is discovered twice, when its
//! recipient is accepted (RCPT TO) and again when it is sealed, and each
//! discovery asks DNS (or LDAP) and validates the certificate's path and
//! revocation. A usable answer is kept for `[discovery] cache_secs` and
//! used for both, and for further messages to the same address in that
//! time, as a resolver keeps an answer for its TTL. Only usable answers
//! are kept: a refusal or a temporary failure is asked again every time,
//! so a recipient that becomes a Direct address is accepted at once. An
//! answer is judged against the sender's outgoing anchors: one kept under
//! another anchor store (the CLI changed anchors or bundles since) is not
//! used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hisp_discovery::Discovery;
use hisp_store::{DirectAddress, Domain};
use hisp_trust::Anchors;

/// Addresses kept at most; past it, expired answers are dropped, and all
/// of them if none had expired.
const MAX_KEPT: usize = 10_000;

/// Usable discovery answers by sender domain and recipient address.
#[derive(Default)]
pub struct DiscoveryCache {
    kept: Mutex<HashMap<(Domain, String), Kept>>,
}

struct Kept {
    discovery: Discovery,
    /// The anchor store it was judged against.
    anchors: Arc<Anchors>,
    /// The time it was judged at (Unix seconds): an answer is used only
    /// for a judgement asked within its time to live after that, so a
    /// judgement asked for another time is made again.
    at: i64,
    until: Instant,
}

impl std::fmt::Debug for DiscoveryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryCache")
            .field("kept", &self.lock().len())
            .finish()
    }
}

impl DiscoveryCache {
    /// An empty cache.
    pub fn new() -> Self {
        DiscoveryCache::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(Domain, String), Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer kept for `address` as judged against `anchors`, if it
    /// has not expired and `at` is within its time to live.
    pub fn get(
        &self,
        sender_domain: &Domain,
        address: &DirectAddress,
        anchors: &Arc<Anchors>,
        at: i64,
        now: Instant,
    ) -> Option<Discovery> {
        let key = (sender_domain.clone(), key_of(address));
        let kept = self.lock();
        let k = kept.get(&key)?;
        let left = k.until.checked_duration_since(now)?;
        let fits = at >= k.at && at <= k.at.saturating_add(secs(left).saturating_add(1));
        (fits && Arc::ptr_eq(&k.anchors, anchors)).then(|| k.discovery.clone())
    }

    /// Keeps `discovery`, judged at `at`, for `ttl` when it is usable.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &self,
        sender_domain: &Domain,
        address: &DirectAddress,
        anchors: &Arc<Anchors>,
        discovery: &Discovery,
        at: i64,
        ttl: Duration,
        now: Instant,
    ) {
        if !discovery.usable || ttl.is_zero() {
            return;
        }
        let mut kept = self.lock();
        if kept.len() >= MAX_KEPT {
            kept.retain(|_, k| k.until > now);
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
        }
        kept.insert(
            (sender_domain.clone(), key_of(address)),
            Kept {
                discovery: discovery.clone(),
                anchors: anchors.clone(),
                at,
                until: now + ttl,
            },
        );
    }
}

/// The address as discovery is asked for it.
fn key_of(address: &DirectAddress) -> String {
    address.to_string()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(usable: bool) -> Discovery {
        Discovery {
            address: "bob@b.example".into(),
            usable,
            temporary: false,
            reason: if usable { "usable" } else { "refused" }.into(),
            certificates: Vec::new(),
        }
    }

    fn anchors() -> Arc<Anchors> {
        Arc::new(Anchors::new(Vec::new()).unwrap())
    }

    #[test]
    fn a_usable_answer_is_kept_for_its_time_to_live_under_the_same_anchors_and_time() {
        let (cache, a) = (DiscoveryCache::new(), Domain::parse("a.example").unwrap());
        let bob = DirectAddress::parse("bob@b.example").unwrap();
        let (kept_under, other) = (anchors(), anchors());
        let (t0, ttl) = (Instant::now(), Duration::from_secs(30));
        cache.put(&a, &bob, &kept_under, &answer(true), 1000, ttl, t0);
        let seen = cache.get(&a, &bob, &kept_under, 1010, t0 + Duration::from_secs(10));
        assert_eq!(seen.map(|d| d.reason), Some("usable".to_string()));
        assert!(
            cache
                .get(&a, &bob, &kept_under, 1031, t0 + Duration::from_secs(31))
                .is_none(),
            "expired"
        );
        assert!(
            cache.get(&a, &bob, &other, 1010, t0).is_none(),
            "judged under other anchors"
        );
        assert!(
            cache.get(&a, &bob, &kept_under, 5000, t0).is_none(),
            "asked for a time past its life"
        );
        assert!(
            cache.get(&a, &bob, &kept_under, 999, t0).is_none(),
            "asked for a time before it was judged"
        );
        let c = Domain::parse("c.example").unwrap();
        assert!(
            cache.get(&c, &bob, &kept_under, 1000, t0).is_none(),
            "another sender domain"
        );
    }

    #[test]
    fn refusals_are_never_kept_and_a_zero_time_to_live_keeps_nothing() {
        let (cache, a) = (DiscoveryCache::new(), Domain::parse("a.example").unwrap());
        let bob = DirectAddress::parse("bob@b.example").unwrap();
        let (under, t0) = (anchors(), Instant::now());
        cache.put(
            &a,
            &bob,
            &under,
            &answer(false),
            1000,
            Duration::from_secs(30),
            t0,
        );
        assert!(cache.get(&a, &bob, &under, 1000, t0).is_none());
        cache.put(&a, &bob, &under, &answer(true), 1000, Duration::ZERO, t0);
        assert!(cache.get(&a, &bob, &under, 1000, t0).is_none());
    }
}
