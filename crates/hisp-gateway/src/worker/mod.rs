//! The queue workers: claim due messages, relay outbound ones to other HISPs
//! (`relay`), open inbound ones into mailboxes or quarantine (`receive`), and
//! finish each claim — done, retried later by the retry schedule
//! (`schedule`), or given up after the message's lifetime.
//!
//! Deliveries do not wait on each other: [`Worker::run`] is the queue engine
//! (`engine`): up to [`WorkerSettings::concurrency`] queue messages at once,
//! at most [`WorkerSettings::per_destination`] for one destination, woken
//! at once when something is queued, with leases renewed while an attempt
//! runs and a graceful stop. One attempt at a message is cut after
//! [`WorkerSettings::attempt_timeout`] (and then retried like any temporary
//! failure).

mod engine;
mod notify;
mod notify_mail;
mod receive;
mod relay;
mod report;
mod schedule;

pub use schedule::RetrySchedule;

use std::time::Duration;

use hisp_smime::SealOptions;
use hisp_smtp::{ClientConfig, ReuseSettings, SessionCache, Shutdown};
use hisp_store::{
    DeliveryStatus, Expectation, MessageDirection, QueueItem, RecipientId, StoreError,
    TrackingState,
};
use time::OffsetDateTime;
use tracing::{info, info_span, warn, Instrument};

use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::portal_notice::NoticeSettings;
use crate::routes::Routes;

/// How a worker claims, retries and delivers.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim holds a message before another worker may take it;
    /// [`Worker::run`] renews it every third of it while the attempt runs,
    /// so it bounds how long the entries of a killed process stay taken.
    pub lease: Duration,
    /// Most messages claimed at once by [`Worker::run_once`].
    pub batch: usize,
    /// Most queue messages [`Worker::run`] handles at the same time: a peer
    /// that stalls holds some of them, not the others.
    pub concurrency: usize,
    /// Most queue messages [`Worker::run`] handles at the same time for one
    /// destination (a recipient domain of an outbound message); 0 for no
    /// cap. A destination that is slow or down holds at most this many slots.
    pub per_destination: usize,
    /// Longest one attempt at a message may take (every destination and
    /// server of it); then it is cut and tried again later.
    pub attempt_timeout: Duration,
    /// Longest time [`Worker::run`] goes without looking at the queue when
    /// nothing wakes it (nothing queued, no retry due): the slow sweep, which
    /// also times out recipients waiting for MDNs.
    pub sweep_interval: Duration,
    /// How often [`Worker::run`] asks whether another process (the CLI)
    /// changed the store, to take entries it made due at once.
    pub watch_interval: Duration,
    /// How long [`Worker::run`] lets the attempts under way finish when it
    /// is stopped before it cuts them and gives their messages back.
    pub drain: Duration,
    /// When a message that could not be finished is tried again.
    pub retry: RetrySchedule,
    /// How long a message is tried before it is given up (default 24 h).
    pub lifetime: Duration,
    /// Cipher and key transport for sealing.
    pub seal: SealOptions,
    /// The delivering SMTP client (EHLO name, STARTTLS, timeouts).
    pub client: ClientConfig,
    /// How long a session with another HISP's server is kept open after a
    /// delivery for the next message to the same server (then ended with
    /// QUIT); zero keeps none: every message has a session of its own.
    pub relay_session_idle: Duration,
    /// Most messages one kept session carries before it is ended.
    pub relay_session_max_messages: usize,
    /// Mail to a recipient of a local domain travels the Direct way too:
    /// discovered, sealed with the sender's key and delivered by the
    /// domain's route (usually this HISP's own backbone listener), where it
    /// is opened and judged like mail from another HISP. Off (the default):
    /// it goes straight to the recipient's Inbox, unsealed.
    pub seal_local: bool,
    /// How long after relaying a recipient may stay without its MDNs
    /// (processed, and dispatched when final delivery was asked for) before
    /// it fails and the sender gets a DSN (default 1 hour).
    pub mdn_timeout: Duration,
    /// This HISP's host name in the MDNs (Reporting-UA) and DSNs
    /// (Reporting-MTA) it writes.
    pub reporting_host: String,
    /// E-mail notices of new secure mail to portal users (`[notify]`):
    /// where they go and what they link to. `None` (the default): none are
    /// queued, and notices queued earlier wait for a smart host until their
    /// lifetime ends.
    pub notify: Option<NoticeSettings>,
}

