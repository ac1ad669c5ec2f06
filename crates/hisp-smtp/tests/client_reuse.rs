//! The delivering client's kept sessions ([`SessionCache`]) and PIPELINING, against a
//! recording SMTP peer on loopback that counts connections and notes, for each
//! command, whether the next one had arrived before it was answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hisp_smtp::{
    ClientConfig, ClientError, OutboundEnvelope, Peer, RecipientOutcome, ReuseSettings,
    SessionCache, Stage,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the recording peer behaves.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// Offer PIPELINING in the EHLO reply.
    pipelining: bool,
    /// After this many messages on a connection, close it (EOF) without a word.
    close_after: Option<usize>,
    /// After this many messages on a connection, answer the next command with 421
    /// and close.
    say_421_after: Option<usize>,
    /// After this many messages on a connection, read but never answer again.
    stall_after: Option<usize>,
    /// Refuse RCPT TO for addresses starting with this.
    refuse: Option<&'static str>,
}

/// What the peer saw.
#[derive(Default, Debug)]
struct Seen {
    connections: usize,
    /// Every command line, with the connection's number.
    commands: Vec<(usize, String)>,
    /// For each MAIL FROM: whether a RCPT TO had arrived before MAIL was answered.
    rcpt_before_mail_answered: Vec<bool>,
    messages: usize,
}

struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    async fn start(behaviour: Behaviour) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let number = {
                    let mut s = shared.lock().unwrap();
                    s.connections += 1;
                    s.connections
                };
                tokio::spawn(session(stream, number, behaviour, shared.clone()));
            }
        });
        Recorder { addr, seen }
    }

    fn peer(&self) -> Peer {
        Peer::by_address(self.addr)
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    fn verbs(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .commands
            .iter()
            .map(|(_, c)| c.split([' ', ':']).next().unwrap_or("").to_string())
            .collect()
    }

    fn count(&self, verb: &str) -> usize {
        self.verbs().iter().filter(|v| *v == verb).count()
    }
}

/// One SMTP session of the recording peer.
async fn session(
    stream: tokio::net::TcpStream,
    number: usize,
    behaviour: Behaviour,
    seen: Arc<Mutex<Seen>>,
) {
    let (read, mut write) = stream.into_split();
    let mut input = BufReader::new(read);
    let _ = write.write_all(b"220 recorder.test ESMTP\r\n").await;
    let mut messages = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        seen.lock()
            .unwrap()
            .commands
            .push((number, command.clone()));
        if behaviour.close_after == Some(messages) && messages > 0 {
            return;
        }
        if behaviour.say_421_after == Some(messages) && messages > 0 {
            let _ = write
                .write_all(b"421 4.3.2 Service shutting down, closing connection\r\n")
                .await;
            return;
        }
        if behaviour.stall_after == Some(messages) && messages > 0 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        let reply: String = if upper.starts_with("EHLO") {
            if behaviour.pipelining {
                "250-recorder.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n".into()
            } else {
                "250-recorder.test\r\n250 8BITMIME\r\n".into()
            }
        } else if upper.starts_with("MAIL") {
            // Did the client send RCPT before hearing this answer? Give it a
            // moment to show: a client that waits sends nothing.
            let early = tokio::time::timeout(Duration::from_millis(300), input.fill_buf())
                .await
                .ok()
                .and_then(Result::ok)
                .is_some_and(|buf| buf.starts_with(b"RCPT"));
            seen.lock().unwrap().rcpt_before_mail_answered.push(early);
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT") {
            let refused = behaviour.refuse.is_some_and(|r| {
                upper.starts_with(&format!("RCPT TO:<{}", r.to_ascii_uppercase()))
            });
            if refused {
                "550 5.1.1 no such user\r\n".into()
            } else {
                "250 2.1.5 ok\r\n".into()
            }
        } else if upper.starts_with("DATA") {
            let _ = write.write_all(b"354 go ahead\r\n").await;
            loop {
                line.clear();
                if input.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
            }
            messages += 1;
            seen.lock().unwrap().messages += 1;
            "250 2.0.0 taken\r\n".into()
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            "250 2.0.0 ok\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn config() -> ClientConfig {
    let mut config = ClientConfig::new("client.test", None);
    config.command_timeout = Duration::from_millis(1500);
    config.data_block_timeout = Duration::from_millis(1500);
    config.data_timeout = Duration::from_millis(1500);
    config
}

fn envelope(n: usize, rcpts: &[&str]) -> OutboundEnvelope {
    OutboundEnvelope {
        id: format!("<{n}@client.test>"),
        mail_from: "a@a.test".into(),
        rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
    }
}

const MESSAGE: &[u8] = b"Subject: x\r\n\r\nhello\r\n";

fn cache(idle: Duration, max_messages: usize, per_destination: usize) -> SessionCache {
    SessionCache::new(ReuseSettings {
        idle,
        max_messages,
        per_destination,
    })
}

/// Waits up to 10 s for `done`; the polling interval is no assertion of speed.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn delivered(outcome: &RecipientOutcome) -> bool {
    matches!(outcome, RecipientOutcome::Delivered(_))
}

