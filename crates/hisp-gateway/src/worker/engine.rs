//! The queue engine of a running HISP ([`Worker::run`]): queue entries
//! handled side by side, each in its own task, up to
//! [`WorkerSettings::concurrency`](super::WorkerSettings::concurrency) at once
//! and at most
//! [`per_destination`](super::WorkerSettings::per_destination) for one
//! destination (a recipient domain), so that a destination that is slow or
//! down holds its own slots and never another's.
//!
//! It never polls an idle queue. It claims when:
//! - something is queued in this process: the store rings the engine's bell
//!   after the commit (`Store::on_enqueue`);
//! - another process changed the database (`hisp queue retry`): the watcher
//!   asks the store every [`watch_interval`](super::WorkerSettings::watch_interval)
//!   whether another connection committed (`Store::outside_changes`,
//!   SQLite's `PRAGMA data_version`, which reads no table);
//! - a task ended, freeing a slot or a destination;
//! - the next pending entry falls due (`Store::next_due`: a retry, or the
//!   lease of a stopped worker ending);
//! - the slow sweep ([`sweep_interval`](super::WorkerSettings::sweep_interval))
//!   comes round, which also runs the delivery notification sweep
//!   (MDN timeouts, DSNs); that sweep runs soon after attempts end too.
//!
//! An entry in hand has its lease renewed every third of the lease
//! (`Store::renew_lease`), so a long attempt keeps its entry and a killed
//! process's entries come back within one lease. On stop, the engine claims
//! nothing more, lets the attempts under way finish for up to
//! [`drain`](super::WorkerSettings::drain), and gives the rest back
//! (`Store::release`): they are due again at once for the next start, and
//! ends the relay sessions kept for reuse with QUIT.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hisp_smtp::Shutdown;
use hisp_store::{ClaimLimits, Domain, QueueItem};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tracing::{info, warn};

use super::Worker;

/// Shortest time between two delivery notification sweeps started by
/// attempts ending (the periodic sweep comes on its own).
const SWEEP_GAP: Duration = Duration::from_millis(500);

/// An entry a task holds, and the destinations it counts against.
struct InHand {
    item: QueueItem,
    destinations: Vec<Domain>,
}

/// The state of one [`run`].
struct Engine {
    worker: Arc<Worker>,
    tasks: JoinSet<()>,
    in_hand: HashMap<Id, InHand>,
    per_destination: BTreeMap<Domain, usize>,
    /// Whether attempts ended since the last notification sweep.
    sweep_wanted: bool,
    last_sweep: Instant,
}

