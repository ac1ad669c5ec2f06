//! Other stores' changes, seen without reading the tables they changed:
//! [`Store::outside_changes`](crate::Store::outside_changes) counts the
//! notices of queue work made due that other stores' committed
//! transactions sent (`LISTEN hisp_queue`, schema version 2), and
//! [`Store::directory_version`](crate::Store::directory_version) reads the
//! `directory` counter the directory tables' triggers move.
//!
//! The notices arrive on a connection of the store's own, outside the pool
//! (a pooled connection would hand its notices to whoever holds it next).
//! Each notice carries the tag of the store whose transaction sent it, so
//! this store's own changes are not counted. PostgreSQL delivers a notice
//! only once the transaction that sent it has committed, never for one
//! rolled back; a round trip on the listening connection before reading
//! the notices makes sure every notice of a commit that returned before
//! the call is counted.

use std::sync::{Mutex, MutexGuard};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Transaction};

use super::pool::PostgresPool;
use super::rows::col;
use crate::error::StoreError;

/// The channel the queue's triggers notify.
const CHANNEL: &str = "hisp_queue";

/// What one store knows of other stores' changes.
pub(super) struct Changes {
    /// This store's tag (its sessions' `hisp.store`).
    tag: String,
    state: Mutex<State>,
}

struct State {
    /// The listening connection; `None` after it failed, until the next
    /// call connects again.
    listener: Option<Client>,
    /// Other stores' notices counted so far, plus one for each time the
    /// listening connection was made again (notices may have been missed).
    outside: i64,
}

impl Changes {
    /// Starts listening on a connection of its own.
    pub(super) fn listen(pool: &PostgresPool, tag: String) -> Result<Changes, StoreError> {
        let listener = Some(listener(pool)?);
        Ok(Changes {
            tag,
            state: Mutex::new(State {
                listener,
                outside: 0,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the count usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of other stores' commits that made queue work due, seen
    /// so far.
    pub(super) fn outside(&self, pool: &PostgresPool) -> Result<i64, StoreError> {
        let mut state = self.state();
        if state.listener.is_none() {
            state.listener = Some(listener(pool)?);
            state.outside += 1;
        }
        let State { listener, outside } = &mut *state;
        let Some(client) = listener.as_mut() else {
            return Ok(*outside);
        };
        let counted = count_notices(client, &self.tag);
        match counted {
            Ok(n) => {
                *outside += n;
                Ok(*outside)
            }
            Err(e) => {
                *listener = None;
                Err(e)
            }
        }
    }
}

/// A new connection listening on [`CHANNEL`].
fn listener(pool: &PostgresPool) -> Result<Client, StoreError> {
    let mut client = pool.dedicated()?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(StoreError::postgres("listening for queue notices"))?;
    Ok(client)
}

/// The notices waiting on `client` that other stores sent.
fn count_notices(client: &mut Client, tag: &str) -> Result<i64, StoreError> {
    // The round trip: the server sends pending notices before its answer.
    client
        .batch_execute("")
        .map_err(StoreError::postgres("reading queue notices"))?;
    let mut notifications = client.notifications();
    let mut iter = notifications.iter();
    let mut n = 0;
    while let Some(notice) = iter
        .next()
        .map_err(StoreError::postgres("reading queue notices"))?
    {
        if notice.payload() != tag {
            n += 1;
        }
    }
    Ok(n)
}

/// The `directory` counter.
pub(super) fn directory(tx: &mut Transaction<'_>) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "SELECT value FROM store_counters WHERE name = 'directory'",
            &[],
        )
        .map_err(StoreError::postgres("reading the directory's version"))?;
    col(&row, 0)
}
