//! A hook for fuzzing and randomised tests: runs the server side of one whole SMTP
//! session over client bytes held in memory, without sockets or TLS.
//!
//! Not part of the supported API (hidden from the docs); the fuzz target
//! `fuzz/fuzz_targets/smtp_session.rs` and `tests/fuzz_session.rs` call it. The session
//! runs through the same command loop (`Dialogue::run`) and `Conn` as a listener's sessions, with a
//! permissive policy and small limits, so the protocol code (command parsing, AUTH,
//! dot-unstuffing, size and line limits, pipelined reply batching) is what is exercised.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::config::{Role, ServerConfig};
use crate::conn::Conn;
use crate::dialogue::Dialogue;
use crate::policy::{Account, Policy};
use crate::reply::Reply;
use crate::server::greeting;
use crate::session::{Envelope, Session};

/// The only account the fuzzing policy accepts (AUTH PLAIN `AGFsaWNlAHNlY3JldA==`).
pub const USER: &str = "alice";
/// Its password.
pub const PASSWORD: &str = "secret";
/// The largest message the fuzzing server accepts, so the size limit is reachable.
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// The most recipients per message, so the limit is reachable.
pub const MAX_RECIPIENTS: usize = 5;

/// How the session is set up; [`run`] derives it from the first input byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Submission or backbone.
    pub role: Role,
    /// Whether the client connects from loopback (AUTH is offered in clear text then).
    pub loopback: bool,
    /// At the end of the input the client stays connected and silent (so the server's
    /// timeouts end the session) instead of closing the connection.
    pub stall: bool,
    /// Most bytes one read returns, to vary where lines split across reads; 0 for all.
    pub chunk: usize,
}

impl Setup {
    /// Bit 0: backbone when set; bit 1: a non-loopback peer when set; bit 2: the client
    /// stalls at the end; bits 3–7: the read chunk size (0: unlimited).
    pub fn from_byte(b: u8) -> Setup {
        Setup {
            role: if b & 1 == 0 {
                Role::Submission
            } else {
                Role::Backbone
            },
            loopback: b & 2 == 0,
            stall: b & 4 != 0,
            chunk: usize::from(b >> 3),
        }
    }

    /// The byte [`from_byte`](Self::from_byte) maps to this setup (chunk taken modulo 32).
    pub fn to_byte(self) -> u8 {
        let role = u8::from(self.role == Role::Backbone);
        let peer = u8::from(!self.loopback) << 1;
        let stall = u8::from(self.stall) << 2;
        // The mask keeps the value below 32, so the cast cannot truncate.
        role | peer | stall | (((self.chunk & 0x1f) as u8) << 3)
    }
}

/// What the server did with the input.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Everything the server wrote, from the greeting on.
    pub replies: Vec<u8>,
    /// The messages the policy took (with the `Received:` field), in order.
    pub messages: Vec<Vec<u8>>,
}

impl Outcome {
    /// Checks what must hold whatever the client sent: every reply line is
    /// `code SP/- text CRLF` with a 2xx–5xx code and no other CR or LF (RFC 5321 §4.2),
    /// the last reply is complete, nothing follows a `421` (RFC 5321 §3.8: the server
    /// closes after it), every message taken got its `250 2.0.0 Ok: queued`, and no
    /// message exceeds the size limit.
    pub fn check(&self) -> Result<(), String> {
        if !self.replies.is_empty() && !self.replies.ends_with(b"\r\n") {
            return Err("output does not end with CRLF".into());
        }
        let mut queued = 0;
        let mut last_sep = b' ';
        let mut closed = false;
        for line in self
            .replies
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let show = String::from_utf8_lossy(line);
            let Some(text) = line.strip_suffix(b"\r") else {
                return Err(format!("reply line without CRLF: {show:?}"));
            };
            if text.len() < 4
                || !(b'2'..=b'5').contains(&text[0])
                || !text[1..3].iter().all(u8::is_ascii_digit)
                || !matches!(text[3], b' ' | b'-')
            {
                return Err(format!("malformed reply line: {show:?}"));
            }
            if text.contains(&b'\r') {
                return Err(format!("bare CR in reply line: {show:?}"));
            }
            if closed {
                return Err(format!("reply after 421: {show:?}"));
            }
            closed = text.starts_with(b"421 ");
            if text.starts_with(b"250 2.0.0 Ok: queued as ") {
                queued += 1;
            }
            last_sep = text[3];
        }
        if last_sep != b' ' {
            return Err("last reply is incomplete".into());
        }
        if queued != self.messages.len() {
            return Err(format!(
                "{} messages taken but {queued} queued replies sent",
                self.messages.len()
            ));
        }
        for m in &self.messages {
            // The trace field is the first three lines; the client's text follows.
            let body_at = m
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w == b"\r\n")
                .nth(2)
                .map_or(0, |(i, _)| i + 2);
            if m.len() - body_at > MAX_MESSAGE_SIZE {
                return Err(format!("message of {} octets taken", m.len() - body_at));
            }
        }
        Ok(())
    }
}

