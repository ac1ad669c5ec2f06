//! The server as the gateway's builder assembles it (issue 13): two servers
//! bound on port 0 pass a message and its MDNs with their own queue
//! engines, and a stop runs in order — the listeners stop accepting, then
//! the attached services stop while the engine still holds its work, then
//! the engine gives back what it could not finish, due again at once.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::smtp::Client;
use common::{Sites, World, PASSWORD};
use hisp_gateway::compose::Draft;
use hisp_gateway::server::{Attachment, BoxFuture, RunningService, ServiceContext, ServiceError};
use hisp_store::{
    AuditKind, DirectAddress, Folder, MessageId, NotifySettings, QueueState, Store, TrackingState,
};
use time::OffsetDateTime;

const MESSAGE: &str = "From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: between two built servers\r\n\
Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <built-1@a.example>\r\n\
\r\n\
hello\r\n";

fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

/// Waits up to 20 s for `check`, looking every 50 ms (a wait for a state,
/// not a measure of speed).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 20 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_built_on_port_0_pass_a_message_and_its_mdns_complete_the_senders_tracking() {
    let world = World::start_engines().await;
    for port in [
        world.a.submission.port(),
        world.a.backbone.port(),
        world.b.submission.port(),
        world.b.backbone.port(),
    ] {
        assert_ne!(port, 0, "the bound port, not the one asked for");
    }
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    assert_eq!(c.message(MESSAGE.as_bytes()).await.code, 250);
    c.command("QUIT").await;

    let bob_inbox = || {
        world
            .b
            .store
            .mailbox(&addr("bob@b.example"), Folder::Inbox)
            .unwrap()
    };
    eventually("the message is in bob's Inbox at B", || {
        bob_inbox().len() == 1
    })
    .await;
    let received = world.b.store.read_message(bob_inbox()[0].id).unwrap();
    let text = String::from_utf8_lossy(&received.bytes);
    assert!(
        text.contains("Subject: between two built servers") && text.ends_with("hello\r\n"),
        "opened at B: {text}"
    );
    let id = MessageId::parse("built-1@a.example").unwrap();
    let state = || world.a.store.tracked_message(&id).unwrap()[0].recipients[0].state;
    // B's processed and dispatched MDNs travel back through B's engine.
    eventually("A tracks bob as delivered", || {
        state() == TrackingState::Delivered
    })
    .await;
    assert!(world.b.store.quarantined().unwrap().is_empty());
    world.stop().await;
}

/// What the probe saw when the server stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AtStop {
    /// A connection to the submission listener was refused.
    listener_closed: bool,
    /// The queue entry was still leased: the engine held it.
    engine_held_it: bool,
}

/// An attached service that notes, when stopped, whether the listeners
/// were closed before it and the engine still ran.
struct Probe {
    seen: Arc<Mutex<Vec<AtStop>>>,
}

struct RunningProbe {
    seen: Arc<Mutex<Vec<AtStop>>>,
    ctx: ServiceContext,
}

impl Attachment for Probe {
    fn start(
        self: Box<Self>,
        ctx: ServiceContext,
    ) -> BoxFuture<Result<Box<dyn RunningService>, ServiceError>> {
        Box::pin(async move {
            Ok(Box::new(RunningProbe {
                seen: self.seen,
                ctx,
            }) as Box<dyn RunningService>)
        })
    }
}

impl RunningService for RunningProbe {
    fn stop(self: Box<Self>, _drain: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            let submission: SocketAddr = self.ctx.addresses.submission;
            let listener_closed = tokio::net::TcpStream::connect(submission).await.is_err();
            let store = self.ctx.store.clone();
            let engine_held_it = tokio::task::spawn_blocking(move || {
                store.queue(None).unwrap()[0].leased_until.is_some()
            })
            .await
            .unwrap();
            self.seen.lock().unwrap().push(AtStop {
                listener_closed,
                engine_held_it,
            });
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_closes_the_listeners_then_the_attached_services_then_gives_back_what_the_engine_holds(
) {
    // b.example is routed to a peer that accepts and never says a word, so
    // the engine's attempt is under way when the stop comes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let sites = Sites::new(false).await;
    let site = &sites.a;
    let alice = site
        .store
        .add_portal_user(
            &addr("alice@a.example"),
            PASSWORD,
            &NotifySettings::default(),
        )
        .unwrap();
    let mut settings = site.settings(sites.dns());
    settings.queue_engine = true;
    settings.routes.insert("b.example", silent_addr);
    settings.worker.drain = Duration::from_millis(300);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let queued = Arc::new(Mutex::new(None));
    let hook_queued = queued.clone();
    let server = site
        .builder(settings)
        .attach(Box::new(Probe { seen: seen.clone() }))
        .on_start(Box::new(move |sender| {
            Box::pin(async move {
                // The start-up work queues the engine's first message.
                let draft = Draft {
                    to: vec!["bob@b.example".into()],
                    subject: "queued at start".into(),
                    text: "hello\n".into(),
                    attachments: Vec::new(),
                };
                let sent = sender
                    .send(&alice, None, draft, OffsetDateTime::now_utc())
                    .await
                    .expect("queued");
                *hook_queued.lock().unwrap() = Some(sent.message_id);
            })
        }))
        .start()
        .await
        .expect("starts");
    let message_id = queued
        .lock()
        .unwrap()
        .clone()
        .expect("the hook ran at start");
    let store = server.store();
    let entry = || store.queue(None).unwrap().remove(0);
    let claimed = || entry().attempts == 1 && entry().leased_until.is_some();
    eventually("the engine claims what the hook queued", claimed).await;

    let report = server.stop().await.expect("stops");
    assert_eq!(
        *seen.lock().unwrap(),
        [AtStop {
            listener_closed: true,
            engine_held_it: true
        }],
        "the service stopped after the listeners, before the engine"
    );
    assert!(!report.engine_cut, "the engine stopped within its drain");
    assert_eq!(report.listeners.len(), 2);
    let released = entry();
    assert_eq!(released.state, QueueState::Pending);
    assert_eq!(released.leased_until, None, "given back");
    assert_eq!(released.attempts, 1);
    assert!(released.next_attempt_at <= OffsetDateTime::now_utc(), "due");
    let events = store
        .audit_events(&MessageId::parse(&message_id).unwrap())
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == AuditKind::Released),
        "{events:?}"
    );
    holder.abort();
    sites.responder.shutdown().await.unwrap();
}