#[tokio::test]
async fn several_messages_travel_over_one_session_with_rset_between_rfc_5321_4_1_1_5() {
    let peer = Recorder::start(Behaviour::default()).await;
    let cache = cache(Duration::from_secs(30), 100, 4);
    for n in 0..3 {
        let report = cache
            .deliver(
                &config(),
                &peer.peer(),
                &envelope(n, &["b@b.test"]),
                MESSAGE,
            )
            .await
            .unwrap();
        assert!(delivered(&report.recipients[0].1), "{report:?}");
    }
    assert_eq!(peer.connections(), 1);
    assert_eq!(
        peer.verbs(),
        [
            "EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT",
            "DATA"
        ]
    );
    let stats = cache.stats();
    assert_eq!((stats.opened, stats.reused, stats.found_closed), (1, 2, 0));
    assert_eq!(cache.idle_sessions(), 1);
    cache.close_all().await;
    until("QUIT at close_all", || peer.count("QUIT") == 1).await;
    assert_eq!(cache.idle_sessions(), 0);
}

#[tokio::test]
async fn mail_and_every_rcpt_go_in_one_write_when_pipelining_is_offered_rfc_2920_3_1() {
    let peer = Recorder::start(Behaviour {
        pipelining: true,
        refuse: Some("nobody"),
        ..Behaviour::default()
    })
    .await;
    let cache = cache(Duration::from_secs(30), 100, 4);
    for n in 0..2 {
        let report = cache
            .deliver(
                &config(),
                &peer.peer(),
                &envelope(n, &["b@b.test", "nobody@b.test", "c@b.test"]),
                MESSAGE,
            )
            .await
            .unwrap();
        // Each RCPT's own reply decides its recipient.
        let outcomes: Vec<bool> = report
            .recipients
            .iter()
            .map(|(_, o)| delivered(o))
            .collect();
        assert_eq!(outcomes, [true, false, true], "{report:?}");
        assert!(matches!(
            &report.recipients[1].1,
            RecipientOutcome::Permanent(r) if r.code == 550
        ));
    }
    let seen = peer.seen.lock().unwrap();
    assert_eq!(seen.rcpt_before_mail_answered, [true, true]);
    assert_eq!(seen.connections, 1);
    assert_eq!(seen.messages, 2);
}

#[tokio::test]
async fn one_command_at_a_time_when_pipelining_is_not_offered() {
    let peer = Recorder::start(Behaviour::default()).await;
    let cache = cache(Duration::from_secs(30), 100, 4);
    for n in 0..2 {
        let report = cache
            .deliver(
                &config(),
                &peer.peer(),
                &envelope(n, &["b@b.test", "c@b.test"]),
                MESSAGE,
            )
            .await
            .unwrap();
        assert!(report.recipients.iter().all(|(_, o)| delivered(o)));
    }
    assert_eq!(
        peer.seen.lock().unwrap().rcpt_before_mail_answered,
        [false, false]
    );
}

#[tokio::test]
async fn a_kept_session_the_peer_closed_is_replaced_within_the_same_delivery() {
    for behaviour in [
        Behaviour {
            close_after: Some(1),
            ..Behaviour::default()
        },
        Behaviour {
            say_421_after: Some(1),
            ..Behaviour::default()
        },
    ] {
        let peer = Recorder::start(behaviour).await;
        let cache = cache(Duration::from_secs(30), 100, 4);
        for n in 0..3 {
            let report = cache
                .deliver(
                    &config(),
                    &peer.peer(),
                    &envelope(n, &["b@b.test"]),
                    MESSAGE,
                )
                .await
                .unwrap_or_else(|e| panic!("message {n}: {e}"));
            assert!(delivered(&report.recipients[0].1));
        }
        // Each kept session turned out closed at its RSET: a new one each time.
        assert_eq!(peer.connections(), 3);
        assert_eq!(peer.seen.lock().unwrap().messages, 3);
        let stats = cache.stats();
        assert_eq!((stats.opened, stats.reused, stats.found_closed), (3, 0, 2));
    }
}