impl WorkerSettings {
    /// Defaults: [`default_concurrency`] messages at once and
    /// [`DEFAULT_PER_DESTINATION`] per destination, attempts cut after 30
    /// minutes, 2-minute leases renewed while in hand, batches of 16 for
    /// [`Worker::run_once`], a sweep every 15 s, a look for other processes'
    /// changes every 250 ms, 10 s to finish at a stop, the default
    /// [`RetrySchedule`] (1 minute doubling up to 1 hour), a 24-hour
    /// lifetime, opportunistic STARTTLS is off (no client TLS configured),
    /// sessions kept 5 s idle for up to 100 messages each,
    /// mail between local domains is delivered locally (`seal_local` off), a
    /// 1-hour MDN timeout, and `helo_name` as the reporting host.
    pub fn new(helo_name: &str) -> Self {
        WorkerSettings {
            lease: DEFAULT_LEASE,
            batch: 16,
            concurrency: default_concurrency(),
            per_destination: DEFAULT_PER_DESTINATION,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            sweep_interval: Duration::from_secs(15),
            watch_interval: Duration::from_millis(250),
            drain: Duration::from_secs(10),
            retry: RetrySchedule::DEFAULT,
            lifetime: Duration::from_secs(24 * 3600),
            seal: SealOptions::default(),
            client: ClientConfig::new(helo_name, None),
            relay_session_idle: ReuseSettings::DEFAULT_IDLE,
            relay_session_max_messages: ReuseSettings::DEFAULT_MAX_MESSAGES,
            seal_local: false,
            mdn_timeout: Duration::from_secs(3600),
            reporting_host: helo_name.to_string(),
            notify: None,
        }
    }

    /// Sets [`attempt_timeout`](Self::attempt_timeout). (The lease no longer
    /// needs to cover the attempt: it is renewed while the attempt runs.)
    pub fn set_attempt_timeout(&mut self, timeout: Duration) {
        self.attempt_timeout = timeout;
    }

    /// How [`Worker`]s keep relay sessions: [`relay_session_idle`](Self::relay_session_idle),
    /// [`relay_session_max_messages`](Self::relay_session_max_messages), and
    /// no more sessions open to one server than
    /// [`per_destination`](Self::per_destination).
    pub fn session_reuse(&self) -> ReuseSettings {
        ReuseSettings {
            idle: self.relay_session_idle,
            max_messages: self.relay_session_max_messages,
            per_destination: self.per_destination,
        }
    }

    /// How often a lease is renewed while its message is in hand: every
    /// third of [`lease`](Self::lease), at least every second. A paused
    /// process (SIGSTOP, a long GC, a slow disk) keeps its messages while it
    /// is paused for less than the lease minus this.
    pub fn lease_renewal(&self) -> Duration {
        (self.lease / 3).max(Duration::from_secs(1))
    }

    /// The delay before the attempt after attempt number `attempts` (1 for
    /// the first), by the [retry schedule](Self::retry).
    pub fn backoff(&self, attempts: u32) -> Duration {
        self.retry.delay(attempts)
    }

    /// The delay after attempt number `attempts` at a queue item that
    /// expects `expect`: portal notices start from
    /// [`NoticeSettings::retry_base`], everything else as [`backoff`](Self::backoff).
    pub fn backoff_for(&self, expect: Expectation, attempts: u32) -> Duration {
        match (&self.notify, expect) {
            (Some(n), Expectation::PortalNotice) => self.retry.delay_from(n.retry_base, attempts),
            _ => self.backoff(attempts),
        }
    }
}

/// Default for [`WorkerSettings::per_destination`].
pub const DEFAULT_PER_DESTINATION: usize = 4;

/// Default for [`WorkerSettings::concurrency`]: four per processor core
/// (an attempt mostly waits on the network or the store, and sealing runs
/// on the blocking pool), at least 8.
pub fn default_concurrency() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (4 * cores).max(8)
}

/// Default for [`WorkerSettings::lease`] (`[queue] lease_secs`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Default for [`WorkerSettings::attempt_timeout`].
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What an attempt left to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// Every recipient reached a final or relayed state.
    Finished,
    /// Some recipients must be tried again; why.
    Again(String),
}

