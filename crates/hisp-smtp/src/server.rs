//! The listener: accepts connections, runs a session per connection, restarts it over
//! TLS after STARTTLS, and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{info, info_span, warn, Instrument};

use crate::config::ServerConfig;
use crate::conn::Conn;
use crate::dialogue::{shutdown_requested, Dialogue, End};
use crate::error::SmtpError;
use crate::limits::{AddressSlots, Slot};
use crate::policy::Policy;
use crate::reply::Reply;
use crate::session::Session;

/// A handle that asks every listener holding a clone of it to stop.
///
/// Listeners stop accepting at once; sessions between transactions get `421 4.3.2` and
/// close; a transaction already under way runs to its reply (the 250 of a committed
/// message is still sent), up to the deadline given to [`Server::serve`].
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Asks the listeners to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Returns once [`trigger`](Self::trigger) has been called (at once if
    /// it was already), for tasks that wait on other things too.
    pub async fn triggered(&self) {
        let mut rx = self.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

/// What a listener did while stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions that ended on their own before the deadline.
    pub finished: usize,
    /// Sessions cut at the deadline.
    pub aborted: usize,
}

/// A bound SMTP listener with its settings and policy.
pub struct Server {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    policy: Arc<dyn Policy>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(
        addr: SocketAddr,
        config: ServerConfig,
        policy: Arc<dyn Policy>,
    ) -> Result<Server, SmtpError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SmtpError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        Ok(Server::from_listener(listener, config, policy))
    }

    /// Wraps an already bound listener.
    pub fn from_listener(
        listener: TcpListener,
        config: ServerConfig,
        policy: Arc<dyn Policy>,
    ) -> Server {
        Server {
            listener,
            config: Arc::new(config),
            policy,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, SmtpError> {
        self.listener.local_addr().map_err(SmtpError::Io)
    }

    /// Accepts and serves connections until `shutdown` is triggered, then waits up to
    /// `deadline` for running sessions before cutting them.
    pub async fn serve(self, shutdown: Shutdown, deadline: Duration) -> ShutdownReport {
        let mut stop = shutdown.subscribe();
        let mut sessions = JoinSet::new();
        let tls = self.config.tls.clone().map(TlsAcceptor::from);
        let role = self.config.role;
        let slots = Arc::new(AddressSlots::default());
        let span =
            info_span!("smtp_listener", role = ?role, addr = ?self.listener.local_addr().ok());
        async {
            info!("listening");
            loop {
                tokio::select! {
                    biased;
                    () = shutdown_requested(&mut stop) => break,
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                    accepted = self.listener.accept() => {
                        let (tcp, peer) = match accepted {
                            Ok(a) => a,
                            Err(e) => {
                                warn!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        };
                        if sessions.len() >= self.config.max_connections {
                            warn!(peer = %peer, "all connection slots taken; refused");
                            refuse(&tcp, &Reply::new(421, (4, 7, 0), "Too many connections, try again later"));
                            continue;
                        }
                        let Some(slot) = slots.take(peer.ip(), self.config.max_connections_per_address) else {
                            info!(peer = %peer, "too many connections from one address; refused");
                            refuse(&tcp, &Reply::too_many_connections_from(peer.ip()));
                            continue;
                        };
                        sessions.spawn(handle(
                            tcp,
                            peer,
                            slot,
                            self.config.clone(),
                            self.policy.clone(),
                            tls.clone(),
                            shutdown.subscribe(),
                        ));
                    }
                }
            }
            drop(self.listener);
            info!(
                sessions = sessions.len(),
                "stopped accepting; draining sessions"
            );
            let mut finished = 0;
            let drained = tokio::time::timeout(deadline, async {
                while sessions.join_next().await.is_some() {
                    finished += 1;
                }
            })
            .await;
            let aborted = if drained.is_err() {
                let n = sessions.len();
                sessions.abort_all();
                warn!(aborted = n, "shutdown deadline passed");
                n
            } else {
                0
            };
            ShutdownReport { finished, aborted }
        }
        .instrument(span)
        .await
    }
}

/// Sends `reply` to a connection about to be dropped, without waiting: the send buffer
/// of a new connection has room for it, and the accept loop must never wait on a
/// client.
fn refuse(tcp: &TcpStream, reply: &Reply) {
    let _ = tcp.try_write(reply.to_wire().as_bytes());
}

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A session id unique within this host: the current time in microseconds and a
/// process-wide counter.
fn next_session_id() -> String {
    let n = SESSION_COUNTER.fetch_add(1, Ordering::Relaxed) % 0x1_0000;
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{micros:x}{n:04x}")
}

/// The `220` the server opens a session with. RFC 2034 §3: no enhanced code on it.
pub(crate) fn greeting(config: &ServerConfig) -> Reply {
    Reply::plain(220, format!("{} ESMTP hisp", config.hostname))
}

/// Serves one connection: the clear-text part and, after STARTTLS, the TLS part. Every
/// read, write and the TLS handshake has a deadline, and none runs past the end of the
/// session's life (`max_session_duration`). `_slot` is the session's place among its
/// address's sessions, given back when it ends.
async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    _slot: Slot,
    config: Arc<ServerConfig>,
    policy: Arc<dyn Policy>,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let local = match tcp.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let id = next_session_id();
    let span = info_span!("smtp_session", session = %id, peer = %peer);
    let now = tokio::time::Instant::now();
    let end = now
        .checked_add(config.max_session_duration)
        .unwrap_or(now + Duration::from_secs(86_400));
    let write_timeout = config.command_timeout;
    let handshake_timeout = config.tls_handshake_timeout;
    async move {
        info!("connected");
        let session = Session {
            id,
            role: config.role,
            peer,
            local,
            helo: None,
            tls: false,
            account: None,
        };
        let mut conn = Conn::new(tcp).with_deadlines(write_timeout, end);
        conn.queue(&greeting(&config));
        let mut dialogue = Dialogue::new(config, policy, session);
        let ended = dialogue.run(&mut conn, &mut stop).await;
        let tcp = match (ended, tls) {
            (Ok(End::StartTls), Some(acceptor)) => {
                let deadline = conn.deadline(handshake_timeout);
                let handshake = acceptor.accept(conn.into_inner());
                match tokio::time::timeout_at(deadline, handshake).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        info!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        // Nothing can be said in clear once STARTTLS got its 220: close.
                        info!("TLS handshake timed out; closing");
                        return;
                    }
                }
            }
            (Ok(_), _) => {
                info!("closed");
                return;
            }
            (Err(e), _) => {
                info!(error = %e, "connection error");
                return;
            }
        };
        dialogue.restart_after_tls();
        let mut conn = Conn::new(tcp).with_deadlines(write_timeout, end);
        match dialogue.run(&mut conn, &mut stop).await {
            Ok(_) => info!("closed"),
            Err(e) => info!(error = %e, "connection error"),
        }
    }
    .instrument(span)
    .await
}
