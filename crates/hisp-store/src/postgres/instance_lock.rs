//! One running instance per name: a `hisp serve` on PostgreSQL holds a
//! session-level advisory lock on its instance name for as long as it runs,
//! on a connection of its own. A second process started with the same name
//! is refused instead of releasing, at its start, the leases of the live
//! one (which would let the two deliver the same entries).
//!
//! The lock ends with its connection: when the process exits or is killed,
//! the server sees the connection close and frees it, so a restarted
//! instance takes its name back at once.

use ::postgres::Client;

use super::store::PostgresStore;
use crate::error::StoreError;

/// The prefix of the text hashed to the lock's key, keeping it apart from
/// the store's other advisory locks (each hashes its own prefix).
const KEY_PREFIX: &str = "hisp-instance:";

/// The instance name held while this value lives.
pub struct InstanceLock {
    /// The connection whose session holds the lock.
    _client: Client,
    instance: String,
}

impl std::fmt::Debug for InstanceLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceLock")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl InstanceLock {
    /// The name held.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

impl PostgresStore {
    /// Takes this store's instance name for the life of the returned value;
    /// [`StoreError::InstanceRunning`] when another live process holds it.
    /// Two names whose 64-bit hashes collide would exclude each other too;
    /// the error names the instance, so a rename settles it.
    pub fn hold_instance(&self) -> Result<InstanceLock, StoreError> {
        let mut client = self.pool().dedicated()?;
        let key = format!("{KEY_PREFIX}{}", self.instance());
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .map_err(StoreError::postgres("taking the instance name"))?;
        let taken: bool = row
            .try_get(0)
            .map_err(StoreError::postgres("taking the instance name"))?;
        if !taken {
            return Err(StoreError::InstanceRunning {
                instance: self.instance().to_string(),
            });
        }
        Ok(InstanceLock {
            _client: client,
            instance: self.instance().to_string(),
        })
    }
}
