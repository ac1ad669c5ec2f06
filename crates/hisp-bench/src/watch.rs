//! Watching the two stores, read-only, while the benchmark runs: when each
//! message is filed in the recipient's Inbox, and how far the sender's
//! tracking got.
//!
//! The mailbox keeps its filing time in whole seconds, too coarse for the
//! latencies measured here, so the watcher polls the receiver's `mailbox`
//! table every few milliseconds for rows past the last one seen and takes
//! the time it first sees each row: the filing time, late by at most one
//! poll interval and the query. This is the one module that knows the
//! store's tables (`mailbox`, `messages`, `recipients`), in SQLite and in
//! PostgreSQL alike (`--store postgres`); it only reads them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::pg;

/// Where a site's store is, for the benchmark's reads.
#[derive(Debug, Clone)]
pub enum StoreAt {
    /// The SQLite file `hisp serve` keeps under its data directory.
    Sqlite(PathBuf),
    /// The site's PostgreSQL database.
    Postgres(pg::Database),
}

impl StoreAt {
    /// A new connection for reading: SQLite read-only, PostgreSQL as the
    /// database's owner (the queries here only read).
    pub fn open(&self) -> anyhow::Result<Reader> {
        Ok(match self {
            StoreAt::Sqlite(path) => Reader::Sqlite(open_read_only(path)?),
            StoreAt::Postgres(db) => Reader::Postgres {
                client: Box::new(db.connect()?),
                poll: None,
            },
        })
    }
}

/// A connection to a store, with the benchmark's queries for each backend.
/// The two schemas differ where PostgreSQL has no `COLLATE NOCASE`: its
/// address columns have a lower-cased `address_key` beside them.
pub enum Reader {
    /// SQLite, read-only.
    Sqlite(Connection),
    /// PostgreSQL.
    Postgres {
        /// The connection (boxed: it is several times an SQLite one).
        client: Box<postgres::Client>,
        /// The mailbox poll's two statements (new rows, skipped rows),
        /// prepared once: they run every few milliseconds.
        poll: Option<(postgres::Statement, postgres::Statement)>,
    },
}

