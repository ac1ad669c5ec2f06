//! What stands between AUTH and the password check: a bound on the checks
//! that run at once, and a throttle on failed logins per client address and
//! per account.
//!
//! A password check (argon2id) takes about 19 MiB and tens of milliseconds
//! on purpose, so a burst of parallel AUTHs would take the process's memory
//! with it: the checks wait for one of [`AuthLimits::max_concurrent`] places,
//! at most [`AuthLimits::queue_wait`], else the client gets `454 4.7.0`.
//!
//! Failed logins are counted per client address (IPv6 by /64, see
//! [`hisp_smtp::limits::client_key`]) and per account name, each in a window
//! that starts at its first failure and lasts [`AuthLimits::window`]. Once
//! either count reaches its limit, AUTH from that address (or for that
//! account) is refused with `454 4.7.0` without checking the password, until
//! the window ends; then the right password works again. An address that
//! logged in to an account within [`REMEMBER_LOGIN`] is not held back by that
//! account's count (only by its own address's), so failures from elsewhere
//! cannot lock a portal out. The counts live in this process's memory only:
//! a restart forgets them, and processes sharing a database count apart.
//!
//! The counting is written here rather than taken from a rate-limiting
//! crate: those count every request and offer no way to ask "is this key
//! held back?" without spending a request, while only failures count here.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hisp_smtp::limits::client_key;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a successful login exempts its address from the account's count.
pub const REMEMBER_LOGIN: Duration = Duration::from_secs(24 * 3600);

/// Most keys each table tracks; past it the stalest entries are dropped, so
/// a flood of addresses or names cannot grow the process without bound.
const MAX_TRACKED: usize = 10_000;

/// The limits of [`AuthGuard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLimits {
    /// Most password checks running at once.
    pub max_concurrent: usize,
    /// How long an AUTH waits for a place to check its password before it
    /// gets `454 4.7.0`.
    pub queue_wait: Duration,
    /// How long failures count, from the first one of a key.
    pub window: Duration,
    /// Failures from one address within the window before AUTH from it is
    /// refused.
    pub per_address: u32,
    /// Failures for one account within the window before AUTH for it is
    /// refused (except from an address it logged in from recently).
    pub per_account: u32,
}

impl Default for AuthLimits {
    /// Four checks at once, 30 s queue, 10 failures per address and per
    /// account within 15 minutes.
    fn default() -> Self {
        AuthLimits {
            max_concurrent: 4,
            queue_wait: Duration::from_secs(30),
            window: Duration::from_secs(900),
            per_address: 10,
            per_account: 10,
        }
    }
}

/// Why an AUTH is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Too many failures from the client's address.
    Address {
        /// The address as counted.
        key: IpAddr,
        /// When the window ends.
        retry_after: Duration,
    },
    /// Too many failures for the account.
    Account {
        /// When the window ends.
        retry_after: Duration,
    },
}

/// Failures of one key in its window.
#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since: Instant,
}

impl Count {
    fn live(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.since) < window
    }
}

/// The failure counts and the remembered logins.
#[derive(Debug, Default)]
struct Counts {
    by_address: HashMap<IpAddr, Count>,
    by_account: HashMap<String, Count>,
    logins: HashMap<(String, IpAddr), Instant>,
}

/// The bound on parallel checks and the failed-login throttle, shared by the
/// listeners of one process.
#[derive(Debug, Clone)]
pub struct AuthGuard {
    limits: Arc<AuthLimits>,
    places: Arc<Semaphore>,
    counts: Arc<Mutex<Counts>>,
}

impl Default for AuthGuard {
    fn default() -> Self {
        AuthGuard::new(AuthLimits::default())
    }
}

/// The account name as counted: names are compared without letter case, so
/// a guesser gains nothing by varying it.
fn account_key(account: &str) -> String {
    account.to_ascii_lowercase()
}

