//! Message bytes too large to hold twice (issue 14): a statement's
//! parameter is encoded into the client's buffer whole, and a row's value
//! is received whole before it is copied out, so a 25 MiB message would be
//! in memory twice on its way in or out. Above [`IN_ONE`] bytes a message
//! goes in through a binary `COPY` written field by field, its bytes in
//! [`PIECE`]-sized pieces, and comes out in pieces (`substring`) appended
//! to one buffer of its final size.

use std::io::Write;

use ::postgres::Transaction;

use crate::error::StoreError;
use crate::message::MessageRecordId;
use crate::tx::NewMessage;

/// The largest message moved in one statement.
pub(super) const IN_ONE: usize = 1 << 20;

/// [`IN_ONE`] as the SQL `integer` that `octet_length` is compared with.
pub(super) const IN_ONE_I32: i32 = 1 << 20;

/// The size of the pieces larger messages move in.
const PIECE: usize = 1 << 20;

/// The signature, flags and header extension length that open a binary
/// COPY (PostgreSQL's documentation of COPY, "Binary Format").
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Inserts `m` through a binary COPY, its bytes written in pieces; its id.
pub(super) fn insert(
    tx: &mut Transaction<'_>,
    m: &NewMessage<'_>,
    received_at: i64,
) -> Result<MessageRecordId, StoreError> {
    let failed = StoreError::postgres("storing a large message");
    let size = i64::try_from(m.bytes.len()).unwrap_or(i64::MAX);
    let body_len = i32::try_from(m.bytes.len()).map_err(|_| StoreError::Invalid {
        what: "message",
        value: format!("{} bytes", m.bytes.len()),
        reason: "larger than PostgreSQL's 1 GiB field".into(),
    })?;
    let mut w = tx
        .copy_in(
            "COPY messages (direction, message_id, envelope_from, received_at, size, body) \
             FROM STDIN (FORMAT binary)",
        )
        .map_err(StoreError::postgres("storing a large message"))?;
    let io = |e: std::io::Error| StoreError::Database {
        context: "storing a large message",
        kind: crate::error::DatabaseErrorKind::ConnectionLost,
        message: e.to_string(),
    };
    let text = |w: &mut ::postgres::CopyInWriter<'_>, v: Option<&str>| -> std::io::Result<()> {
        match v {
            None => w.write_all(&(-1i32).to_be_bytes()),
            Some(s) => {
                let len = i32::try_from(s.len()).unwrap_or(i32::MAX);
                w.write_all(&len.to_be_bytes())?;
                w.write_all(s.as_bytes())
            }
        }
    };
    let from = m.envelope_from.map(ToString::to_string);
    (|| -> std::io::Result<()> {
        w.write_all(COPY_HEADER)?;
        w.write_all(&6i16.to_be_bytes())?;
        text(&mut w, Some(m.direction.as_str()))?;
        text(&mut w, m.message_id.map(|id| id.as_str()))?;
        text(&mut w, from.as_deref())?;
        for n in [received_at, size] {
            w.write_all(&8i32.to_be_bytes())?;
            w.write_all(&n.to_be_bytes())?;
        }
        w.write_all(&body_len.to_be_bytes())?;
        for piece in m.bytes.chunks(PIECE) {
            w.write_all(piece)?;
        }
        w.write_all(&(-1i16).to_be_bytes())
    })()
    .map_err(io)?;
    w.finish().map_err(failed)?;
    let row = tx
        .query_one(
            "SELECT currval(pg_get_serial_sequence('messages', 'id'))",
            &[],
        )
        .map_err(StoreError::postgres("storing a large message"))?;
    let id: i64 = row
        .try_get(0)
        .map_err(StoreError::postgres("storing a large message"))?;
    Ok(MessageRecordId(id))
}

/// The bytes of message `id`, `len` of them, read in pieces.
pub(super) fn read(tx: &mut Transaction<'_>, id: i64, len: usize) -> Result<Vec<u8>, StoreError> {
    let mut body = Vec::with_capacity(len);
    let piece = i32::try_from(PIECE).unwrap_or(i32::MAX);
    while body.len() < len {
        // substring counts from 1.
        let from = i32::try_from(body.len() + 1).unwrap_or(i32::MAX);
        let row = tx
            .query_one(
                "SELECT substring(body FROM $2 FOR $3) FROM messages WHERE id = $1",
                &[&id, &from, &piece],
            )
            .map_err(StoreError::postgres("reading a large message"))?;
        let part: &[u8] = row
            .try_get(0)
            .map_err(StoreError::postgres("reading a large message"))?;
        if part.is_empty() {
            break;
        }
        body.extend_from_slice(part);
    }
    Ok(body)
}
