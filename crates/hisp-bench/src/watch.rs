//! Watching the two stores, read-only, while the benchmark runs: when each
//! message is filed in the recipient's Inbox, and how far the sender's
//! tracking got.
//!
//! The mailbox keeps its filing time in whole seconds, too coarse for the
//! latencies measured here, so the watcher polls the receiver's `mailbox`
//! table every few milliseconds for rows past the last one seen and takes
//! the time it first sees each row: the filing time, late by at most one
//! poll interval and the query. This is the one module that knows the
//! store's tables (`mailbox`, `messages`, `recipients`); it only reads them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

/// Opens an SQLite database read-only (the server keeps it in WAL mode;
/// readers never block its writes).
pub fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// What the watcher has seen in the recipient's Inbox: for each Message-ID
/// (without `<>`), the time each copy was first seen.
#[derive(Default)]
pub struct Filed {
    /// Copies seen per Message-ID.
    pub seen: HashMap<String, Vec<Instant>>,
}

/// A thread polling the receiver's mailbox for `address`'s Inbox.
pub struct MailboxWatch {
    filed: Arc<Mutex<Filed>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl MailboxWatch {
    /// Starts polling `database` every `interval` for Inbox rows of `address`
    /// newer than the ones there now.
    pub fn start(
        database: &Path,
        address: &str,
        interval: Duration,
    ) -> anyhow::Result<MailboxWatch> {
        let conn = open_read_only(database)?;
        let mut last: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM mailbox", [], |r| r.get(0))?;
        let filed = Arc::new(Mutex::new(Filed::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (filed_w, stop_w, address) = (filed.clone(), stop.clone(), address.to_string());
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut query = conn.prepare(
                "SELECT id, message_id FROM mailbox \
                 WHERE id > ?1 AND address = ?2 AND folder = 'inbox' ORDER BY id",
            )?;
            while !stop_w.load(Ordering::Relaxed) {
                let rows: Vec<(i64, Option<String>)> = query
                    .query_map((last, &address), |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let now = Instant::now();
                if !rows.is_empty() {
                    let mut filed = filed_w.lock().map_err(|_| anyhow::anyhow!("watch lock"))?;
                    for (id, message_id) in rows {
                        last = last.max(id);
                        let key = message_id.unwrap_or_default();
                        filed.seen.entry(key).or_default().push(now);
                    }
                }
                std::thread::sleep(interval);
            }
            Ok(())
        });
        Ok(MailboxWatch {
            filed,
            stop,
            thread: Some(thread),
        })
    }

    /// Runs `f` on what has been seen so far.
    pub fn with<T>(&self, f: impl FnOnce(&Filed) -> T) -> T {
        let filed = self.filed.lock().unwrap_or_else(|e| e.into_inner());
        f(&filed)
    }

    /// Stops the thread; an error it met is returned.
    pub fn stop(mut self) -> anyhow::Result<Filed> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("the mailbox watcher panicked"))??;
        }
        let filed = std::mem::take(&mut *self.filed.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(filed)
    }
}

/// How far the sender's tracking of the run's messages has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tracking {
    /// Recipients that reached delivered with both a processed and a
    /// dispatched step (the two MDNs came back).
    pub delivered: u64,
    /// Recipients that failed.
    pub failed: u64,
}

/// Reads the sender's tracking of the outbound messages whose Message-ID
/// starts with `prefix`.
pub fn tracking(conn: &Connection, prefix: &str) -> anyhow::Result<Tracking> {
    let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
    let (delivered, failed) = conn.query_row(
        "SELECT \
           coalesce(sum(r.state = 'delivered' AND r.processed_at IS NOT NULL \
                        AND r.dispatched_at IS NOT NULL), 0), \
           coalesce(sum(r.state = 'failed'), 0) \
         FROM recipients r JOIN messages m ON m.id = r.message \
         WHERE m.direction = 'outbound' AND m.message_id LIKE ?1 ESCAPE '\\'",
        [pattern],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    Ok(Tracking {
        delivered: u64::try_from(delivered).unwrap_or(0),
        failed: u64::try_from(failed).unwrap_or(0),
    })
}

/// Copies in `address`'s Inbox of each Message-ID starting with `prefix`,
/// counted in the database (the final check, independent of the watcher).
pub fn inbox_counts(
    conn: &Connection,
    address: &str,
    prefix: &str,
) -> anyhow::Result<HashMap<String, u64>> {
    let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
    let mut q = conn.prepare(
        "SELECT message_id, count(*) FROM mailbox \
         WHERE address = ?1 AND folder = 'inbox' AND message_id LIKE ?2 ESCAPE '\\' \
         GROUP BY message_id",
    )?;
    let rows = q.query_map((address, pattern), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut counts = HashMap::new();
    for row in rows {
        let (id, n) = row?;
        counts.insert(id, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}
