//! The store from async code: every call runs on tokio's blocking pool, as
//! `hisp_store` asks of its synchronous interface.

use std::sync::Arc;

use hisp_store::{retry, RetryPolicy, Store, StoreError};

use crate::error::GatewayError;

/// A shared store whose calls are made off the async threads.
#[derive(Clone)]
pub struct StoreHandle {
    store: Arc<dyn Store>,
}

impl StoreHandle {
    /// Wraps a shared store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        StoreHandle { store }
    }

    /// The store itself, for synchronous callers.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs `f` against the store on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&*store)).await??)
    }

    /// Runs `f` against the store on the blocking pool like
    /// [`call`](Self::call), and runs it again when it fails with a
    /// retryable error (busy, serialization failure, connection lost:
    /// [`StoreError::is_retryable`]) under the default [`RetryPolicy`]. For
    /// queue and tracking work, where a busy store should cost a short wait
    /// rather than an attempt or a 451: `f` must make exactly one store
    /// call, one transaction, so a failed run left nothing behind. `what`
    /// names the call in the retry's log lines.
    pub async fn call_retrying<T, F>(&self, what: &'static str, f: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: Fn(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        let policy = RetryPolicy::default();
        Ok(tokio::task::spawn_blocking(move || retry(&policy, what, || f(&*store))).await??)
    }

    /// Runs `f`, which uses the store among other blocking work, on the
    /// blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, GatewayError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store)).await?
    }
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}
