//! A connection's buffered reader and batched reply writer.
//!
//! Replies are queued and written when the client has nothing more buffered, which is
//! what RFC 2920 §3.2 asks of a pipelining server: group replies, but never hold one the
//! client is waiting for.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::lines::{read_line, Line};
use crate::reply::Reply;

/// A stream with its read buffer and the replies not yet written.
pub(crate) struct Conn<S> {
    pub(crate) reader: BufReader<S>,
    out: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(stream: S) -> Self {
        Conn {
            reader: BufReader::new(stream),
            out: Vec::new(),
        }
    }

    /// Queues a reply.
    pub(crate) fn queue(&mut self, reply: &Reply) {
        self.out.extend_from_slice(reply.to_wire().as_bytes());
    }

    /// Queues raw reply text (already CRLF-terminated).
    pub(crate) fn queue_raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Writes every queued reply.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let stream = self.reader.get_mut();
            stream.write_all(&self.out).await?;
            stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Writes the queued replies unless another complete pipelined command is already
    /// buffered (RFC 2920 §3.2: never hold a reply the client may be waiting for).
    pub(crate) async fn flush_if_idle(&mut self) -> io::Result<()> {
        if !self.reader.buffer().contains(&b'\n') {
            self.flush().await?;
        }
        Ok(())
    }

    /// True when the client sent bytes that have not been read yet.
    pub(crate) fn has_buffered_input(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Reads one line within `timeout`; `None` when the timeout passed.
    pub(crate) async fn read_line(
        &mut self,
        max: usize,
        timeout: Duration,
        buf: &mut Vec<u8>,
    ) -> io::Result<Option<Line>> {
        match tokio::time::timeout(timeout, read_line(&mut self.reader, max, buf)).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Gives the stream back (for the TLS handshake), dropping buffered input.
    pub(crate) fn into_inner(self) -> S {
        self.reader.into_inner()
    }
}