/// Runs one session: the first byte picks the [`Setup`], the rest is what the client
/// sends before it closes the connection.
pub fn run(data: &[u8]) -> Outcome {
    match data.split_first() {
        Some((&first, rest)) => session(Setup::from_byte(first), rest),
        None => session(Setup::from_byte(0), &[]),
    }
}

/// Runs one session with `setup`, the client sending `input` and then closing.
///
/// Ends for every input: reads never wait before the end of `input`; there the client
/// closes the connection or, with [`Setup::stall`], goes silent until a timeout (1 ms
/// here) ends the session.
pub fn session(setup: Setup, input: &[u8]) -> Outcome {
    thread_local! {
        static RUNTIME: Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime with a timer builds without I/O resources");
    }
    RUNTIME.with(|rt| rt.block_on(serve(setup, input)))
}

async fn serve(setup: Setup, input: &[u8]) -> Outcome {
    let mut config = ServerConfig::new(setup.role, "mx.fuzz.example");
    config.max_message_size = MAX_MESSAGE_SIZE;
    config.max_recipients = MAX_RECIPIENTS;
    // Reads are ready at once until the input is used up, so only a stall can time out.
    config.command_timeout = Duration::from_millis(1);
    config.data_timeout = Duration::from_millis(1);
    let config = Arc::new(config);
    let policy = Arc::new(Permissive::default());
    let peer_ip = if setup.loopback {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
    };
    let session = Session {
        id: "fuzz".into(),
        role: setup.role,
        peer: SocketAddr::new(peer_ip, 40000),
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)), 25),
        helo: None,
        tls: false,
        account: None,
    };
    let mut conn = Conn::new(Wire {
        input,
        chunk: setup.chunk,
        stall: setup.stall,
        output: Vec::new(),
    });
    conn.queue(&greeting(&config));
    let mut dialogue = Dialogue::new(config, policy.clone(), session);
    // The sender stays alive so shutdown is never requested.
    let (_stop_tx, mut stop) = watch::channel(false);
    // An I/O error cannot come from `Wire`; STARTTLS is not offered, so the session
    // ends with the client or by the server closing.
    let _ = dialogue.run(&mut conn, &mut stop).await;
    let replies = conn.into_inner().output;
    let messages = std::mem::take(&mut *policy.messages.lock().expect("not poisoned"));
    Outcome { replies, messages }
}

/// Accepts [`USER`] with [`PASSWORD`], any sender and recipient, and every message.
#[derive(Default)]
struct Permissive {
    messages: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl Policy for Permissive {
    async fn authenticate(
        &self,
        _: &Session,
        user: &str,
        password: &str,
    ) -> Result<Account, Reply> {
        if user == USER && password == PASSWORD {
            Ok(Account::new(USER))
        } else {
            Err(Reply::auth_failed())
        }
    }

    async fn rcpt_to(&self, _: &Session, _: &Envelope, _: &str) -> Result<(), Reply> {
        Ok(())
    }

    async fn data(&self, _: &Session, envelope: &Envelope, message: Vec<u8>) -> Reply {
        self.messages.lock().expect("not poisoned").push(message);
        Reply::ok_queued(&envelope.id)
    }
}

/// The client's side of the connection: reads come from `input`, `chunk` bytes at most,
/// and never wait until it is used up; then they see the end of the stream or, if
/// `stall`, never complete. Writes go to `output`.
struct Wire<'a> {
    input: &'a [u8],
    chunk: usize,
    stall: bool,
    output: Vec<u8>,
}

impl AsyncRead for Wire<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.input.is_empty() && self.stall {
            // No waker is kept: nothing will arrive, and the server's timer wakes the task.
            return Poll::Pending;
        }
        let limit = if self.chunk == 0 {
            usize::MAX
        } else {
            self.chunk
        };
        let n = self.input.len().min(buf.remaining()).min(limit);
        let (now, later) = self.input.split_at(n);
        buf.put_slice(now);
        self.input = later;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Wire<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(Setup::from_byte(b).to_byte(), b);
        }
    }

    #[test]
    fn authenticated_submission_takes_one_message() {
        let input = b"EHLO c.example\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n\
            MAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
        let out = session(Setup::from_byte(0), input);
        out.check().unwrap();
        assert_eq!(out.messages.len(), 1);
        assert!(out.messages[0].starts_with(b"Received: from c.example (127.0.0.1)\r\n"));
        assert!(out.messages[0].ends_with(b"\r\nhi\r\n"));
        assert!(out.replies.ends_with(b"221 2.0.0 Bye\r\n"));
    }

    #[test]
    fn empty_input_gets_the_greeting() {
        let out = run(&[]);
        out.check().unwrap();
        assert_eq!(out.replies, b"220 mx.fuzz.example ESMTP hisp\r\n");
    }
}