impl AuthGuard {
    /// A guard with `limits` (at least one check at a time).
    pub fn new(limits: AuthLimits) -> Self {
        AuthGuard {
            places: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            limits: Arc::new(limits),
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &AuthLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Every update leaves the tables consistent, so a panic elsewhere
        // while holding the lock does not make them unusable.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an AUTH from `peer` for `account` (`None`: a name that cannot
    /// be an account) may have its password checked at `now`.
    pub fn check(&self, peer: IpAddr, account: Option<&str>, now: Instant) -> Result<(), Hold> {
        let key = client_key(peer);
        let window = self.limits.window;
        let counts = self.lock();
        let held = |count: Option<&Count>, limit: u32| {
            count
                .filter(|c| c.live(now, window) && c.failures >= limit)
                .map(|c| (c.since + window).saturating_duration_since(now))
        };
        if let Some(retry_after) = held(counts.by_address.get(&key), self.limits.per_address) {
            return Err(Hold::Address { key, retry_after });
        }
        let Some(account) = account.map(account_key) else {
            return Ok(());
        };
        if let Some(retry_after) = held(counts.by_account.get(&account), self.limits.per_account) {
            let known = counts
                .logins
                .get(&(account, key))
                .is_some_and(|at| now.saturating_duration_since(*at) < REMEMBER_LOGIN);
            if !known {
                return Err(Hold::Account { retry_after });
            }
        }
        Ok(())
    }

    /// Counts a failed login from `peer` for `account`; whether this failure
    /// reached a limit (the next AUTH from there, or for it, is held back).
    pub fn failed(&self, peer: IpAddr, account: Option<&str>, now: Instant) -> bool {
        let key = client_key(peer);
        let window = self.limits.window;
        let mut counts = self.lock();
        let by_address = count_failure(&mut counts.by_address, key, now, window);
        let mut reached = by_address >= self.limits.per_address;
        if let Some(account) = account {
            let n = count_failure(&mut counts.by_account, account_key(account), now, window);
            reached |= n >= self.limits.per_account;
        }
        reached
    }

    /// Remembers that `peer` logged in as `account`.
    pub fn succeeded(&self, peer: IpAddr, account: &str, now: Instant) {
        let mut counts = self.lock();
        let logins = &mut counts.logins;
        let key = (account_key(account), client_key(peer));
        if !logins.contains_key(&key) && logins.len() >= MAX_TRACKED {
            logins.retain(|_, at| now.saturating_duration_since(*at) < REMEMBER_LOGIN);
            evict_oldest(logins, |at| *at);
        }
        logins.insert(key, now);
    }

    /// A place to check one password, waiting at most
    /// [`AuthLimits::queue_wait`]; `None` when none came free. The check
    /// must hold the permit until it ends (on the blocking pool too).
    pub async fn place(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(self.limits.queue_wait, self.places.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// Adds a failure to `key`'s count (a new window if the last one ended);
/// the count now.
fn count_failure<K: Hash + Eq + Clone>(
    table: &mut HashMap<K, Count>,
    key: K,
    now: Instant,
    window: Duration,
) -> u32 {
    if !table.contains_key(&key) && table.len() >= MAX_TRACKED {
        table.retain(|_, c| c.live(now, window));
        evict_oldest(table, |c| c.since);
    }
    let count = table.entry(key).or_insert(Count {
        failures: 0,
        since: now,
    });
    if !count.live(now, window) {
        *count = Count {
            failures: 0,
            since: now,
        };
    }
    count.failures = count.failures.saturating_add(1);
    count.failures
}

/// Drops the entry with the oldest time while the table is full.
fn evict_oldest<K: Hash + Eq + Clone, V>(table: &mut HashMap<K, V>, at: impl Fn(&V) -> Instant) {
    while table.len() >= MAX_TRACKED {
        let Some(oldest) = table
            .iter()
            .min_by_key(|(_, v)| at(v))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        table.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_address: u32, per_account: u32) -> AuthGuard {
        AuthGuard::new(AuthLimits {
            per_address,
            per_account,
            window: Duration::from_secs(60),
            ..AuthLimits::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_held_after_its_limit_until_the_window_ends() {
        let g = guard(3, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for i in 0..3 {
            assert_eq!(g.check(a, Some(&format!("u{i}")), t0), Ok(()));
            assert_eq!(g.failed(a, Some(&format!("u{i}")), t0), i == 2);
        }
        let held = g.check(a, Some("portal"), t0 + Duration::from_secs(10));
        assert_eq!(
            held,
            Err(Hold::Address {
                key: a,
                retry_after: Duration::from_secs(50)
            })
        );
        assert_eq!(g.check(ip("192.0.2.2"), Some("portal"), t0), Ok(()));
        assert_eq!(
            g.check(a, Some("portal"), t0 + Duration::from_secs(60)),
            Ok(())
        );
    }

    #[test]
    fn an_account_is_held_except_from_an_address_it_logged_in_from() {
        let g = guard(100, 2);
        let t0 = Instant::now();
        g.succeeded(ip("127.0.0.1"), "portal", t0);
        g.failed(ip("192.0.2.1"), Some("portal"), t0);
        g.failed(ip("192.0.2.2"), Some("Portal"), t0);
        assert!(matches!(
            g.check(ip("192.0.2.3"), Some("PORTAL"), t0),
            Err(Hold::Account { .. })
        ));
        assert_eq!(g.check(ip("127.0.0.1"), Some("portal"), t0), Ok(()));
        assert_eq!(g.check(ip("192.0.2.3"), Some("other"), t0), Ok(()));
        let later = t0 + Duration::from_secs(61);
        assert_eq!(g.check(ip("192.0.2.3"), Some("portal"), later), Ok(()));
    }

    #[test]
    fn a_failure_after_the_window_starts_a_new_count() {
        let g = guard(2, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.9");
        assert!(!g.failed(a, None, t0));
        assert!(!g.failed(a, None, t0 + Duration::from_secs(61)));
        assert_eq!(g.check(a, None, t0 + Duration::from_secs(62)), Ok(()));
    }

    #[test]
    fn the_tables_stay_bounded_under_a_flood_of_names() {
        let g = guard(u32::MAX, u32::MAX);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED + 50) {
            g.failed(ip("192.0.2.1"), Some(&format!("name-{i}")), t0);
        }
        assert!(g.lock().by_account.len() <= MAX_TRACKED);
    }

    #[tokio::test]
    async fn places_are_bounded_and_a_waiter_gives_up_after_the_queue_wait() {
        let g = AuthGuard::new(AuthLimits {
            max_concurrent: 2,
            queue_wait: Duration::from_millis(50),
            ..AuthLimits::default()
        });
        let first = g.place().await;
        let second = g.place().await;
        assert!(first.is_some() && second.is_some());
        assert!(g.place().await.is_none());
        drop(first);
        assert!(g.place().await.is_some());
    }
}