#[tokio::test]
async fn a_deadline_holds_on_a_kept_session_and_a_stall_is_not_retried_rfc_5321_4_5_3_2() {
    let peer = Recorder::start(Behaviour {
        stall_after: Some(1),
        ..Behaviour::default()
    })
    .await;
    let cache = cache(Duration::from_secs(30), 100, 4);
    // Longer than the peer's look for an early RCPT (300 ms), far shorter than its
    // stall.
    let mut config = config();
    config.command_timeout = Duration::from_millis(800);
    cache
        .deliver(&config, &peer.peer(), &envelope(0, &["b@b.test"]), MESSAGE)
        .await
        .unwrap();
    let started = Instant::now();
    let err = cache
        .deliver(&config, &peer.peer(), &envelope(1, &["b@b.test"]), MESSAGE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                stage: Stage::Reset,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_temporary());
    assert!(started.elapsed() < Duration::from_secs(10));
    // A stalled peer is not a closed one: no second connection in this delivery,
    // and the stalled session is not kept.
    assert_eq!(peer.connections(), 1);
    assert_eq!(cache.idle_sessions(), 0);
}

#[tokio::test]
async fn an_idle_session_is_ended_with_quit() {
    let peer = Recorder::start(Behaviour::default()).await;
    let cache = cache(Duration::from_millis(200), 100, 4);
    cache
        .deliver(
            &config(),
            &peer.peer(),
            &envelope(0, &["b@b.test"]),
            MESSAGE,
        )
        .await
        .unwrap();
    until("QUIT after the idle time", || peer.count("QUIT") == 1).await;
    assert_eq!(cache.idle_sessions(), 0);
    // The next message opens a new session.
    cache
        .deliver(
            &config(),
            &peer.peer(),
            &envelope(1, &["b@b.test"]),
            MESSAGE,
        )
        .await
        .unwrap();
    assert_eq!(peer.connections(), 2);
}

#[tokio::test]
async fn a_session_ends_after_its_most_messages() {
    let peer = Recorder::start(Behaviour::default()).await;
    let cache = cache(Duration::from_secs(30), 2, 4);
    for n in 0..5 {
        cache
            .deliver(
                &config(),
                &peer.peer(),
                &envelope(n, &["b@b.test"]),
                MESSAGE,
            )
            .await
            .unwrap();
    }
    // 2 + 2 + 1 messages.
    assert_eq!(peer.connections(), 3);
    until("QUIT of the two full sessions", || peer.count("QUIT") == 2).await;
    assert_eq!(cache.idle_sessions(), 1);
}

#[tokio::test]
async fn no_more_sessions_are_kept_to_one_destination_than_its_cap() {
    let peer = Recorder::start(Behaviour::default()).await;
    let cache = cache(Duration::from_secs(30), 100, 2);
    let deliveries = (0..4).map(|n| {
        let (cache, peer) = (cache.clone(), peer.peer());
        tokio::spawn(async move {
            cache
                .deliver(&config(), &peer, &envelope(n, &["b@b.test"]), MESSAGE)
                .await
        })
    });
    // Four at once: four sessions (the queue engine bounds how many run at once).
    let started: Vec<_> = deliveries.collect();
    for d in started {
        d.await.unwrap().unwrap();
    }
    assert!(cache.idle_sessions() <= 2, "{cache:?}");
    let opened = peer.connections();
    until("QUIT of the sessions over the cap", || {
        peer.count("QUIT") == opened - cache.idle_sessions()
    })
    .await;
}

#[tokio::test]
async fn zero_idle_time_keeps_no_session() {
    let peer = Recorder::start(Behaviour {
        pipelining: true,
        ..Behaviour::default()
    })
    .await;
    let cache = cache(Duration::ZERO, 100, 4);
    for n in 0..2 {
        cache
            .deliver(
                &config(),
                &peer.peer(),
                &envelope(n, &["b@b.test"]),
                MESSAGE,
            )
            .await
            .unwrap();
    }
    assert_eq!(peer.connections(), 2);
    until("QUIT of both", || peer.count("QUIT") == 2).await;
}
