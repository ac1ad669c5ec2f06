//! The queue workers: claim due messages, relay outbound ones to other HISPs
//! (`relay`), open inbound ones into mailboxes or quarantine (`receive`), and
//! finish each claim — done, retried later with exponential backoff, or
//! given up after the message's lifetime.

mod notify;
mod receive;
mod relay;
mod report;

use std::time::Duration;

use hisp_smime::SealOptions;
use hisp_smtp::{ClientConfig, Shutdown};
use hisp_store::{MessageDirection, QueueItem, RecipientId, TrackingState};
use time::OffsetDateTime;
use tracing::{info, info_span, warn, Instrument};

use crate::context::GatewayContext;
use crate::error::GatewayError;
use crate::routes::Routes;

/// How a worker claims, retries and delivers.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim holds a message before another worker may take it.
    pub lease: Duration,
    /// Most messages claimed at once.
    pub batch: usize,
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
}

impl WorkerSettings {
    /// Defaults: 5-minute leases, batches of 16, a 1 s poll, retries from
    /// 1 minute doubling up to 1 hour, a 24-hour lifetime, opportunistic
    /// STARTTLS is off (no client TLS configured), mail between local
    /// domains is delivered locally (`seal_local` off), a 1-hour MDN
    /// timeout, and `helo_name` as the reporting host.
    pub fn new(helo_name: &str) -> Self {
        WorkerSettings {
            lease: Duration::from_secs(300),
            batch: 16,
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            lifetime: Duration::from_secs(24 * 3600),
            seal: SealOptions::default(),
            client: ClientConfig::new(helo_name, None),
            seal_local: false,
            mdn_timeout: Duration::from_secs(3600),
            reporting_host: helo_name.to_string(),
        }
    }

    /// The delay before the attempt after attempt number `attempts` (1 for
    /// the first): `retry_base * 2^(attempts-1)`, at most `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        self.retry_base
            .checked_mul(factor)
            .map_or(self.retry_max, |d| d.min(self.retry_max))
    }
}

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
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<usize, GatewayError> {
        let (lease, batch) = (self.settings.lease, self.settings.batch);
        let items = self
            .ctx
            .store
            .call(move |s| s.claim_due(now, lease, batch))
            .await?;
        let count = items.len();
        for item in items {
            let msg_id = item
                .message_id
                .as_ref()
                .map_or_else(|| format!("queue-{}", item.id), |m| m.to_string());
            let span = info_span!("queue_item", msg_id = %msg_id, queue_id = %item.id, direction = %item.direction, attempt = item.attempts);
            if let Err(e) = self.process(&item, now).instrument(span.clone()).await {
                span.in_scope(|| warn!(error = %e, "processing failed; the claim will lapse and the message be tried again"));
            }
        }
        if let Err(e) = notify::sweep(self, now).await {
            warn!(error = %e, "delivery notification sweep failed; tried again at the next look");
        }
        Ok(count)
    }

    /// Runs [`run_once`](Self::run_once) every poll interval until
    /// `shutdown` is triggered; the batch under way is finished first.
    pub async fn run(&self, shutdown: &Shutdown) {
        let step = self.settings.poll_interval.min(Duration::from_millis(100));
        while !shutdown.is_triggered() {
            match self.run_once(OffsetDateTime::now_utc()).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot claim from the queue"),
            }
            let mut waited = Duration::ZERO;
            while waited < self.settings.poll_interval && !shutdown.is_triggered() {
                tokio::time::sleep(step).await;
                waited += step;
            }
        }
        info!("queue worker stopped");
    }

    async fn process(&self, item: &QueueItem, now: OffsetDateTime) -> Result<(), GatewayError> {
        let attempt = match item.direction {
            MessageDirection::Outbound => relay::attempt(self, item, now).await?,
            MessageDirection::Inbound => receive::attempt(self, item, now).await?,
        };
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
                    let next = now + self.settings.backoff(item.attempts);
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
