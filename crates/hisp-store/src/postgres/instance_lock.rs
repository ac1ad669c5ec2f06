//! One running instance per name: a `hisp serve` on PostgreSQL holds a
//! session-level advisory lock on its instance name for as long as it runs,
//! on a connection of its own. A second process started with the same name
//! is refused instead of releasing, at its start, the leases of the live
//! one (which would let the two deliver the same entries).
//!
//! The lock ends with its connection: when the process exits or is killed,
//! the server sees the connection close and frees it, so a restarted
//! instance takes its name back at once. The connection can also end under
//! a live process (the server restarted, an idle connection dropped on the
//! way): [`InstanceLock::keep`], called now and then, notices it, connects
//! again and takes the name back, or says that another process has it. The
//! URL must reach the server itself, not a pooler that shares sessions.

use ::postgres::Client;

use super::pool::Connector;
use super::store::PostgresStore;
use crate::error::StoreError;

/// The prefix of the text hashed to the lock's key, keeping it apart from
/// the store's other advisory locks (each hashes its own prefix).
const KEY_PREFIX: &str = "hisp-instance:";

/// The instance name held while this value lives.
pub struct InstanceLock {
    /// The connection whose session holds the lock; `None` after it was
    /// found lost, until [`InstanceLock::keep`] takes the name again.
    client: Option<Client>,
    connector: Connector,
    instance: String,
}

/// What [`InstanceLock::keep`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The name is still held on the same connection.
    Held,
    /// The connection had ended; the name is held again on a new one.
    TakenAgain,
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

    /// Checks that the name is still held: a round trip on its connection;
    /// when that connection has ended, a new one takes the name again.
    /// [`StoreError::InstanceRunning`] when another process took it
    /// meanwhile (it may have freed this one's leases: the caller must stop
    /// claiming); a database error when the server cannot be reached (the
    /// name is not held; try again later).
    pub fn keep(&mut self) -> Result<Kept, StoreError> {
        if let Some(client) = &mut self.client {
            if client.simple_query("SELECT 1").is_ok() {
                return Ok(Kept::Held);
            }
            self.client = None;
        }
        self.client = Some(take(&self.connector, &self.instance)?);
        Ok(Kept::TakenAgain)
    }
}

/// A new connection holding the name `instance`.
fn take(connector: &Connector, instance: &str) -> Result<Client, StoreError> {
    let mut client = connector.connect()?;
    let key = format!("{KEY_PREFIX}{instance}");
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .map_err(StoreError::postgres("taking the instance name"))?;
    let taken: bool = row
        .try_get(0)
        .map_err(StoreError::postgres("taking the instance name"))?;
    if taken {
        Ok(client)
    } else {
        Err(StoreError::InstanceRunning {
            instance: instance.to_string(),
        })
    }
}

impl PostgresStore {
    /// Takes this store's instance name for the life of the returned value;
    /// [`StoreError::InstanceRunning`] when another live process holds it.
    /// Two names whose 64-bit hashes collide would exclude each other too;
    /// the error names the instance, so a rename settles it.
    pub fn hold_instance(&self) -> Result<InstanceLock, StoreError> {
        let connector = self.pool().dedicated_connector();
        let client = take(&connector, self.instance())?;
        Ok(InstanceLock {
            client: Some(client),
            connector,
            instance: self.instance().to_string(),
        })
    }
}
