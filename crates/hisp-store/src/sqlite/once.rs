//! Messages queued once under a name (`queued_once`): the mark and the
//! message are written in one transaction, so a sender that is stopped
//! anywhere and started again queues the message exactly once.

use super::cached::Cached;
use rusqlite::{OptionalExtension, Transaction};
use time::OffsetDateTime;

use super::queue;
use crate::error::StoreError;
use crate::expect::Expectation;
use crate::message::{MessageDirection, MessageRecordId};
use hisp_address::DirectAddress;

/// Refuses an empty mark, which would name nothing.
fn check_mark(mark: &str) -> Result<(), StoreError> {
    if mark.trim().is_empty() {
        return Err(StoreError::Invalid {
            what: "queue mark",
            value: mark.to_string(),
            reason: "a mark needs a name".into(),
        });
    }
    Ok(())
}

/// The message queued under `mark`, if any.
pub(crate) fn queued_once(
    tx: &Transaction<'_>,
    mark: &str,
) -> Result<Option<MessageRecordId>, StoreError> {
    check_mark(mark)?;
    tx.row(
        "SELECT message FROM queued_once WHERE mark = ?1",
        [mark],
        |r| r.get(0).map(MessageRecordId),
    )
    .optional()
    .map_err(StoreError::sqlite("reading a queue mark"))
}

/// Queues the message and records `mark` in the caller's transaction;
/// `None`, with nothing written, when `mark` is recorded already.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enqueue_once(
    tx: &Transaction<'_>,
    mark: &str,
    direction: MessageDirection,
    envelope_from: Option<&DirectAddress>,
    recipients: &[DirectAddress],
    bytes: &[u8],
    received_at: OffsetDateTime,
    expect: Expectation,
) -> Result<Option<MessageRecordId>, StoreError> {
    if queued_once(tx, mark)?.is_some() {
        return Ok(None);
    }
    let message = queue::enqueue(
        tx,
        direction,
        envelope_from,
        recipients,
        bytes,
        received_at,
        expect,
    )?;
    // The write transaction holds the database's write lock from its
    // start, so no other process can have written the mark since the read
    // above; were it there anyway, the error drops the whole transaction,
    // the message with it.
    tx.exec(
        "INSERT INTO queued_once (mark, message, at) VALUES (?1, ?2, ?3)",
        (mark, message.0, received_at.unix_timestamp()),
    )
    .map_err(StoreError::sqlite("recording a queue mark"))?;
    Ok(Some(message))
}
