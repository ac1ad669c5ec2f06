//! The queue workers: claim due messages, relay outbound ones to other HISPs
//! (`relay`), open inbound ones into mailboxes or quarantine (`receive`), and
//! finish each claim — done, retried later with exponential backoff, or
//! given up after the message's lifetime.
//!
//! Deliveries do not wait on each other: [`Worker::run`] handles up to
//! [`WorkerSettings::concurrency`] queue messages at once, each as its own
//! task, and claims the next due message as soon as a slot is free. One
//! attempt at a message is cut after [`WorkerSettings::attempt_timeout`]
//! (and then retried like any temporary failure), which keeps it inside its
//! lease, so no other claim can take the message while it is under way.

mod notify;
mod notify_mail;
mod receive;
mod relay;
mod report;

use std::sync::Arc;
use std::time::Duration;

use hisp_smime::SealOptions;
use hisp_smtp::{ClientConfig, Shutdown};
use hisp_store::{
    DeliveryStatus, Expectation, MessageDirection, QueueItem, RecipientId, TrackingState,
};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tracing::{info, info_span, warn, Instrument};

use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::portal_notice::NoticeSettings;
use crate::routes::Routes;

/// How a worker claims, retries and delivers.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim holds a message before another worker may take it;
    /// longer than [`attempt_timeout`](Self::attempt_timeout), so that an
    /// attempt under way keeps its message (see
    /// [`set_attempt_timeout`](Self::set_attempt_timeout)).
    pub lease: Duration,
    /// Most messages claimed at once by [`Worker::run_once`].
    pub batch: usize,
    /// Most queue messages [`Worker::run`] handles at the same time: a peer
    /// that stalls holds one of them, not the others.
    pub concurrency: usize,
    /// Longest one attempt at a message may take (every destination and
    /// server of it); then it is cut and tried again later.
    pub attempt_timeout: Duration,
    /// Time between looks at the queue when [`Worker::run`] runs.
    pub poll_interval: Duration,
    /// Delay before the first retry; doubled for each further attempt.
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    pub retry_max: Duration,
    /// How long a message is tried before it is given up (default 24 h).
    pub lifetime: Duration,
    /// Cipher and key transport for sealing.
    pub seal: SealOptions,
    /// The delivering SMTP client (EHLO name, STARTTLS, timeouts).
    pub client: ClientConfig,
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
    /// Defaults: attempts cut after 30 minutes and leases a minute longer,
    /// batches of 16, 8 messages at once, a 1 s poll, retries from
    /// 1 minute doubling up to 1 hour, a 24-hour lifetime, opportunistic
    /// STARTTLS is off (no client TLS configured), mail between local
    /// domains is delivered locally (`seal_local` off), a 1-hour MDN
    /// timeout, and `helo_name` as the reporting host.
    pub fn new(helo_name: &str) -> Self {
        WorkerSettings {
            lease: DEFAULT_ATTEMPT_TIMEOUT + LEASE_MARGIN,
            batch: 16,
            concurrency: 8,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            lifetime: Duration::from_secs(24 * 3600),
            seal: SealOptions::default(),
            client: ClientConfig::new(helo_name, None),
            seal_local: false,
            mdn_timeout: Duration::from_secs(3600),
            reporting_host: helo_name.to_string(),
            notify: None,
        }
    }

    /// Sets [`attempt_timeout`](Self::attempt_timeout) and a lease a minute
    /// longer.
    pub fn set_attempt_timeout(&mut self, timeout: Duration) {
        self.attempt_timeout = timeout;
        self.lease = timeout + LEASE_MARGIN;
    }

    /// The delay before the attempt after attempt number `attempts` (1 for
    /// the first): `retry_base * 2^(attempts-1)`, at most `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        Self::doubled(self.retry_base, attempts, self.retry_max)
    }

    /// The delay after attempt number `attempts` at a queue item that
    /// expects `expect`: portal notices start from
    /// [`NoticeSettings::retry_base`], everything else as [`backoff`](Self::backoff).
    pub fn backoff_for(&self, expect: Expectation, attempts: u32) -> Duration {
        match (&self.notify, expect) {
            (Some(n), Expectation::PortalNotice) => {
                Self::doubled(n.retry_base, attempts, self.retry_max)
            }
            _ => self.backoff(attempts),
        }
    }

    fn doubled(base: Duration, attempts: u32, max: Duration) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        base.checked_mul(factor).map_or(max, |d| d.min(max))
    }
}

/// Default for [`WorkerSettings::attempt_timeout`].
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How much longer a lease is than the attempt it covers: time to record
/// the outcome after an attempt is cut.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

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
}