/// A queue worker of one HISP.
#[derive(Debug, Clone)]
pub struct Worker {
    ctx: GatewayContext,
    routes: Routes,
    settings: WorkerSettings,
    /// Sessions with other HISPs' servers kept between deliveries; clones of
    /// the worker share them.
    sessions: SessionCache,
}

impl Worker {
    /// A worker relaying through `routes`, keeping relay sessions as
    /// [`WorkerSettings::session_reuse`] says.
    pub fn new(ctx: GatewayContext, routes: Routes, settings: WorkerSettings) -> Self {
        Worker {
            sessions: SessionCache::new(settings.session_reuse()),
            ctx,
            routes,
            settings,
        }
    }

    /// Ends the relay sessions kept for reuse with QUIT ([`run`](Self::run)
    /// does so when it stops).
    pub async fn close_sessions(&self) {
        self.sessions.close_all().await;
    }

    /// Claims the messages due at `now` and processes each once, then fails
    /// the recipients whose MDNs are overdue at `now` and files a DSN for
    /// every failure a sender has not been told of; returns how many queue
    /// messages were processed. A message whose processing fails on a store
    /// error keeps its claim until the lease ends and is then tried again.
    /// `now` is the worker's clock: tests pass a later time to see timeouts.
    ///
    /// The claimed messages are handled one after the other, each within
    /// [`WorkerSettings::attempt_timeout`]; [`run`](Self::run) handles them
    /// side by side.
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<usize, GatewayError> {
        let items = self.claim(now, self.settings.batch).await?;
        let count = items.len();
        for item in items {
            self.handle(item, now).await;
        }
        self.sweep(now).await;
        Ok(count)
    }

    /// The queue engine: handles due messages until `shutdown` is
    /// triggered, up to [`WorkerSettings::concurrency`] at once and
    /// [`WorkerSettings::per_destination`] for one destination, each in its
    /// own task, woken at once when a message is queued in this process or
    /// another process changes the store, and looking again when a retry
    /// falls due or every [`WorkerSettings::sweep_interval`]. At a stop the
    /// attempts under way get [`WorkerSettings::drain`] to finish; those
    /// still running are cut and their messages given back, due again.
    pub async fn run(&self, shutdown: &Shutdown) {
        engine::run(self, shutdown).await;
    }