/// The LIKE pattern of Message-IDs starting with `prefix` (`\` escapes).
fn like_prefix(prefix: &str) -> String {
    format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

impl Reader {
    /// The highest mailbox row id now (0 when empty).
    pub fn last_mailbox_id(&mut self) -> anyhow::Result<i64> {
        const Q: &str = "SELECT coalesce(max(id), 0) FROM mailbox";
        Ok(match self {
            Reader::Sqlite(conn) => conn.query_row(Q, [], |r| r.get(0))?,
            Reader::Postgres { client, .. } => client.query_one(Q, &[])?.get(0),
        })
    }

    /// Mailbox rows after row `last`, and the rows `gaps` (PostgreSQL
    /// only), in order: (id, Message-ID, whether it is in `address`'s
    /// Inbox).
    ///
    /// PostgreSQL takes a row's id when the row is inserted, and the
    /// filings of concurrent transactions commit in any order, so a row
    /// can appear below one already seen: the watcher asks again for the
    /// ids it skipped (`gaps`). SQLite has one writer at a time, so ids
    /// appear in order there.
    pub fn mailbox_after(
        &mut self,
        last: i64,
        gaps: &[i64],
        address: &str,
    ) -> anyhow::Result<Vec<(i64, Option<String>, bool)>> {
        match self {
            Reader::Sqlite(conn) => {
                let mut query = conn.prepare_cached(
                    "SELECT id, message_id, address = ?2 AND folder = 'inbox' \
                     FROM mailbox WHERE id > ?1 ORDER BY id",
                )?;
                let rows = query
                    .query_map((last, address), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            }
            Reader::Postgres { client, poll } => {
                // Two range scans of the primary key, not one `OR` (which
                // the planner may answer with a scan of the whole table).
                let (after, skipped) = match poll {
                    Some(p) => p.clone(),
                    None => poll
                        .insert((
                            client.prepare(
                                "SELECT id, message_id, address_key = $2 AND folder = 'inbox' \
                                 FROM mailbox WHERE id > $1 ORDER BY id",
                            )?,
                            client.prepare(
                                "SELECT id, message_id, address_key = $2 AND folder = 'inbox' \
                                 FROM mailbox WHERE id = ANY($1)",
                            )?,
                        ))
                        .clone(),
                };
                let key = address.to_lowercase();
                let mut rows: Vec<(i64, Option<String>, bool)> = Vec::new();
                if !gaps.is_empty() {
                    let gaps = gaps.to_vec();
                    rows.extend(
                        client
                            .query(&skipped, &[&gaps, &key])?
                            .iter()
                            .map(|r| (r.get(0), r.get(1), r.get(2))),
                    );
                }
                rows.extend(
                    client
                        .query(&after, &[&last, &key])?
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2))),
                );
                rows.sort_by_key(|r| r.0);
                Ok(rows)
            }
        }
    }

    /// How far the sender's tracking of the outbound messages whose
    /// Message-ID starts with `prefix` has got.
    pub fn tracking(&mut self, prefix: &str) -> anyhow::Result<Tracking> {
        let pattern = like_prefix(prefix);
        let (delivered, failed): (i64, i64) = match self {
            Reader::Sqlite(conn) => conn.query_row(
                "SELECT \
                   coalesce(sum(r.state = 'delivered' AND r.processed_at IS NOT NULL \
                                AND r.dispatched_at IS NOT NULL), 0), \
                   coalesce(sum(r.state = 'failed'), 0) \
                 FROM recipients r JOIN messages m ON m.id = r.message \
                 WHERE m.direction = 'outbound' AND m.message_id LIKE ?1 ESCAPE '\\'",
                [pattern],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
            Reader::Postgres { client, .. } => {
                let row = client.query_one(
                    "SELECT \
                       count(*) FILTER (WHERE r.state = 'delivered' \
                           AND r.processed_at IS NOT NULL AND r.dispatched_at IS NOT NULL), \
                       count(*) FILTER (WHERE r.state = 'failed') \
                     FROM recipients r JOIN messages m ON m.id = r.message \
                     WHERE m.direction = 'outbound' AND m.message_id LIKE $1 ESCAPE '\\'",
                    &[&pattern],
                )?;
                (row.get(0), row.get(1))
            }
        };
        Ok(Tracking {
            delivered: u64::try_from(delivered).unwrap_or(0),
            failed: u64::try_from(failed).unwrap_or(0),
        })
    }

    /// Copies in `address`'s Inbox of each Message-ID starting with
    /// `prefix`, counted in the database (the final check, independent of
    /// the watcher).
    pub fn inbox_counts(
        &mut self,
        address: &str,
        prefix: &str,
    ) -> anyhow::Result<HashMap<String, u64>> {
        let pattern = like_prefix(prefix);
        let rows: Vec<(String, i64)> = match self {
            Reader::Sqlite(conn) => {
                let mut q = conn.prepare(
                    "SELECT message_id, count(*) FROM mailbox \
                     WHERE address = ?1 AND folder = 'inbox' \
                       AND message_id LIKE ?2 ESCAPE '\\' \
                     GROUP BY message_id",
                )?;
                let rows = q
                    .query_map((address, pattern), |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                rows
            }
            Reader::Postgres { client, .. } => client
                .query(
                    "SELECT message_id, count(*) FROM mailbox \
                     WHERE address_key = $1 AND folder = 'inbox' \
                       AND message_id LIKE $2 ESCAPE '\\' \
                     GROUP BY message_id",
                    &[&address.to_lowercase(), &pattern],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        };
        Ok(rows
            .into_iter()
            .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

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

/// The most ids the watcher waits for between two rows it sees.
const MAX_GAP: i64 = 10_000;

/// How long the watcher waits for a skipped id to be committed.
const GAP_PATIENCE: Duration = Duration::from_secs(30);

/// Where the watcher is in the mailbox table: the highest id seen, and the
/// ids below it not seen yet, with since when (a transaction that took one
/// may still commit: see [`Reader::mailbox_after`]).
#[derive(Debug, Default)]
struct Cursor {
    last: i64,
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    fn after(last: i64) -> Cursor {
        Cursor {
            last,
            gaps: BTreeMap::new(),
        }
    }

    /// The skipped ids to ask for again.
    fn gaps(&self) -> Vec<i64> {
        self.gaps.keys().copied().collect()
    }

    /// Takes the rows of one poll (in id order) seen at `now`; returns the
    /// Message-IDs of the rows not seen before that are in the watched Inbox.
    fn take(&mut self, rows: Vec<(i64, Option<String>, bool)>, now: Instant) -> Vec<String> {
        let mut new = Vec::new();
        for (id, message_id, ours) in rows {
            let fresh = if id > self.last {
                // Ids skipped on the way (bounded: a jump that large is no
                // transaction in flight).
                if id - self.last <= MAX_GAP {
                    self.gaps.extend((self.last + 1..id).map(|g| (g, now)));
                }
                self.last = id;
                true
            } else {
                self.gaps.remove(&id).is_some()
            };
            if fresh && ours {
                new.push(message_id.unwrap_or_default());
            }
        }
        // An id not committed within this is a rolled-back insert.
        self.gaps
            .retain(|_, since| now.duration_since(*since) < GAP_PATIENCE);
        new
    }
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
    /// Starts polling the store every `interval` for Inbox rows of
    /// `address` newer than the ones there now, on a connection of its own.
    pub fn start(
        store: &StoreAt,
        address: &str,
        interval: Duration,
    ) -> anyhow::Result<MailboxWatch> {
        let mut reader = store.open()?;
        let mut cursor = Cursor::after(reader.last_mailbox_id()?);
        let filed = Arc::new(Mutex::new(Filed::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (filed_w, stop_w, address) = (filed.clone(), stop.clone(), address.to_string());
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop_w.load(Ordering::Relaxed) {
                let rows = reader.mailbox_after(cursor.last, &cursor.gaps(), &address)?;
                let now = Instant::now();
                let new = cursor.take(rows, now);
                if !new.is_empty() {
                    let mut filed = filed_w.lock().map_err(|_| anyhow::anyhow!("watch lock"))?;
                    for key in new {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, ours: bool) -> (i64, Option<String>, bool) {
        (id, Some(format!("m{id}")), ours)
    }

    #[test]
    fn a_row_committed_below_one_already_seen_is_still_seen_once() {
        let t0 = Instant::now();
        let mut cursor = Cursor::after(10);
        // 11 and 13 commit first; 12 is still in its transaction.
        assert_eq!(
            cursor.take(vec![row(11, true), row(13, true)], t0),
            ["m11", "m13"]
        );
        assert_eq!(cursor.gaps(), [12]);
        // The next poll returns 12, at last, and 13 again is not news.
        assert_eq!(cursor.take(vec![row(12, true)], t0), ["m12"]);
        assert!(cursor.gaps().is_empty());
        assert!(cursor.take(vec![row(12, true)], t0).is_empty());
    }

    #[test]
    fn rows_of_other_mailboxes_fill_gaps_without_being_reported() {
        let t0 = Instant::now();
        let mut cursor = Cursor::after(0);
        assert_eq!(cursor.take(vec![row(3, true)], t0), ["m3"]);
        assert_eq!(cursor.gaps(), [1, 2]);
        assert!(cursor
            .take(vec![row(1, false), row(4, false)], t0)
            .is_empty());
        assert_eq!(cursor.gaps(), [2]);
    }

    #[test]
    fn a_gap_never_committed_is_given_up_after_a_while() {
        let t0 = Instant::now();
        let mut cursor = Cursor::after(0);
        cursor.take(vec![row(2, true)], t0);
        assert_eq!(cursor.gaps(), [1]);
        cursor.take(Vec::new(), t0 + GAP_PATIENCE);
        assert!(cursor.gaps().is_empty());
    }
}
