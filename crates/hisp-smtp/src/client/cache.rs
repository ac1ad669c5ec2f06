//! A short-lived cache of open sessions per destination, so that several messages
//! for one server travel over one SMTP session.
//!
//! A session is kept after a transaction when it is still open, has carried fewer
//! than [`ReuseSettings::max_messages`] transactions, and keeping it leaves no more
//! than [`ReuseSettings::per_destination`] sessions open to its destination (in use
//! and idle together). The next delivery to the same destination (address, TLS name
//! and TLS settings) takes it instead of connecting, and begins with RSET (RFC 5321
//! §4.1.1.5). A session left idle for [`ReuseSettings::idle`] is ended with QUIT.
//!
//! A cached session may have been closed by the server meanwhile (its idle timeout,
//! a restart: EOF, a reset, or 421). When that shows before the message text was
//! handed over, the session is dropped and the delivery made once more on a new
//! connection, within the same attempt: the caller sees only the second outcome.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tracing::{debug, info, info_span, Instrument};

use super::session::OutboundSession;
use super::{ClientConfig, ClientError, DeliveryReport, OutboundEnvelope, Peer};

/// Longest wait for the reply to a QUIT that ends a cached session: closing is
/// never on a delivery's path, and a stop should not wait on a silent peer.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// How sessions are kept for reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseSettings {
    /// How long an idle session is kept before it is ended with QUIT; zero keeps
    /// none (every message has a session of its own).
    pub idle: Duration,
    /// Most transactions one session carries; then it is ended with QUIT.
    pub max_messages: usize,
    /// Most sessions open to one destination (in use and idle together) after
    /// which a session that finished a transaction is ended rather than kept; 0
    /// for no cap.
    pub per_destination: usize,
}

impl ReuseSettings {
    /// Defaults: sessions kept [`DEFAULT_IDLE`](Self::DEFAULT_IDLE) and for
    /// [`DEFAULT_MAX_MESSAGES`](Self::DEFAULT_MAX_MESSAGES) transactions, at most 4
    /// per destination.
    pub const DEFAULT: ReuseSettings = ReuseSettings {
        idle: Self::DEFAULT_IDLE,
        max_messages: Self::DEFAULT_MAX_MESSAGES,
        per_destination: 4,
    };

    /// Default of [`idle`](Self::idle): 5 seconds.
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(5);

    /// Default of [`max_messages`](Self::max_messages): 100.
    pub const DEFAULT_MAX_MESSAGES: usize = 100;

    fn keeps_sessions(&self) -> bool {
        !self.idle.is_zero() && self.max_messages > 1
    }
}

impl Default for ReuseSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where a session goes: the sessions of one key are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Destination {
    addr: SocketAddr,
    tls_name: String,
    tls: bool,
    require_tls: bool,
}

impl Destination {
    fn of(config: &ClientConfig, peer: &Peer) -> Self {
        Destination {
            addr: peer.addr,
            tls_name: peer.name.clone(),
            tls: config.tls.is_some(),
            require_tls: config.require_tls,
        }
    }
}

/// A session with its place in the count of its destination's open sessions,
/// given back when it is dropped (however the task holding it ends).
struct Held {
    session: OutboundSession,
    open: Counted,
}

struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Counted(count)
    }

    fn now(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Inner {
    idle: HashMap<Destination, Vec<(u64, Held)>>,
    open: HashMap<Destination, Arc<AtomicUsize>>,
    next_id: u64,
    stats: CacheStats,
}

/// What a [`SessionCache`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Sessions opened.
    pub opened: usize,
    /// Deliveries made over a kept session.
    pub reused: usize,
    /// Kept sessions found closed by the peer, the delivery then made anew.
    pub found_closed: usize,
}

/// Open sessions kept per destination for a few seconds; see the module
/// documentation. Clones share the cache.
#[derive(Clone)]
pub struct SessionCache {
    inner: Arc<Mutex<Inner>>,
    settings: ReuseSettings,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("settings", &self.settings)
            .field("idle", &self.idle_sessions())
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// An empty cache keeping sessions as `settings` say.
    pub fn new(settings: ReuseSettings) -> Self {
        SessionCache {
            inner: Arc::new(Mutex::new(Inner::default())),
            settings,
        }
    }

    /// How sessions are kept.
    pub fn settings(&self) -> ReuseSettings {
        self.settings
    }

    /// Delivers `message` to `peer` over a kept session when one is idle (RSET
    /// first), otherwise over a new one (see [`OutboundSession::open`]), and keeps
    /// the session afterwards when the settings allow. A kept session that the peer
    /// closed before the message text was handed over is dropped and the delivery
    /// made once more on a new connection.
    ///
    /// Otherwise as [`deliver_to`](super::deliver_to).
    pub async fn deliver(
        &self,
        config: &ClientConfig,
        peer: &Peer,
        envelope: &OutboundEnvelope,
        message: &[u8],
    ) -> Result<DeliveryReport, ClientError> {
        let span = info_span!("smtp_deliver", msg_id = %envelope.id, host = %peer.label(), port = peer.addr.port());
        self.deliver_inner(config, peer, envelope, message)
            .instrument(span)
            .await
    }

