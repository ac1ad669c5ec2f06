//! A connection's buffered reader and batched reply writer.
//!
//! Replies are queued and written when the client has nothing more buffered, which is
//! what RFC 2920 §3.2 asks of a pipelining server: group replies, but never hold one the
//! client is waiting for.
//!
//! Every read and write has a deadline: its own timeout, and the end of the session's
//! life, whichever comes first, so no client can hold a session by going silent or by
//! not reading.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use crate::lines::{read_line, Line};
use crate::reply::Reply;

/// How long a write may take when no other limit is given.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(300);

/// A stream with its read buffer and the replies not yet written.
pub(crate) struct Conn<S> {
    pub(crate) reader: BufReader<S>,
    out: Vec<u8>,
    write_timeout: Duration,
    /// The end of the session's life, if it has one.
    end: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(stream: S) -> Self {
        Conn {
            reader: BufReader::new(stream),
            out: Vec::new(),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            end: None,
        }
    }

    /// Sets how long one write may take and when the session's life ends.
    pub(crate) fn with_deadlines(mut self, write_timeout: Duration, end: Instant) -> Self {
        self.write_timeout = write_timeout;
        self.end = Some(end);
        self
    }

    /// The earlier of `now + timeout` and the end of the session.
    pub(crate) fn deadline(&self, timeout: Duration) -> Instant {
        let now = Instant::now();
        // A timeout too large to add is as good as a day.
        let own = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400));
        self.end.map_or(own, |end| own.min(end))
    }

    /// The end of the session's life, if it has one.
    pub(crate) fn end(&self) -> Option<Instant> {
        self.end
    }

    /// True once the session's life is over.
    pub(crate) fn life_over(&self) -> bool {
        self.end.is_some_and(|end| Instant::now() >= end)
    }

    /// Queues a reply.
    pub(crate) fn queue(&mut self, reply: &Reply) {
        self.out.extend_from_slice(reply.to_wire().as_bytes());
    }

    /// Queues raw reply text (already CRLF-terminated).
    pub(crate) fn queue_raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Writes every queued reply; `TimedOut` when the client does not take them in
    /// time.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let deadline = self.deadline(self.write_timeout);
            let stream = self.reader.get_mut();
            let out = &self.out;
            let write = async {
                stream.write_all(out).await?;
                stream.flush().await
            };
            match tokio::time::timeout_at(deadline, write).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not read its replies in time",
                    ))
                }
            }
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

    /// Reads one line within `timeout` (and the session's life); `None` when the
    /// deadline passed.
    pub(crate) async fn read_line(
        &mut self,
        max: usize,
        timeout: Duration,
        buf: &mut Vec<u8>,
    ) -> io::Result<Option<Line>> {
        let deadline = self.deadline(timeout);
        match tokio::time::timeout_at(deadline, read_line(&mut self.reader, max, buf)).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Gives the stream back (for the TLS handshake), dropping buffered input.
    pub(crate) fn into_inner(self) -> S {
        self.reader.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that never reads fills the socket buffers; the write then ends with
    /// `TimedOut` at its deadline instead of waiting for ever.
    #[tokio::test]
    async fn a_write_the_client_does_not_read_times_out() {
        let (server, _client) = tokio::io::duplex(64);
        let mut conn = Conn::new(server).with_deadlines(
            Duration::from_millis(200),
            Instant::now() + Duration::from_secs(60),
        );
        conn.queue_raw(&"250 2.0.0 Ok\r\n".repeat(100));
        let started = Instant::now();
        let err = conn.flush().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// The end of the session's life cuts a read short even when the command timeout
    /// is longer.
    #[tokio::test]
    async fn the_end_of_life_cuts_a_read_short() {
        let (server, _client) = tokio::io::duplex(64);
        let mut conn = Conn::new(server).with_deadlines(
            Duration::from_secs(300),
            Instant::now() + Duration::from_millis(100),
        );
        let mut buf = Vec::new();
        let read = conn
            .read_line(512, Duration::from_secs(300), &mut buf)
            .await
            .unwrap();
        assert_eq!(read, None);
        assert!(conn.life_over());
    }
}
