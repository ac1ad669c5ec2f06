//! SQLite's failures as the store's backend-neutral [`StoreError::Database`]:
//! rusqlite's error codes classified into [`DatabaseErrorKind`].

use rusqlite::ffi;
use rusqlite::ErrorCode;

use crate::error::{DatabaseErrorKind, StoreError};

impl StoreError {
    /// A closure wrapping a rusqlite error with what the store was doing, for `map_err`.
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Database {
            context,
            kind: kind_of(&source),
            message: source.to_string(),
        }
    }
}

/// The kind of an SQLite failure.
///
/// - SQLITE_BUSY and SQLITE_LOCKED: another connection held the lock past the
///   busy timeout; except SQLITE_BUSY_SNAPSHOT, which says that a read
///   transaction's snapshot went stale before it could write (another
///   connection committed in between): what PostgreSQL calls a serialization
///   failure, so named alike. The busy handler does not wait on it, and
///   only a new transaction helps.
/// - SQLITE_PROTOCOL: a WAL locking race lost (SQLite retries it itself for
///   a while, then gives up): busy.
/// - SQLITE_CONSTRAINT: a constraint, whatever its extended code.
/// - An embedded SQLite has no connection to lose: nothing here is
///   [`DatabaseErrorKind::ConnectionLost`].
pub(crate) fn kind_of(e: &rusqlite::Error) -> DatabaseErrorKind {
    let Some(failure) = e.sqlite_error() else {
        return DatabaseErrorKind::Other;
    };
    match failure.code {
        ErrorCode::DatabaseBusy if failure.extended_code == ffi::SQLITE_BUSY_SNAPSHOT => {
            DatabaseErrorKind::Serialization
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DatabaseErrorKind::Busy,
        ErrorCode::FileLockingProtocolFailed => DatabaseErrorKind::Busy,
        ErrorCode::ConstraintViolation => DatabaseErrorKind::Constraint,
        _ => DatabaseErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    //! The classification proven on real SQLite files: two connections
    //! contending for the write lock, a stale snapshot, a constraint.

    use std::path::Path;
    use std::time::Duration;

    use rusqlite::{Connection, TransactionBehavior};
    use time::OffsetDateTime;

    use super::*;
    use crate::retry::{retry, RetryPolicy};
    use crate::sqlite::SqliteStore;
    use crate::{DirectAddress, Domain, MessageDirection, Store};

    fn addr(text: &str) -> DirectAddress {
        DirectAddress::parse(text).unwrap()
    }

    /// A second connection to the store's file, outside the store.
    fn other_connection(path: &Path) -> Connection {
        Connection::open(path).unwrap()
    }

    fn enqueue(store: &SqliteStore) -> Result<crate::MessageRecordId, StoreError> {
        store.enqueue(
            MessageDirection::Outbound,
            Some(&addr("alice@a.example")),
            &[addr("bob@b.example")],
            b"Message-ID: <1@a.example>\r\n\r\nhi\r\n",
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn a_write_while_another_connection_holds_the_write_lock_is_busy_and_retryable() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(tmp.path()).unwrap();
        // Short, so the test does not wait the store's 10 s.
        store
            .conn()
            .busy_timeout(Duration::from_millis(20))
            .unwrap();
        let mut holder = other_connection(store.path());
        let lock = holder
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();

        let err = enqueue(&store).unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Database {
                    context: "starting a transaction",
                    kind: DatabaseErrorKind::Busy,
                    message,
                } if message == "database is locked"
            ),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "database error while starting a transaction: database is locked"
        );

        // Retried, it succeeds once the other connection lets go (here
        // after the first failure), and nothing was half-written before.
        lock.rollback().unwrap();
        assert!(store.queue(None).unwrap().is_empty());
        let mut holder_tx = Some(
            holder
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap(),
        );
        let mut attempts = 0;
        let policy = RetryPolicy::immediate(3);
        let queued = retry(&policy, "queueing a message", || {
            attempts += 1;
            let result = enqueue(&store);
            if let Some(tx) = holder_tx.take() {
                tx.rollback().unwrap();
            }
            result
        });
        assert!(queued.is_ok(), "{queued:?}");
        assert_eq!(attempts, 2);
        assert_eq!(store.queue(None).unwrap().len(), 1);
    }

    #[test]
    fn a_write_on_a_stale_snapshot_is_a_serialization_failure_and_retryable() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(tmp.path()).unwrap();
        let path = store.path().to_path_buf();
        drop(store);
        let mut reader = other_connection(&path);
        let writer = other_connection(&path);
        let tx = reader.transaction().unwrap();
        // The read starts the snapshot.
        let _: i64 = tx
            .query_row("SELECT count(*) FROM domains", [], |r| r.get(0))
            .unwrap();
        writer
            .execute(
                "INSERT INTO domains (name, added_at) VALUES ('a.example', 1)",
                [],
            )
            .unwrap();
        let e = tx
            .execute(
                "INSERT INTO domains (name, added_at) VALUES ('b.example', 1)",
                [],
            )
            .unwrap_err();
        let err = StoreError::sqlite("adding a domain")(e);
        assert_eq!(
            err.database_kind(),
            Some(DatabaseErrorKind::Serialization),
            "{err:?}"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn a_constraint_is_not_retryable() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(tmp.path()).unwrap();
        store
            .add_domain(&Domain::parse("a.example").unwrap(), &[])
            .unwrap();
        let conn = other_connection(store.path());
        let e = conn
            .execute(
                "INSERT INTO domains (name, added_at) VALUES ('a.example', 1)",
                [],
            )
            .unwrap_err();
        let err = StoreError::sqlite("adding a domain")(e);
        assert_eq!(err.database_kind(), Some(DatabaseErrorKind::Constraint));
        assert!(!err.is_retryable());
        let not_sqlite = StoreError::sqlite("reading")(rusqlite::Error::QueryReturnedNoRows);
        assert_eq!(not_sqlite.database_kind(), Some(DatabaseErrorKind::Other));
        assert!(!not_sqlite.is_retryable());
    }
}