impl Worker {
    /// A worker relaying through `routes`.
    pub fn new(ctx: GatewayContext, routes: Routes, settings: WorkerSettings) -> Self {
        Worker {
            ctx,
            routes,
            settings,
        }
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

    /// Handles due messages until `shutdown` is triggered: up to
    /// [`WorkerSettings::concurrency`] at once, each in its own task, a new
    /// one claimed as soon as a slot is free; the queue is looked at every
    /// poll interval, and the delivery notification sweep runs after each
    /// look. The messages under way when `shutdown` comes are finished
    /// first (or cut by the caller dropping this future).
    pub async fn run(&self, shutdown: &Shutdown) {
        let worker = Arc::new(self.clone());
        let slots = self.settings.concurrency.max(1);
        let step = self.settings.poll_interval.min(Duration::from_millis(100));
        let mut under_way: JoinSet<()> = JoinSet::new();
        while !shutdown.is_triggered() {
            while let Some(done) = under_way.try_join_next() {
                if let Err(e) = done {
                    warn!(error = %e, "a queue task failed; its claim will lapse and the message be tried again");
                }
            }
            let free = slots.saturating_sub(under_way.len());
            let now = OffsetDateTime::now_utc();
            let claimed = if free == 0 {
                0
            } else {
                match self.claim(now, free).await {
                    Ok(items) => {
                        let n = items.len();
                        for item in items {
                            let worker = worker.clone();
                            under_way.spawn(async move { worker.handle(item, now).await });
                        }
                        n
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot claim from the queue");
                        0
                    }
                }
            };
            self.sweep(now).await;
            // Every free slot was filled: more may be due as soon as one
            // frees up. Otherwise nothing more is due before the next look.
            let full = free == 0 || (claimed > 0 && claimed == free);
            let mut waited = Duration::ZERO;
            while waited < self.settings.poll_interval && !shutdown.is_triggered() {
                if full && !under_way.is_empty() {
                    tokio::select! {
                        _ = tokio::time::sleep(step) => waited += step,
                        Some(done) = under_way.join_next() => {
                            if let Err(e) = done {
                                warn!(error = %e, "a queue task failed; its claim will lapse and the message be tried again");
                            }
                            break;
                        }
                    }
                } else {
                    tokio::time::sleep(step).await;
                    waited += step;
                }
            }
        }
        while let Some(done) = under_way.join_next().await {
            if let Err(e) = done {
                warn!(error = %e, "a queue task failed");
            }
        }
        info!("queue worker stopped");
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
            .call(move |s| s.claim_due(now, lease, limit))
            .await
    }

    /// The delivery notification sweep; a failure waits for the next look.
    async fn sweep(&self, now: OffsetDateTime) {
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
        let done = async {
            match tokio::time::timeout(limit, self.process(&item, now)).await {
                Ok(done) => done,
                Err(_) => {
                    warn!(timeout = ?limit, "attempt cut: it did not finish in time");
                    let why = format!("the attempt did not finish within {}s", limit.as_secs());
                    self.finish(&item, Attempt::Again(why), now).await
                }
            }
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = done {
            span.in_scope(|| warn!(error = %e, "processing failed; the claim will lapse and the message be tried again"));
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
                self.ctx.store.call(move |s| s.complete(&item)).await
            }
            Attempt::Again(reason) => {
                let age = now - item.received_at;
                if age >= self.settings.lifetime {
                    warn!(%reason, "lifetime passed; giving up");
                    let why = format!("not delivered within the message lifetime: {reason}");
                    self.ctx.store.call(move |s| s.fail(&item, &why, now)).await
                } else {
                    let next = now + self.settings.backoff_for(item.expect, item.attempts);
                    info!(%reason, next_attempt = %next, "deferred");
                    self.ctx
                        .store
                        .call(move |s| s.retry_later(&item, next, &reason))
                        .await
                }
            }
        }
    }

    /// Moves one recipient's tracking state.
    /// Fails a recipient, keeping the RFC 3463 status its refusal carried.
    async fn track_failed(
        &self,
        recipient: RecipientId,
        now: OffsetDateTime,
        reason: String,
        status: Option<DeliveryStatus>,
    ) -> Result<(), GatewayError> {
        self.ctx
            .store
            .call(move |s| s.track_failed(recipient, now, &reason, status).map(|_| ()))
            .await
    }

    async fn track(
        &self,
        recipient: RecipientId,
        next: TrackingState,
        now: OffsetDateTime,
        reason: Option<String>,
    ) -> Result<(), GatewayError> {
        self.ctx
            .store
            .call(move |s| s.track(recipient, next, now, reason.as_deref()).map(|_| ()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = WorkerSettings::new("hisp.test");
        assert_eq!(s.backoff(1), Duration::from_secs(60));
        assert_eq!(s.backoff(2), Duration::from_secs(120));
        assert_eq!(s.backoff(4), Duration::from_secs(480));
        assert_eq!(s.backoff(7), Duration::from_secs(3600));
        assert_eq!(s.backoff(400), Duration::from_secs(3600));
        assert!(!s.seal_local, "local mail is delivered locally by default");
    }
}
