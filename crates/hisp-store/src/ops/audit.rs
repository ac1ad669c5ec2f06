//! The audit chain, for every backend: appending an event chained to the
//! one before it, and the hash that chains them.
//!
//! Each event carries `hash = SHA-256("hisp audit event v1\0" || previous
//! event's hash || each hashed column with its type and length)`; the first
//! event's previous hash is 32 zero bytes. The hashed columns are, in order,
//! `id, at, kind, message_id, message, address, detail`: integers for
//! `id`, `at` (Unix seconds) and `message`, text for the rest, null where
//! absent. The id is chosen here, not by the database, because it is
//! hashed.

use openssl::sha::Sha256;
use time::OffsetDateTime;

use crate::audit::AuditKind;
use crate::error::{Entity, StoreError};
use crate::message::{MessageId, MessageRecordId};
use crate::tx::{AuditRow, Tx};
use hisp_address::DirectAddress;

/// The hash before the first event.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// One hashed column's value, as read back from a database (which may
/// hold any type in a column someone edited by hand).
#[derive(Debug, Clone, Copy)]
pub(crate) enum HashValue<'a> {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text, as its UTF-8 bytes.
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
}

/// SHA-256 over the previous hash and the columns, each written with its
/// type and length, so no two different rows hash the same input.
pub(crate) fn chain_hash<'a>(
    prev: &[u8; 32],
    columns: impl IntoIterator<Item = HashValue<'a>>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"hisp audit event v1\0");
    h.update(prev);
    for value in columns {
        match value {
            HashValue::Null => h.update(&[0]),
            HashValue::Integer(i) => {
                h.update(&[1]);
                h.update(&i.to_be_bytes());
            }
            HashValue::Real(f) => {
                h.update(&[2]);
                h.update(&f.to_bits().to_be_bytes());
            }
            HashValue::Text(bytes) | HashValue::Blob(bytes) => {
                h.update(&[if matches!(value, HashValue::Text(_)) {
                    3
                } else {
                    4
                }]);
                h.update(&(bytes.len() as u64).to_be_bytes());
                h.update(bytes);
            }
        }
    }
    h.finish()
}

/// A stored hash as 32 bytes, if it is that long.
pub(crate) fn hash_array(bytes: Option<&[u8]>) -> Option<[u8; 32]> {
    bytes.and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// The hash of `row` chained to `prev`.
pub(crate) fn row_hash(prev: &[u8; 32], row: &AuditRow<'_>) -> [u8; 32] {
    fn text(t: Option<&str>) -> HashValue<'_> {
        t.map_or(HashValue::Null, |t| HashValue::Text(t.as_bytes()))
    }
    chain_hash(
        prev,
        [
            HashValue::Integer(row.id),
            HashValue::Integer(row.at.unix_timestamp()),
            HashValue::Text(row.kind.as_str().as_bytes()),
            text(row.message_id.map(MessageId::as_str)),
            row.message
                .map_or(HashValue::Null, |m| HashValue::Integer(m.0)),
            text(row.address),
            HashValue::Text(row.detail.as_bytes()),
        ],
    )
}

/// Appends one event naming no address.
pub(crate) fn write<T: Tx + ?Sized>(
    tx: &mut T,
    kind: AuditKind,
    message_id: Option<&MessageId>,
    message: Option<MessageRecordId>,
    detail: &str,
) -> Result<(), StoreError> {
    append(tx, kind, message_id, message, None, detail)
}

/// Appends one event about a local address (a mailbox, a portal account).
pub(crate) fn write_about<T: Tx + ?Sized>(
    tx: &mut T,
    kind: AuditKind,
    address: &DirectAddress,
    message_id: Option<&MessageId>,
    detail: &str,
) -> Result<(), StoreError> {
    append(tx, kind, message_id, None, Some(address), detail)
}

