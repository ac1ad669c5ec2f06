//! A minimal SMTP client for tests: one command, one reply, with AUTH PLAIN
//! (the delivering client of hisp-smtp does not log in).

use std::net::SocketAddr;

use base64::Engine;
use hisp_smtp::Reply;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An open SMTP connection.
pub struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            stream: BufReader::new(stream),
        };
        let greeting = c.reply().await;
        assert_eq!(greeting.code, 220, "{greeting}");
        c
    }

    /// Connects, says EHLO and, with `user`, logs in with AUTH PLAIN.
    pub async fn login(addr: SocketAddr, user: Option<&str>, password: &str) -> Client {
        let mut c = Client::connect(addr).await;
        let ehlo = c.command("EHLO portal.test").await;
        assert_eq!(ehlo.code, 250, "{ehlo}");
        if let Some(user) = user {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            let auth = c.command(&format!("AUTH PLAIN {token}")).await;
            assert_eq!(auth.code, 235, "{auth}");
        }
        c
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends the message text (CRLF lines) dot-stuffed, then the final dot.
    pub async fn message(&mut self, text: &[u8]) -> Reply {
        let mut out = Vec::new();
        for line in text.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out).await;
        self.reply().await
    }

    async fn send(&mut self, bytes: &[u8]) {
        let s = self.stream.get_mut();
        s.write_all(bytes).await.expect("write");
        s.flush().await.expect("flush");
    }

    async fn reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.stream.read_line(&mut line).await.expect("read");
            assert!(n > 0, "connection closed; lines so far {lines:?}");
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Reply::parse(&lines).expect("an SMTP reply");
            }
        }
    }
}
