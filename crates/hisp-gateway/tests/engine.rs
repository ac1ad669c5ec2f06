//! The queue engine (`Worker::run`, issue 13) in process: a lease renewed
//! while an attempt is under way, and a stop that gives back what is still
//! in hand so that it is due again at once.

mod common;

use std::time::Duration;

use common::smtp::Client;
use common::{World, PASSWORD};
use hisp_gateway::{Routes, Worker, WorkerSettings};
use hisp_smtp::Shutdown;
use hisp_store::{AuditKind, MessageId, QueueEntry, QueueState, Store};
use time::OffsetDateTime;

const MESSAGE: &str = "From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: to a peer that never answers\r\n\
Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <engine-1@a.example>\r\n\
\r\n\
hello\r\n";

fn entry(world: &World) -> QueueEntry {
    world.a.store.queue(None).unwrap().remove(0)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_under_way_and_a_stop_gives_the_message_back_due_again() {
    let world = World::start().await;
    // b.example is routed to a peer that accepts and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let mut c = Client::login(world.a.submission, Some(&world.a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    assert_eq!(c.message(MESSAGE.as_bytes()).await.code, 250);
    c.command("QUIT").await;

    let mut routes = Routes::new();
    routes.insert("b.example", silent_addr);
    let mut settings = WorkerSettings::new("hisp.a.example");
    settings.lease = Duration::from_secs(3);
    settings.drain = Duration::from_millis(300);
    let worker = Worker::new(world.a.ctx.clone(), routes, settings);
    let stop = Shutdown::new();
    let engine = {
        let stop = stop.clone();
        tokio::spawn(async move { worker.run(&stop).await })
    };

    eventually("the message is claimed", || entry(&world).attempts == 1).await;
    let first_lease = entry(&world).leased_until.expect("leased");
    // Past the first lease's end: renewed (every second), still held.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let held = entry(&world);
    assert_eq!(held.attempts, 1, "no other claim took it");
    let renewed = held.leased_until.expect("still leased");
    assert!(
        renewed > first_lease && renewed > OffsetDateTime::now_utc(),
        "{first_lease} -> {renewed}"
    );

    stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), engine)
        .await
        .expect("the engine stops within its drain")
        .unwrap();
    let released = entry(&world);
    assert_eq!(released.state, QueueState::Pending);
    assert_eq!(released.leased_until, None, "given back");
    assert!(released.next_attempt_at <= OffsetDateTime::now_utc(), "due");
    let events = world
        .a
        .store
        .audit_events(&MessageId::parse("engine-1@a.example").unwrap())
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == AuditKind::Released),
        "{events:?}"
    );
    holder.abort();
    world.stop().await;
}