    async fn deliver_inner(
        &self,
        config: &ClientConfig,
        peer: &Peer,
        envelope: &OutboundEnvelope,
        message: &[u8],
    ) -> Result<DeliveryReport, ClientError> {
        let destination = Destination::of(config, peer);
        if let Some(mut held) = self.take(&destination) {
            let done = held.session.transactions();
            debug!(transactions = done, "reusing a kept session");
            let result = held.session.send(config, envelope, message).await;
            if held.session.closed_by_peer() && !held.session.handed_over() {
                let why = result.as_ref().err().map(ToString::to_string);
                info!(
                    transactions = done,
                    error = why.as_deref().unwrap_or("421"),
                    "the kept session was closed by the peer; delivering on a new one"
                );
                self.note(|s| s.found_closed += 1);
                drop(held);
            } else {
                self.note(|s| s.reused += 1);
                self.give_back(destination, held);
                return result;
            }
        }
        let session = OutboundSession::open(config, peer).await?;
        let mut held = Held {
            session,
            open: Counted::new(self.open_count(&destination)),
        };
        self.note(|s| s.opened += 1);
        let result = held.session.send(config, envelope, message).await;
        self.give_back(destination, held);
        result
    }

    /// An idle session to `destination`, the one kept last.
    fn take(&self, destination: &Destination) -> Option<Held> {
        if !self.settings.keeps_sessions() {
            return None;
        }
        let mut inner = self.lock();
        let idle = inner.idle.get_mut(destination)?;
        let (_, held) = idle.pop()?;
        if idle.is_empty() {
            inner.idle.remove(destination);
        }
        Some(held)
    }

    /// Keeps `held` for the next delivery to `destination`, or ends it.
    fn give_back(&self, destination: Destination, held: Held) {
        let s = &self.settings;
        let over_cap = s.per_destination > 0 && held.open.now() > s.per_destination;
        if !held.session.is_open() {
            return;
        }
        if !s.keeps_sessions() || held.session.transactions() >= s.max_messages || over_cap {
            tokio::spawn(held.session.quit_within(QUIT_WAIT));
            return;
        }
        let id = {
            let mut inner = self.lock();
            let id = inner.next_id;
            inner.next_id += 1;
            inner
                .idle
                .entry(destination.clone())
                .or_default()
                .push((id, held));
            id
        };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(end_when_idle(weak, destination, id, s.idle));
    }

    /// Ends every idle session with QUIT (at a stop), waiting a few seconds at most.
    pub async fn close_all(&self) {
        let all: Vec<Held> = {
            let mut inner = self.lock();
            inner
                .idle
                .drain()
                .flat_map(|(_, held)| held.into_iter().map(|(_, h)| h))
                .collect()
        };
        if all.is_empty() {
            return;
        }
        info!(sessions = all.len(), "ending the kept SMTP sessions");
        let quits = all.into_iter().map(|h| h.session.quit_within(QUIT_WAIT));
        let mut set = tokio::task::JoinSet::new();
        for quit in quits {
            set.spawn(quit);
        }
        while set.join_next().await.is_some() {}
    }

    /// How many sessions are idle in the cache.
    pub fn idle_sessions(&self) -> usize {
        self.lock().idle.values().map(Vec::len).sum()
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    fn note(&self, change: impl FnOnce(&mut CacheStats)) {
        change(&mut self.lock().stats);
    }

    fn open_count(&self, destination: &Destination) -> Arc<AtomicUsize> {
        self.lock()
            .open
            .entry(destination.clone())
            .or_default()
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent whatever panicked while it was held: every
        // change is one insert or removal.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends the session `id` with QUIT after `idle` unless a delivery took it before.
async fn end_when_idle(
    cache: Weak<Mutex<Inner>>,
    destination: Destination,
    id: u64,
    idle: Duration,
) {
    tokio::time::sleep(idle).await;
    let Some(cache) = cache.upgrade() else {
        return;
    };
    let held = {
        let mut inner = cache.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sessions) = inner.idle.get_mut(&destination) else {
            return;
        };
        let held = sessions
            .iter()
            .position(|(i, _)| *i == id)
            .map(|at| sessions.remove(at).1);
        if sessions.is_empty() {
            inner.idle.remove(&destination);
        }
        held
    };
    if let Some(held) = held {
        debug!(host = %held.session.host(), "ending an idle session");
        held.session.quit_within(QUIT_WAIT).await;
    }
}
