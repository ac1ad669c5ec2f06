//! Receiving the message text after DATA: dot-unstuffing, the end-of-data marker, and the
//! size and line limits, enforced while reading.

use std::io;
use std::time::Duration;

use tokio::io::AsyncBufRead;

use crate::lines::{read_line, Line};

/// How reading the message text ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataOutcome {
    /// The whole message, unstuffed, within the limits.
    Message(Vec<u8>),
    /// The message exceeded the size limit; the rest was read and discarded.
    TooBig,
    /// A text line exceeded the line limit; the rest was read and discarded.
    LineTooLong,
    /// The peer closed the connection before the end-of-data marker.
    Eof,
    /// No data arrived within the timeout.
    Timeout,
}

/// Reads message text up to `<CRLF>.<CRLF>` (RFC 5321 §4.1.1.4).
///
/// Only a line that is exactly `.` CRLF, after a line that ended in CRLF, ends the data,
/// so a bare-LF `\n.\n` sequence cannot smuggle a second message. RFC 5321 §4.5.2: a
/// leading dot on any other line is removed.
pub(crate) async fn read_data<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max_size: usize,
    max_line: usize,
    timeout: Duration,
) -> io::Result<DataOutcome> {
    let mut message = Vec::new();
    let mut line = Vec::new();
    let mut too_big = false;
    let mut line_too_long = false;
    let mut after_crlf = true;
    loop {
        let read = tokio::time::timeout(timeout, read_line(reader, max_line, &mut line)).await;
        let kind = match read {
            Err(_) => return Ok(DataOutcome::Timeout),
            Ok(r) => r?,
        };
        match kind {
            Line::Eof => return Ok(DataOutcome::Eof),
            Line::TooLong => {
                line_too_long = true;
                // The discarded line's ending is unknown; treat it as CRLF.
                after_crlf = true;
                continue;
            }
            Line::Complete => {}
        }
        if after_crlf && line == b".\r\n" {
            break;
        }
        let text: &[u8] = if after_crlf && line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line
        };
        after_crlf = line.ends_with(b"\r\n");
        if !too_big && !line_too_long {
            if message.len() + text.len() > max_size {
                // RFC 1870 §6: refuse with 552 after the end of data; stop storing now.
                too_big = true;
                message = Vec::new();
            } else {
                message.extend_from_slice(text);
            }
        }
    }
    Ok(if too_big {
        DataOutcome::TooBig
    } else if line_too_long {
        DataOutcome::LineTooLong
    } else {
        DataOutcome::Message(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: &[u8], max: usize) -> DataOutcome {
        let mut r = tokio::io::BufReader::with_capacity(3, input);
        read_data(&mut r, max, 1000, Duration::from_secs(5))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn removes_one_leading_dot_rfc5321_4_5_2() {
        let out = run(b"a\r\n..b\r\n...\r\n.\r\nQUIT\r\n", 100).await;
        assert_eq!(out, DataOutcome::Message(b"a\r\n.b\r\n..\r\n".to_vec()));
    }

    #[tokio::test]
    async fn bare_lf_dot_does_not_end_data() {
        let out = run(b"a\n.\nb\r\n.\r\n", 100).await;
        assert_eq!(out, DataOutcome::Message(b"a\n.\nb\r\n".to_vec()));
    }

    #[tokio::test]
    async fn oversize_is_read_to_the_end_rfc1870_6() {
        let out = run(b"0123456789\r\n0123456789\r\n.\r\n", 15).await;
        assert_eq!(out, DataOutcome::TooBig);
    }

    /// A small deterministic generator, so the randomised tests need no crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Dot-stuffing by the client and unstuffing by the server give back
    /// the message exactly, whatever dots and lines it holds (RFC 5321 §4.5.2).
    #[tokio::test]
    async fn stuffing_then_unstuffing_is_the_identity_on_random_messages() {
        let mut rng = XorShift(0x534d_5450);
        let pieces: [&[u8]; 7] = [b".", b"..", b"x", b"hello", b" ", b"\xc3\xa9", b"\t"];
        for round in 0..300 {
            let mut message = Vec::new();
            for _ in 0..rng.below(40) {
                for _ in 0..rng.below(6) {
                    message.extend_from_slice(pieces[rng.below(pieces.len() as u64)]);
                }
                message.extend_from_slice(b"\r\n");
            }
            let mut wire = crate::client::dot_stuff(&message);
            wire.extend_from_slice(b".\r\n");
            assert_eq!(
                run(&wire, 1 << 20).await,
                DataOutcome::Message(message),
                "round {round}"
            );
        }
    }

    /// Whatever bytes arrive, reading ends with an outcome, never a panic.
    #[tokio::test]
    async fn random_bytes_never_panic() {
        let mut rng = XorShift(0x4441_5441);
        let alphabet = b".\r\nab";
        for _ in 0..500 {
            let len = rng.below(300);
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64)])
                .collect();
            let _ = run(&input, 64).await;
        }
    }
}