/// Handles due entries until `shutdown`; see the module documentation.
pub(super) async fn run(worker: &Worker, shutdown: &Shutdown) {
    let wake = Arc::new(Notify::new());
    let bell = wake.clone();
    worker
        .ctx
        .store
        .inner()
        .on_enqueue(Arc::new(move || bell.notify_one()));
    let watcher = tokio::spawn(watch_outside(
        worker.clone(),
        wake.clone(),
        shutdown.clone(),
    ));
    let mut engine = Engine {
        worker: Arc::new(worker.clone()),
        tasks: JoinSet::new(),
        in_hand: HashMap::new(),
        per_destination: BTreeMap::new(),
        sweep_wanted: true,
        last_sweep: Instant::now(),
    };
    let settings = &worker.settings;
    info!(
        concurrency = settings.concurrency,
        per_destination = settings.per_destination,
        "queue engine started"
    );
    while !shutdown.is_triggered() {
        engine.claim().await;
        let now = Instant::now();
        if engine.sweep_wanted && now >= engine.last_sweep + SWEEP_GAP
            || now >= engine.last_sweep + settings.sweep_interval
        {
            engine.sweep().await;
        }
        let deadline = engine.next_look().await;
        tokio::select! {
            _ = wake.notified() => {}
            Some(done) = engine.tasks.join_next_with_id(), if !engine.tasks.is_empty() => {
                engine.ended(done);
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.triggered() => {}
        }
    }
    watcher.abort();
    engine.stop().await;
    worker.close_sessions().await;
    info!("queue worker stopped");
}

impl Engine {
    /// Claims due entries while slots are free and any fits.
    async fn claim(&mut self) {
        let worker = self.worker.clone();
        let settings = &worker.settings;
        loop {
            let free = settings.concurrency.max(1).saturating_sub(self.tasks.len());
            if free == 0 {
                return;
            }
            let limits = ClaimLimits {
                limit: free,
                per_destination: settings.per_destination,
                in_hand: self.per_destination.clone(),
            };
            let (lease, now) = (settings.lease, OffsetDateTime::now_utc());
            let claimed = worker
                .ctx
                .store
                .call_retrying("claiming due queue items", move |s| {
                    s.claim_due_within(now, lease, &limits)
                })
                .await;
            let items = match claimed {
                Ok(items) => items,
                Err(e) => {
                    warn!(error = %e, "cannot claim from the queue; tried again at the next look");
                    return;
                }
            };
            if items.is_empty() {
                return;
            }
            for item in items {
                self.start(item, now);
            }
        }
    }

    /// Starts one attempt in its own task.
    fn start(&mut self, item: QueueItem, now: OffsetDateTime) {
        let destinations = item.destinations();
        for d in &destinations {
            *self.per_destination.entry(d.clone()).or_insert(0) += 1;
        }
        let (worker, task_item) = (self.worker.clone(), item.clone());
        let handle = self
            .tasks
            .spawn(async move { worker.handle(task_item, now).await });
        self.in_hand
            .insert(handle.id(), InHand { item, destinations });
    }

    /// A task ended: its slot and destinations are free again.
    fn ended(&mut self, done: Result<(Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                warn!(error = %e, "a queue task failed; its claim will lapse and the message be tried again");
                e.id()
            }
        };
        if let Some(held) = self.in_hand.remove(&id) {
            for d in held.destinations {
                if let Some(n) = self.per_destination.get_mut(&d) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_destination.remove(&d);
                    }
                }
            }
        }
        self.sweep_wanted = true;
    }

    /// The delivery notification sweep.
    async fn sweep(&mut self) {
        self.sweep_wanted = false;
        self.last_sweep = Instant::now();
        self.worker.sweep(OffsetDateTime::now_utc()).await;
    }

    /// When to look again if nothing wakes the engine first: the next
    /// pending entry falling due (unless it is due already and waits for a
    /// slot or its destination, which a task ending announces), a sweep
    /// asked for, or the periodic sweep.
    async fn next_look(&self) -> Instant {
        let settings = &self.worker.settings;
        let mut at = self.last_sweep + settings.sweep_interval;
        if self.sweep_wanted {
            at = at.min(self.last_sweep + SWEEP_GAP);
        }
        match self
            .worker
            .ctx
            .store
            .call_retrying("reading when the queue is next due", |s| s.next_due())
            .await
        {
            Ok(Some(due)) => {
                let wait = due - OffsetDateTime::now_utc();
                if wait.is_positive() {
                    let wait = Duration::try_from(wait).unwrap_or(settings.sweep_interval);
                    at = at.min(Instant::now() + wait);
                }
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot read when the queue is next due"),
        }
        at
    }

    /// Lets the attempts under way finish within the drain time, then gives
    /// back what is still in hand.
    async fn stop(mut self) {
        let drain = self.worker.settings.drain;
        if !self.tasks.is_empty() {
            info!(
                in_hand = self.tasks.len(),
                ?drain,
                "stopping: finishing the attempts under way"
            );
        }
        let deadline = Instant::now() + drain;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(done)) => self.ended(done),
                Ok(None) => break,
                Err(_) => break,
            }
        }
        self.tasks.abort_all();
        while let Some(done) = self.tasks.join_next_with_id().await {
            // Cut tasks end as cancelled; those that finished meanwhile are
            // done with their entries.
            if let Ok((id, ())) = done {
                self.in_hand.remove(&id);
            }
        }
        for (_, held) in self.in_hand.drain() {
            let item = held.item;
            let id = item.id;
            let released = self
                .worker
                .ctx
                .store
                .call_retrying("releasing a queue item", move |s| s.release(&item))
                .await;
            match released {
                Ok(()) => info!(queue_id = %id, "attempt cut at stop; released, due again"),
                Err(e) => warn!(queue_id = %id, error = %e, "cannot release; its lease will lapse"),
            }
        }
    }
}

/// Wakes the engine when another process has changed the store (the CLI's
/// `hisp queue retry`, say), asking every watch interval.
async fn watch_outside(worker: Worker, wake: Arc<Notify>, shutdown: Shutdown) {
    let every = worker.settings.watch_interval;
    let mut seen = None;
    while !shutdown.is_triggered() {
        match worker.ctx.store.call(|s| s.outside_changes()).await {
            Ok(version) => {
                if seen.is_some_and(|v| v != version) {
                    wake.notify_one();
                }
                seen = Some(version);
            }
            Err(e) => warn!(error = %e, "cannot ask the store for changes by other processes"),
        }
        tokio::time::sleep(every).await;
    }
}
