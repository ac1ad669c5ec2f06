//! Submitting the run's messages over SMTP with AUTH, as a portal does:
//! `connections` sessions in parallel, each sending message after message
//! over its one session, at full speed or at a fixed overall rate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mail_send::smtp::message::Message;
use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient};
use tokio::net::TcpStream;

use crate::message::{self, ACCOUNT, PASSWORD, RECIPIENT, SENDER};

/// What to submit.
#[derive(Debug, Clone)]
pub struct Load {
    /// Tells this run's Message-IDs from any other's.
    pub run: String,
    /// The index of the first message (its Message-ID says it).
    pub first: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Number of messages.
    pub messages: usize,
    /// Messages per second in all; `None`: as fast as the server takes them.
    pub rate: Option<f64>,
}

/// One message taken: its Message-ID and when the 250 to its DATA came.
#[derive(Debug, Clone)]
pub struct Taken {
    /// Message-ID without `<>`.
    pub message_id: String,
    /// When the server answered 250 to the end of DATA.
    pub at: Instant,
}

/// A submission session, authenticated.
pub type Session = SmtpClient<TcpStream>;

/// Opens `n` sessions to `server`, each with AUTH done, so that the
/// measured part of a run holds no password check (argon2 costs tens of
/// milliseconds and about 19 MiB while it runs).
pub async fn connect_all(server: SocketAddr, n: usize) -> anyhow::Result<Vec<Session>> {
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        sessions.push(connect(server).await?);
    }
    Ok(sessions)
}

/// Submits `load` over `sessions` (one task each) as [`ACCOUNT`]; returns
/// each message as taken, in no particular order, and the sessions for
/// more. `start` is when message 0 is due (with a rate).
pub async fn submit(
    sessions: Vec<Session>,
    load: &Load,
    start: Instant,
) -> anyhow::Result<(Vec<Taken>, Vec<Session>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in sessions {
        let (next, load) = (next.clone(), load.clone());
        tasks.push(tokio::spawn(async move {
            session(client, &load, &next, start).await
        }));
    }
    let mut taken = Vec::with_capacity(load.messages);
    let mut sessions = Vec::new();
    for task in tasks {
        let (t, client) = task.await.context("a submission session panicked")??;
        taken.extend(t);
        sessions.push(client);
    }
    Ok((taken, sessions))
}

/// Ends the sessions with QUIT.
pub async fn quit_all(sessions: Vec<Session>) {
    for client in sessions {
        // The server may close first once all is done; a failed QUIT loses nothing.
        let _ = client.quit().await;
    }
}

/// One session's share: messages until none is left.
async fn session(
    mut client: Session,
    load: &Load,
    next: &AtomicUsize,
    start: Instant,
) -> anyhow::Result<(Vec<Taken>, Session)> {
    let mut taken = Vec::new();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= load.messages {
            break;
        }
        let message_id = message::message_id(&load.run, load.first + index);
        let body = message::message(&message_id, load.size);
        if let Some(rate) = load.rate {
            let due = start + Duration::from_secs_f64(index as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        client
            .send(Message::new(SENDER, [RECIPIENT], body))
            .await
            .with_context(|| format!("submitting <{message_id}>"))?;
        taken.push(Taken {
            message_id,
            at: Instant::now(),
        });
    }
    Ok((taken, client))
}

/// A submission session with AUTH done.
async fn connect(server: SocketAddr) -> anyhow::Result<Session> {
    let mut client = SmtpClient::connect(server, Duration::from_secs(60))
        .await
        .with_context(|| format!("connecting to {server}"))?;
    client.read().await?.assert_positive_completion()?;
    let capabilities = client.capabilities("bench.a.example", false).await?;
    client
        .authenticate(Credentials::new(ACCOUNT, PASSWORD), &capabilities)
        .await
        .context("AUTH")?;
    Ok(client)
}
