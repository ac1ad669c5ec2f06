//! Reading CRLF-terminated lines with a length bound, so no client can make the server
//! buffer without limit.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line read from the peer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, with its line ending.
    Complete,
    /// The line exceeded the limit; it was consumed up to its LF and discarded.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// Reads one line ending in LF into `buf` (cleared first), at most `max` octets with the
/// line ending.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn long_line_is_consumed_and_reported() {
        let input: &[u8] = b"short\r\nxxxxxxxxxxxxxxxxxxxx\r\nnext\r\n";
        let mut r = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"short\r\n");
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"next\r\n");
        assert_eq!(read_line(&mut r, 10, &mut buf).await.unwrap(), Line::Eof);
    }
}