/// Appends one event about a local address and a queued message.
pub(crate) fn write_about_message<T: Tx + ?Sized>(
    tx: &mut T,
    kind: AuditKind,
    address: &DirectAddress,
    message_id: Option<&MessageId>,
    message: MessageRecordId,
    detail: &str,
) -> Result<(), StoreError> {
    append(tx, kind, message_id, Some(message), Some(address), detail)
}

/// Appends one event after the newest, chained to it.
fn append<T: Tx + ?Sized>(
    tx: &mut T,
    kind: AuditKind,
    message_id: Option<&MessageId>,
    message: Option<MessageRecordId>,
    address: Option<&DirectAddress>,
    detail: &str,
) -> Result<(), StoreError> {
    let (id, prev) = match tx.last_audit_event()? {
        None => (1, GENESIS),
        // A missing or malformed hash is a break the chain's check
        // reports; the next event still chains to what is there.
        Some(last) => (
            last.id + 1,
            hash_array(last.hash.as_deref()).unwrap_or(GENESIS),
        ),
    };
    let address = address.map(ToString::to_string);
    let now = OffsetDateTime::now_utc();
    let row = AuditRow {
        id,
        // Whole seconds: what is stored is what is hashed.
        at: now.replace_nanosecond(0).unwrap_or(now),
        kind,
        message_id,
        message,
        address: address.as_deref(),
        detail,
    };
    let hash = row_hash(&prev, &row);
    tx.insert_audit_event(&row, &hash)
}

/// [`Store::audit`](crate::Store::audit): an event for a change the store
/// does not make itself; with only `message`, its Message-ID is looked up.
pub(crate) fn audit<T: Tx + ?Sized>(
    tx: &mut T,
    kind: AuditKind,
    message_id: Option<&MessageId>,
    message: Option<MessageRecordId>,
    detail: &str,
) -> Result<(), StoreError> {
    let looked_up = match (message_id, message) {
        (None, Some(m)) => message_id_of(tx, m)?,
        _ => None,
    };
    write(tx, kind, message_id.or(looked_up.as_ref()), message, detail)
}

/// The Message-ID of a queued message, for the audit events written about
/// it; NotFound when there is no such message.
pub(crate) fn message_id_of<T: Tx + ?Sized>(
    tx: &mut T,
    message: MessageRecordId,
) -> Result<Option<MessageId>, StoreError> {
    tx.message_id_of(message)?
        .ok_or_else(|| StoreError::NotFound {
            entity: Entity::Message,
            name: message.0.to_string(),
        })
}

#[cfg(test)]
mod tests {
    //! The hash every backend writes and checks: pinned to values computed
    //! outside hisp from the format in the module's documentation, so a
    //! backend (or a copy from one to another) that hashed otherwise would
    //! break every chain it touched.

    use super::*;

    fn hex(hash: &[u8; 32]) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_chain_hash_is_the_sha256_of_the_previous_hash_and_each_typed_column() {
        let message_id = MessageId::parse("1@a.example").unwrap();
        let first = AuditRow {
            id: 1,
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            kind: AuditKind::Queued,
            message_id: Some(&message_id),
            message: Some(MessageRecordId(7)),
            address: None,
            detail: "inbound from <> to bob@b.example (3 bytes)",
        };
        let first_hash = row_hash(&GENESIS, &first);
        assert_eq!(
            hex(&first_hash),
            "a9f5713025d1644b2df4a1e373c2568d1f483818f64a02f79cefc616e0867989"
        );
        let second = AuditRow {
            id: 2,
            at: OffsetDateTime::from_unix_timestamp(1_700_000_001).unwrap(),
            kind: AuditKind::Read,
            message_id: None,
            message: None,
            address: Some("bob@b.example"),
            detail: "mailbox bob@b.example entry 1",
        };
        assert_eq!(
            hex(&row_hash(&first_hash, &second)),
            "814676b2c7f27b85f110ba99e5e78d1efab8ee2e7255a18a145294aa8c477740"
        );
        // The same columns chained to another event hash otherwise.
        assert_ne!(row_hash(&GENESIS, &second), row_hash(&first_hash, &second));
    }
}