    /// Claims up to `limit` messages due at `now` under a lease.
    async fn claim(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<QueueItem>, GatewayError> {
        let lease = self.settings.lease;
        self.ctx
            .store
            .call_retrying("claiming due queue items", move |s| {
                s.claim_due(now, lease, limit)
            })
            .await
    }

    /// The delivery notification sweep; a failure waits for the next look.
    pub(super) async fn sweep(&self, now: OffsetDateTime) {
        if let Err(e) = notify::sweep(self, now).await {
            warn!(error = %e, "delivery notification sweep failed; tried again at the next look");
        }
    }

    /// One attempt at a claimed message, cut after the attempt timeout (the
    /// message is then retried like any temporary failure). A store error
    /// leaves the claim to lapse.
    async fn handle(&self, item: QueueItem, now: OffsetDateTime) {
        let msg_id = item
            .message_id
            .as_ref()
            .map_or_else(|| format!("queue-{}", item.id), |m| m.to_string());
        let span = info_span!("queue_item", msg_id = %msg_id, queue_id = %item.id, direction = %item.direction, attempt = item.attempts);
        let limit = self.settings.attempt_timeout;
        let attempt = async {
            match tokio::time::timeout(limit, self.process(&item, now)).await {
                Ok(done) => done,
                Err(_) => {
                    warn!(timeout = ?limit, "attempt cut: it did not finish in time");
                    let why = format!("the attempt did not finish within {}s", limit.as_secs());
                    self.finish(&item, Attempt::Again(why), now).await
                }
            }
        };
        let done = async {
            tokio::select! {
                done = attempt => done,
                never = self.keep_lease(&item) => match never {},
            }
        }
        .instrument(span.clone())
        .await;
        match done {
            Ok(()) => {}
            Err(GatewayError::Store(e @ StoreError::LeaseLost { .. })) => span.in_scope(
                || warn!(error = %e, "the entry was taken over by another worker; its outcome is that worker's"),
            ),
            Err(e) => span.in_scope(|| warn!(error = %e, "processing failed; the claim will lapse and the message be tried again")),
        }
    }

    /// Renews the lease on `item` every third of the lease while the
    /// attempt runs (the caller drops this when it ends). A lost lease is
    /// logged; the attempt goes on, and its outcome is refused by the store.
    async fn keep_lease(&self, item: &QueueItem) -> std::convert::Infallible {
        let lease = self.settings.lease;
        let every = self.settings.lease_renewal();
        loop {
            tokio::time::sleep(every).await;
            let held = item.clone();
            let renewed = self
                .ctx
                .store
                .call_retrying("renewing a lease", move |s| {
                    s.renew_lease(&held, OffsetDateTime::now_utc(), lease)
                })
                .await;
            if let Err(e) = renewed {
                warn!(error = %e, "cannot renew the lease; another worker may take the message");
            }
        }
    }

    async fn process(&self, item: &QueueItem, now: OffsetDateTime) -> Result<(), GatewayError> {
        let attempt = match item.direction {
            MessageDirection::Outbound if item.expect == Expectation::PortalNotice => {
                notify_mail::attempt(self, item, now).await?
            }
            MessageDirection::Outbound => relay::attempt(self, item, now).await?,
            MessageDirection::Inbound => receive::attempt(self, item, now).await?,
        };
        self.finish(item, attempt, now).await
    }

    /// Ends the claim as `attempt` says: done, retried after the backoff,
    /// or failed when the lifetime has passed.
    async fn finish(
        &self,
        item: &QueueItem,
        attempt: Attempt,
        now: OffsetDateTime,
    ) -> Result<(), GatewayError> {
        let item = item.clone();
        match attempt {
            Attempt::Finished => {
                info!("finished");
                self.ctx
                    .store
                    .call_retrying("completing a queue item", move |s| s.complete(&item))
                    .await
            }
            Attempt::Again(reason) => {
                let age = now - item.received_at;
                if age >= self.settings.lifetime {
                    warn!(%reason, "lifetime passed; giving up");
                    let why = format!("not delivered within the message lifetime: {reason}");
                    self.ctx
                        .store
                        .call_retrying("failing a queue item", move |s| s.fail(&item, &why, now))
                        .await
                } else {
                    let next = now + self.settings.backoff_for(item.expect, item.attempts);
                    info!(%reason, next_attempt = %next, "deferred");
                    self.ctx
                        .store
                        .call_retrying("deferring a queue item", move |s| {
                            s.retry_later(&item, next, &reason)
                        })
                        .await
                }
            }
        }
    }

    /// Fails a recipient, keeping the RFC 3463 status its refusal carried.
    /// Only while `item` is in hand (issue 14): a worker whose lease ran out
    /// and whose entry another worker claimed gets `LeaseLost`, and its
    /// outcome is not written.
    async fn track_failed(
        &self,
        item: &QueueItem,
        recipient: RecipientId,
        now: OffsetDateTime,
        reason: String,
        status: Option<DeliveryStatus>,
    ) -> Result<(), GatewayError> {
        let held = item.held();
        self.ctx
            .store
            .call_retrying("failing a recipient", move |s| {
                s.track_failed_held(&held, recipient, now, &reason, status)
                    .map(|_| ())
            })
            .await
    }

    /// Moves one recipient of `item`, only while `item` is in hand (as
    /// [`Worker::track_failed`]).
    async fn track(
        &self,
        item: &QueueItem,
        recipient: RecipientId,
        next: TrackingState,
        now: OffsetDateTime,
        reason: Option<String>,
    ) -> Result<(), GatewayError> {
        let held = item.held();
        self.ctx
            .store
            .call_retrying("tracking a recipient", move |s| {
                s.track_steps_held(&held, recipient, &[next], now, reason.as_deref())
                    .map(|_| ())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = WorkerSettings::new("hisp.test");
        assert!(s.concurrency >= 8 && s.per_destination == 4);
        assert_eq!(s.backoff(1), Duration::from_secs(60));
        assert_eq!(s.backoff(2), Duration::from_secs(120));
        assert_eq!(s.backoff(4), Duration::from_secs(480));
        assert_eq!(s.backoff(7), Duration::from_secs(3600));
        assert_eq!(s.backoff(400), Duration::from_secs(3600));
        assert!(!s.seal_local, "local mail is delivered locally by default");
    }
}
