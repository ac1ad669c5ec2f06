//! The queue engine (`Worker::run`, issue 13) in a server started with the
//! gateway's builder: a lease renewed while an attempt is under way, and a
//! stop that gives back what is still in hand so that it is due again at
//! once.

mod common;

use std::time::Duration;

use common::smtp::Client;
use common::{Sites, World, PASSWORD};
use hisp_store::{AuditKind, MessageId, QueueState, Store};
use time::OffsetDateTime;

const MESSAGE: &str = "From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: to a peer that never answers\r\n\
Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <engine-1@a.example>\r\n\
\r\n\
hello\r\n";

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
    // b.example is routed to a peer that accepts and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let World { a, b, responder } = World::serve(Sites::new(false).await, |a, _| {
        a.queue_engine = true;
        a.routes.insert("b.example", silent_addr);
        a.worker.lease = Duration::from_secs(3);
        a.worker.drain = Duration::from_millis(300);
    })
    .await;
    let mut c = Client::login(a.submission, Some(&a.user), PASSWORD).await;
    assert_eq!(c.command("MAIL FROM:<alice@a.example>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@b.example>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    assert_eq!(c.message(MESSAGE.as_bytes()).await.code, 250);
    c.command("QUIT").await;
    let store = a.store.clone();
    let entry = || store.queue(None).unwrap().remove(0);

    eventually("the message is claimed", || entry().attempts == 1).await;
    let first_lease = entry().leased_until.expect("leased");
    // Past the first lease's end: renewed (every second), still held.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let held = entry();
    assert_eq!(held.attempts, 1, "no other claim took it");
    let renewed = held.leased_until.expect("still leased");
    assert!(
        renewed > first_lease && renewed > OffsetDateTime::now_utc(),
        "{first_lease} -> {renewed}"
    );

    let report = tokio::time::timeout(Duration::from_secs(8), a.stop())
        .await
        .expect("the server stops");
    assert!(!report.engine_cut, "the engine stopped within its drain");
    let released = entry();
    assert_eq!(released.state, QueueState::Pending);
    assert_eq!(released.leased_until, None, "given back");
    assert!(released.next_attempt_at <= OffsetDateTime::now_utc(), "due");
    let events = store
        .audit_events(&MessageId::parse("engine-1@a.example").unwrap())
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == AuditKind::Released),
        "{events:?}"
    );
    holder.abort();
    b.stop().await;
    if let Some(r) = responder {
        r.shutdown().await.unwrap();
    }
}
