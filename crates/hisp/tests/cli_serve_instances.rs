//! Several `hisp serve` instances on one PostgreSQL database (issue 14):
//! B (b.example) is served by instances sharing one `hisp-testpg` database,
//! its CA and keys in one data directory, each instance with its own
//! `[store] instance` name and its own listeners; A (a.example) keeps
//! SQLite. The tests pin what an instance that dies or only pauses does to
//! the others' work: nothing accepted is lost or delivered twice, a lease
//! that ran out is taken over by another instance, and a lease still
//! renewed in time is not.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use serve::{
    free_ports, loopback, peers, reply, two_sites_on, Certs, Serve, Settings, Site, PASSWORD,
};

/// The `[queue]` of every site here: short retries and a 15-second lease,
/// so that what a killed instance held comes back within the test.
const QUEUE: &str = "[queue]\nretry_base_secs = 1\nretry_max_secs = 2\nlease_secs = 15\n";

/// A fresh database and the `[store]` table naming it as `instance`, its
/// password in a file beside the configuration.
fn postgres_store(dir: &tempfile::TempDir, instance: &str) -> (hisp_testpg::TestDatabase, String) {
    let db = hisp_testpg::TestDatabase::new();
    let password = dir.path().join("store-password");
    std::fs::write(&password, format!("{}\n", db.password())).unwrap();
    let table = format!(
        "[store]\nurl = \"{}\"\npassword_file = \"{}\"\ninstance = \"{instance}\"\npool_size = 8\n",
        db.url(),
        password.display()
    );
    (db, table)
}

/// One more instance of `site`: its configuration (`<name>.toml` beside the
/// site's, so the same data directory) with its own instance name and
/// listeners, and `extra` (whole lines) appended.
struct Instance {
    name: String,
    config: PathBuf,
    submission: SocketAddr,
    backbone: SocketAddr,
    dns: SocketAddr,
}

impl Instance {
    /// The site's own configuration as the instance `first` names.
    fn first(site: &Site, first: &str) -> Instance {
        Instance {
            name: first.to_string(),
            config: site.config(),
            submission: site.submission,
            backbone: site.backbone,
            dns: site.dns,
        }
    }

    /// A copy of the site's configuration (instance `first`) as instance
    /// `name` on new ports.
    fn another(site: &Site, first: &str, name: &str) -> Instance {
        let ports = free_ports(3);
        let (submission, backbone, dns) =
            (loopback(ports[0]), loopback(ports[1]), loopback(ports[2]));
        let text = std::fs::read_to_string(site.config())
            .unwrap()
            .replace(
                &format!("\"{}\"", site.submission),
                &format!("\"{submission}\""),
            )
            .replace(
                &format!("\"{}\"", site.backbone),
                &format!("\"{backbone}\""),
            )
            .replace(&format!("\"{}\"", site.dns), &format!("\"{dns}\""))
            .replace(
                &format!("instance = \"{first}\""),
                &format!("instance = \"{name}\""),
            );
        let config = site.path(&format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        Instance {
            name: name.to_string(),
            config,
            submission,
            backbone,
            dns,
        }
    }

    /// Starts it, its log in the site's directory as `<log>.log`.
    fn start(&self, site: &Site, log: &str) -> Serve {
        Serve::launch(
            "serve",
            &self.config,
            site.path(&format!("{log}.log")),
            &[self.submission, self.backbone, self.dns],
            Duration::from_secs(30),
        )
    }
}

/// A submission session with AUTH PLAIN as `account`, for many messages
/// over one connection.
struct Submitter {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Submitter {
    fn connect(server: SocketAddr, account: &str) -> Submitter {
        let stream = TcpStream::connect(server).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let out = stream.try_clone().unwrap();
        let mut s = Submitter {
            out,
            input: BufReader::new(stream),
        };
        s.expect("", "220");
        s.expect("EHLO portal.example\r\n", "250");
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{account}\0{PASSWORD}"));
        s.expect(&format!("AUTH PLAIN {token}\r\n"), "235");
        s
    }

    fn expect(&mut self, command: &str, code: &str) -> String {
        if !command.is_empty() {
            self.out.write_all(command.as_bytes()).unwrap();
        }
        let answer = reply(&mut self.input);
        assert!(answer.starts_with(code), "{command:?} -> {answer}");
        answer
    }

    /// Submits one message with `message_id` (without angle brackets);
    /// asserts the 250.
    fn send(&mut self, from: &str, to: &str, message_id: &str) {
        self.expect(&format!("MAIL FROM:<{from}>\r\n"), "250");
        self.expect(&format!("RCPT TO:<{to}>\r\n"), "250");
        self.expect("DATA\r\n", "354");
        let message = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: shared load\r\n\
             Message-ID: <{message_id}>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhello\r\n.\r\n"
        );
        self.expect(&message, "250");
    }
}

/// Submits each of `ids` over one session at `server` in a thread of its own.
fn submit(
    server: SocketAddr,
    account: &'static str,
    from: &'static str,
    to: &'static str,
    ids: Vec<String>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut session = Submitter::connect(server, account);
        for id in ids {
            session.send(from, to, &id);
        }
    })
}

/// A round-robin TCP balancer on loopback in front of several backends, as
/// a load balancer in front of one MX address: each connection goes to the
/// next backend, and one whose backend refuses the connection (dead) goes
/// to the one after. Counts the connections each backend got.
struct Balancer {
    per_backend: Arc<Vec<AtomicUsize>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Balancer {
    /// A balancer listening on `addr` (a port chosen before the sites'
    /// configurations were written).
    fn start_on(addr: SocketAddr, backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let per_backend: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped, counts) = (stop.clone(), per_backend.clone());
        let thread = std::thread::spawn(move || {
            let mut next = 0;
            while !stopped.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let chosen = (0..backends.len()).find_map(|i| {
                    let n = (next + i) % backends.len();
                    TcpStream::connect_timeout(&backends[n], Duration::from_secs(1))
                        .ok()
                        .map(|s| (n, s))
                });
                next = (next + 1) % backends.len();
                // No backend alive: the client sees the connection close.
                let Some((n, backend)) = chosen else { continue };
                counts[n].fetch_add(1, Ordering::Relaxed);
                client.set_nonblocking(false).unwrap();
                pipe(client, backend);
            }
        });
        Balancer {
            per_backend,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> Vec<usize> {
        self.per_backend
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies bytes both ways between `a` and `b` until either side ends; the
/// end of one side (a backend killed) closes the other.
fn pipe(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    std::thread::spawn(move || copy_then_close(a, b));
    std::thread::spawn(move || copy_then_close(b2, a2));
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

/// A mailbox's entries counted by Message-ID.
fn by_message_id(entries: &[Value]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for e in entries {
        let id = e["message_id"].as_str().unwrap_or_default().to_string();
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

/// `ids` as Message-ID header values, sorted.
fn bracketed(ids: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|id| format!("<{id}>")).collect();
    v.sort();
    v
}

/// Waits for `check` every `every`, for at most `wait`; panics with
/// `explain()` otherwise.
fn poll<T>(
    wait: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "not within {wait:?}: {}",
            explain()
        );
        std::thread::sleep(every);
    }
}

/// B's queue entries by state, and those pending under a lease now.
fn queue_states(db: &hisp_testpg::TestDatabase) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for row in db
        .admin()
        .query(
            "SELECT CASE WHEN state = 'pending' AND lease_token IS NOT NULL
                         THEN 'in flight (' || lease_owner || ')' ELSE state END,
                    count(*)
             FROM queue GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
    {
        out.insert(row.get(0), row.get(1));
    }
    out
}

/// The ids of the entries `instance` holds under a lease now.
fn held_by(db: &hisp_testpg::TestDatabase, instance: &str) -> Vec<i64> {
    db.admin()
        .query(
            "SELECT id FROM queue WHERE state = 'pending' AND lease_owner = $1
               AND lease_token IS NOT NULL ORDER BY id",
            &[&instance],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// (state, attempts, lease owner) of each entry of `ids`.
fn entries(
    db: &hisp_testpg::TestDatabase,
    ids: &[i64],
) -> BTreeMap<i64, (String, i64, Option<String>)> {
    db.admin()
        .query(
            "SELECT id, state, attempts, lease_owner FROM queue WHERE id = ANY($1)",
            &[&ids],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect()
}

/// How many queue entries a log says its instance finished.
fn finished_in(log: &str) -> usize {
    log.lines().filter(|l| l.ends_with(": finished")).count()
}

/// The audit trail of a site (`hisp audit export --json`).
fn audit(site: &Site) -> Vec<Value> {
    let run = site.run(&["audit", "export", "--json"], b"").ok();
    serde_json::from_slice::<Value>(&run.stdout)
        .expect("audit export --json")
        .as_array()
        .expect("an array")
        .clone()
}

/// For each Message-ID, how many events of `kind` whose detail starts with
/// `detail` name it.
fn events_per_message(events: &[Value], kind: &str, detail: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| {
        e["kind"] == kind && e["detail"].as_str().is_some_and(|d| d.starts_with(detail))
    }) {
        let id = e["message_id"].as_str().unwrap_or_default().to_string();
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

/// The recipients' states of the messages `from` sent, by Message-ID.
fn sent_states(site: &Site, from: &str) -> BTreeMap<String, Vec<String>> {
    let run = site.run(&["message", "list", "--json"], b"").ok();
    let json: Value = serde_json::from_slice(&run.stdout).expect("message list --json");
    json.as_array()
        .expect("an array")
        .iter()
        .filter(|m| m["from"] == from)
        .map(|m| {
            let states = m["recipients"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .map(|r| r["state"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            (
                m["message_id"].as_str().unwrap_or_default().to_string(),
                states,
            )
        })
        .collect()
}

/// A's queue entries by state (`hisp queue list --json`).
fn sqlite_queue_states(site: &Site) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in site.queue_entries() {
        let state = match (e["state"].as_str(), e["leased_until"].is_string()) {
            (Some("pending"), true) => "in flight".to_string(),
            (s, _) => s.unwrap_or_default().to_string(),
        };
        *out.entry(state).or_insert(0) += 1;
    }
    out
}

#[test]
fn three_instances_on_one_postgresql_file_2000_messages_and_their_mdns_exactly_once_through_a_kill_9_issue_14(
) {
    const HALF: usize = 500;
    let keys = tempfile::tempdir().unwrap();
    let (db, store) = postgres_store(&keys, "b1");
    // A reaches b.example through the balancer (started once B's backbones
    // are known) and discovers through b1's DNS responder, which stays up.
    let balancer_port = free_ports(1)[0];
    let (a, b) = two_sites_on(
        Certs::Issued,
        |_a, b| Settings {
            route_to: loopback(balancer_port),
            ..peers(_a, b)
        },
        &store,
    );
    for site in [&a, &b] {
        let mut config = std::fs::read_to_string(site.config()).unwrap();
        config.push_str(QUEUE);
        std::fs::write(site.config(), config).unwrap();
    }
    let instances = [
        Instance::first(&b, "b1"),
        Instance::another(&b, "b1", "b2"),
        Instance::another(&b, "b1", "b3"),
    ];
    let victim = &instances[2];
    let balancer = {
        let backends = instances.iter().map(|i| i.backbone).collect();
        Balancer::start_on(loopback(balancer_port), backends)
    };
    let mut serves: Vec<Serve> = instances.iter().map(|i| i.start(&b, &i.name)).collect();
    let serve_a = Serve::start(&a, "a");

    let a_ids: Vec<String> = (0..2 * HALF)
        .map(|n| format!("a2b-{n}@a.example"))
        .collect();
    let b_ids: Vec<String> = (0..2 * HALF)
        .map(|n| format!("b2a-{n}@b.example"))
        .collect();
    let started = Instant::now();

    // First half: A's portal over four sessions; B's over two sessions at
    // each instance's submission listener.
    let mut first: Vec<JoinHandle<()>> = a_ids[..HALF]
        .chunks(HALF / 4)
        .map(|c| {
            submit(
                a.submission,
                "portal-a",
                "pat@a.example",
                "doc@b.example",
                c.to_vec(),
            )
        })
        .collect();
    for (chunk, n) in b_ids[..HALF].chunks(HALF / 6).zip(0..) {
        let at = instances[n % 3].submission;
        first.push(submit(
            at,
            "ehr-b",
            "doc@b.example",
            "pat@a.example",
            chunk.to_vec(),
        ));
    }
    for t in first {
        t.join().expect("the first half is queued");
    }

    // Some have arrived, not all, and the victim has entries in hand: kill it.
    let held_at_kill = poll(
        Duration::from_secs(120),
        Duration::from_millis(50),
        || {
            let filed: i64 = db
                .admin()
                .query_one("SELECT count(*) FROM mailbox WHERE folder = 'inbox'", &[])
                .unwrap()
                .get(0);
            let held = held_by(&db, &victim.name);
            (filed >= 50 && held.len() >= 2).then_some(held)
        },
        || {
            format!(
                "no point to kill at:\n{:?}\n{}",
                queue_states(&db),
                serves[2].log()
            )
        },
    );
    serves[2].kill_9();
    let killed_at = Instant::now();
    let held_at_kill: Vec<i64> = {
        // What it held at the moment of the kill (an entry it finished
        // between the look and the kill is not held any more).
        let now = entries(&db, &held_at_kill);
        held_at_kill
            .into_iter()
            .filter(|id| {
                now[id].0 == "pending" && now[id].2.as_deref() == Some(victim.name.as_str())
            })
            .collect()
    };
    let filed_at_kill = b.mailbox("doc@b.example").len() + a.mailbox("pat@a.example").len();
    assert!(
        filed_at_kill < 4 * HALF,
        "everything had arrived before the kill: nothing was in flight"
    );
    let states_at_kill = queue_states(&db);

    // The load goes on at the two that live.
    let mut second: Vec<JoinHandle<()>> = a_ids[HALF..]
        .chunks(HALF / 4)
        .map(|c| {
            submit(
                a.submission,
                "portal-a",
                "pat@a.example",
                "doc@b.example",
                c.to_vec(),
            )
        })
        .collect();
    for (chunk, n) in b_ids[HALF..].chunks(HALF / 4).zip(0..) {
        let at = instances[n % 2].submission;
        second.push(submit(
            at,
            "ehr-b",
            "doc@b.example",
            "pat@a.example",
            chunk.to_vec(),
        ));
    }

    // The dead instance's leases lapse and the others take its entries.
    poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let now = entries(&db, &held_at_kill);
            now.values()
                .all(|(state, _, owner)| state != "pending" || owner.as_deref() != Some("b3"))
                .then_some(())
        },
        || {
            format!(
                "b3's entries were not taken over: {:?}",
                entries(&db, &held_at_kill)
            )
        },
    );
    let taken_over_after = killed_at.elapsed();
    for t in second {
        t.join().expect("the second half is queued");
    }
    // Restarted under its name, it shares the rest of the load.
    serves[2] = victim.start(&b, "b3-again");

    // Every message is filed once at its recipient.
    let logs = || -> String {
        let mut all = vec![serve_a.log()];
        all.extend(serves.iter().map(Serve::log));
        all.join("\n----\n")
    };
    let restarted_after = killed_at.elapsed();
    poll(
        Duration::from_secs(400),
        Duration::from_secs(1),
        || {
            let filed: i64 = db
                .admin()
                .query_one("SELECT count(*) FROM mailbox WHERE folder = 'inbox'", &[])
                .unwrap()
                .get(0);
            (filed >= 2 * HALF as i64).then_some(())
        },
        || {
            format!(
                "doc@b.example's inbox is short; B's queue {:?}",
                queue_states(&db)
            )
        },
    );
    let doc = b.mailbox("doc@b.example");
    let filed_at_b = started.elapsed();
    let pat = poll(
        Duration::from_secs(400),
        Duration::from_secs(3),
        || Some(a.mailbox("pat@a.example")).filter(|e| e.len() >= 2 * HALF),
        || {
            format!(
                "pat@a.example's inbox is short; A's queue {:?}",
                sqlite_queue_states(&a)
            )
        },
    );
    let filed_at_a = started.elapsed();
    // Every sent message's tracking reaches delivered at its sender, and
    // then both queues drain.
    for (site, from, ids) in [(&a, "pat@a.example", &a_ids), (&b, "doc@b.example", &b_ids)] {
        poll(
            Duration::from_secs(120),
            Duration::from_secs(2),
            || {
                let states = sent_states(site, from);
                let delivered = states
                    .values()
                    .filter(|s| s.iter().all(|s| s == "delivered"))
                    .count();
                (states.len() == ids.len() && delivered == ids.len()).then_some(())
            },
            || {
                let states = sent_states(site, from);
                let not: Vec<_> = states
                    .iter()
                    .filter(|(_, s)| s.iter().any(|s| s != "delivered"))
                    .take(10)
                    .collect();
                format!("{from}: {} sent, not delivered: {not:?}", states.len())
            },
        );
    }
    poll(
        Duration::from_secs(60),
        Duration::from_secs(1),
        || {
            let (b_q, a_q) = (queue_states(&db), sqlite_queue_states(&a));
            (b_q.keys().all(|k| k == "done") && a_q.keys().all(|k| k == "done")).then_some(())
        },
        || {
            format!(
                "queues not empty: B {:?} A {:?}\n{}",
                queue_states(&db),
                sqlite_queue_states(&a),
                logs()
            )
        },
    );
    let elapsed = started.elapsed();
    let kill_at = killed_at - started;

    // Exactly once, by Message-ID.
    let (at_b, at_a) = (by_message_id(&doc), by_message_id(&pat));
    let twice_b: Vec<_> = at_b.iter().filter(|(_, n)| **n > 1).collect();
    let twice_a: Vec<_> = at_a.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice_b.is_empty(), "filed twice at B: {twice_b:?}");
    assert!(twice_a.is_empty(), "filed twice at A: {twice_a:?}");
    assert_eq!(at_b.keys().cloned().collect::<Vec<_>>(), bracketed(&a_ids));
    assert_eq!(at_a.keys().cloned().collect::<Vec<_>>(), bracketed(&b_ids));

    // MDNs. Submission asks for final delivery (the accounts' default), so
    // the receiver answers each message it files with a processed and a
    // dispatched MDN, queued in the filing's transaction (`mdn-sent`), and
    // answers again only when the sender sent the message again after it
    // had been filed (a `duplicate` event: the answers go again so that the
    // sender's tracking completes). The sender tracks each of the two MDNs
    // once (`mdn-received` about the original, "MDN about ADDRESS: ...");
    // a copy of an MDN that comes again is `mdn-ignored`.
    let (audit_a, audit_b) = (audit(&a), audit(&b));
    let mut printed = Vec::new();
    for (receiver, sender, ids, name) in [
        (&audit_b, &audit_a, &a_ids, "A -> B"),
        (&audit_a, &audit_b, &b_ids, "B -> A"),
    ] {
        let processed = events_per_message(receiver, "mdn-sent", "processed MDN");
        let dispatched = events_per_message(receiver, "mdn-sent", "dispatched MDN");
        let duplicates = events_per_message(receiver, "duplicate", "");
        let tracked = events_per_message(sender, "mdn-received", "MDN about");
        let ignored = events_per_message(sender, "mdn-ignored", "");
        let mut wrong = Vec::new();
        for id in bracketed(ids) {
            let again = duplicates.get(&id).copied().unwrap_or(0);
            let counts =
                [&processed, &dispatched, &tracked].map(|m| m.get(&id).copied().unwrap_or(0));
            if counts != [1 + again, 1 + again, 2] {
                let events: Vec<String> = receiver
                    .iter()
                    .chain(sender.iter())
                    .filter(|e| e["message_id"] == id.as_str())
                    .map(|e| format!("{} {}", e["kind"], e["detail"]))
                    .collect();
                wrong.push(format!("{id}: queued processed/dispatched, tracked {counts:?} with {again} duplicates: {events:#?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{name}: {} messages with MDNs not sent or tracked once; the first: {:?}",
            wrong.len(),
            wrong.iter().take(3).collect::<Vec<_>>()
        );
        printed.push(format!(
            "{name}: the receiver queued {} processed and {} dispatched MDNs for {} messages ({} duplicate deliveries answered again); the sender tracked {} and ignored {} copies",
            processed.values().sum::<usize>(),
            dispatched.values().sum::<usize>(),
            ids.len(),
            duplicates.values().sum::<usize>(),
            tracked.values().sum::<usize>(),
            ignored.values().sum::<usize>(),
        ));
    }
    let verify = b.run(&["audit", "verify"], b"");
    assert_eq!(verify.code, 0, "{}", verify.stderr);

    let back = entries(&db, &held_at_kill);
    let finished: Vec<String> = serves
        .iter()
        .zip(["b1", "b2", "b3 (after the restart)"])
        .map(|(s, n)| format!("{n}: {}", finished_in(&s.log())))
        .collect();
    let killed_log = std::fs::read_to_string(b.path("b3.log")).unwrap_or_default();
    println!(
        "three instances, {} messages each way, in {elapsed:?} (kill at {kill_at:?}, \
         restart {restarted_after:?} after it; all filed at B at {filed_at_b:?}, at A at {filed_at_a:?})\n\
         filed: doc@b.example {} (distinct {}), pat@a.example {} (distinct {})\n\
         {}\n\
         B's queue at the end: {:?}; A's: {:?}\n\
         queue entries finished per instance (logs): {}, b3 before the kill: {}\n\
         balancer connections per backbone b1/b2/b3: {:?}\n\
         at the kill: {filed_at_kill} filed, B's queue {states_at_kill:?}; b3 held {} entries; \
         taken over {taken_over_after:?} after the kill (lease 15 s); now (state, attempts, owner): {back:?}",
        2 * HALF,
        doc.len(),
        at_b.len(),
        pat.len(),
        at_a.len(),
        printed.join("\n"),
        queue_states(&db),
        sqlite_queue_states(&a),
        finished.join(", "),
        finished_in(&killed_log),
        balancer.connections(),
        held_at_kill.len(),
    );
    for (id, (state, attempts, _)) in &back {
        assert_eq!(state, "done", "entry {id} held by the killed instance");
        assert!(
            *attempts >= 2,
            "entry {id} was taken up again after the kill: {attempts} attempts"
        );
    }
}

/// A plain SMTP server on loopback that holds its reply to each message's
/// final dot for `hold` and records the Message-ID of every message it
/// accepts; sessions side by side, each in a thread.
struct SlowSink {
    addr: SocketAddr,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SlowSink {
    fn start(hold: Duration) -> SlowSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped, record) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let record = record.clone();
                        std::thread::spawn(move || {
                            let _ = slow_session(stream, hold, &record);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SlowSink {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Drop for SlowSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One session of [`SlowSink`] (RFC 5321 §4.1 minimal).
fn slow_session(
    stream: TcpStream,
    hold: Duration,
    record: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 slow.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.to_ascii_uppercase();
        if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            out.write_all(b"250 slow.test\r\n")?;
        } else if verb.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let (mut id, mut in_headers) = (None, true);
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let text = line.trim_end_matches(['\r', '\n']);
                if text == "." {
                    break;
                }
                if text.is_empty() {
                    in_headers = false;
                }
                if in_headers
                    && id.is_none()
                    && text.to_ascii_lowercase().starts_with("message-id:")
                {
                    id = Some(text["message-id:".len()..].trim().to_string());
                }
            }
            std::thread::sleep(hold);
            record
                .lock()
                .unwrap()
                .push(id.unwrap_or_else(|| "(none)".to_string()));
            out.write_all(b"250 2.0.0 accepted\r\n")?;
        } else if verb.starts_with("QUIT") {
            out.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 2.0.0 ok\r\n")?;
        }
    }
}

/// SIGSTOP or SIGCONT to a running instance.
fn signal(serve: &Serve, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(serve.pid()).expect("a pid fits pid_t");
    // SAFETY: kill(2) with the pid of our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// What [`pause_one_of_two`] saw.
struct Paused {
    /// The entries the paused instance held when it was stopped.
    held: Vec<i64>,
    /// Their (state, attempts, owner) just before it was continued.
    before_continue: BTreeMap<i64, (String, i64, Option<String>)>,
    /// Their (state, attempts, owner) at the end.
    at_end: BTreeMap<i64, (String, i64, Option<String>)>,
    /// Entries the other instance finished while the first was stopped.
    others_work: i64,
    /// Each Message-ID the sink accepted, with how often.
    at_sink: BTreeMap<String, usize>,
    /// The Message-IDs submitted.
    ids: Vec<String>,
}

/// B with two instances (b1, b2) on one database and `[queue] lease_secs =
/// lease`, relaying `count` messages to a sink that holds each reply for
/// `hold`; b1 is stopped with SIGSTOP while it holds entries, for `pause`
/// (and, with `until_taken`, on until b2 has taken all of them), then
/// continued. A runs for its DNS responder only.
fn pause_one_of_two(
    lease: u64,
    pause: Duration,
    until_taken: bool,
    hold: Duration,
    count: usize,
) -> Paused {
    let keys = tempfile::tempdir().unwrap();
    let (db, store) = postgres_store(&keys, "b1");
    let sink = SlowSink::start(hold);
    let (a, b) = two_sites_on(Certs::Issued, peers, &store);
    b.write_config(Settings {
        route_to: sink.addr,
        ..peers(&b, &a)
    });
    let mut config = std::fs::read_to_string(b.config()).unwrap();
    config.push_str(&format!(
        "[queue]\nretry_base_secs = 1\nretry_max_secs = 2\nlease_secs = {lease}\n"
    ));
    std::fs::write(b.config(), config).unwrap();
    let instances = [Instance::first(&b, "b1"), Instance::another(&b, "b1", "b2")];
    let serves: Vec<Serve> = instances.iter().map(|i| i.start(&b, &i.name)).collect();
    let _serve_a = Serve::start(&a, "a");

    let ids: Vec<String> = (0..count)
        .map(|n| format!("paused-{n}@b.example"))
        .collect();
    let senders: Vec<JoinHandle<()>> = ids
        .chunks(count / 2)
        .zip(&instances)
        .map(|(c, i)| {
            submit(
                i.submission,
                "ehr-b",
                "doc@b.example",
                "pat@a.example",
                c.to_vec(),
            )
        })
        .collect();
    for s in senders {
        s.join().expect("every message is queued at B");
    }
    // Both instances have entries in hand; stop b1 then. Read after the
    // stop what b1 holds (it may have finished what the poll saw): tried
    // again until it holds something when stopped.
    let done_count = |db: &hisp_testpg::TestDatabase| -> i64 {
        db.admin()
            .query_one("SELECT count(*) FROM queue WHERE state = 'done'", &[])
            .unwrap()
            .get(0)
    };
    let mut tries = 0;
    let (held, done_at_stop) = loop {
        tries += 1;
        let seen = poll(
            Duration::from_secs(60),
            Duration::from_millis(50),
            || {
                let (one, two) = (held_by(&db, "b1"), held_by(&db, "b2"));
                (!one.is_empty() && !two.is_empty()).then_some(one)
            },
            || {
                format!(
                    "not both at work: {:?}\n{}",
                    queue_states(&db),
                    serves[0].log()
                )
            },
        );
        signal(&serves[0], libc::SIGSTOP);
        let done_at_stop = done_count(&db);
        let now = entries(&db, &seen);
        let held: Vec<i64> = seen
            .into_iter()
            .filter(|id| now[id].0 == "pending" && now[id].2.as_deref() == Some("b1"))
            .collect();
        if !held.is_empty() || tries == 5 {
            break (held, done_at_stop);
        }
        signal(&serves[0], libc::SIGCONT);
    };
    std::thread::sleep(pause);
    if until_taken {
        // Stopped on until b2 has taken every entry b1 held (its leases
        // lapse, and b2 claims them among its own work).
        poll(
            Duration::from_secs(90),
            Duration::from_millis(250),
            || {
                let now = entries(&db, &held);
                now.values()
                    .all(|(state, attempts, owner)| {
                        *attempts >= 2 && (state == "done" || owner.as_deref() == Some("b2"))
                    })
                    .then_some(())
            },
            || format!("b1's entries not taken: {:?}", entries(&db, &held)),
        );
    }
    let before_continue = entries(&db, &held);
    let others_work = done_count(&db) - done_at_stop;
    signal(&serves[0], libc::SIGCONT);

    poll(
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            let states = queue_states(&db);
            states.keys().all(|k| k == "done").then_some(())
        },
        || {
            format!(
                "B's queue: {:?}\n{}\n----\n{}",
                queue_states(&db),
                serves[0].log(),
                serves[1].log()
            )
        },
    );
    // What is still in the sink's sessions is recorded by now (every entry
    // is done only after its 250).
    let mut at_sink = BTreeMap::new();
    for id in sink.accepted() {
        *at_sink.entry(id).or_insert(0) += 1;
    }
    let at_end = entries(&db, &held);
    println!(
        "lease {lease} s, b1 stopped {pause:?} holding {} entries; b2 finished {others_work} meanwhile; \
         before SIGCONT (state, attempts, owner): {before_continue:?}; at the end: {at_end:?}; \
         the sink accepted {} messages, {} distinct",
        held.len(),
        at_sink.values().sum::<usize>(),
        at_sink.len()
    );
    drop(serves);
    Paused {
        held,
        before_continue,
        at_end,
        others_work,
        at_sink,
        ids,
    }
}

#[test]
fn an_instance_stopped_for_less_than_a_lease_keeps_its_items_and_nothing_is_delivered_twice_issue_14(
) {
    // Lease 30 s, renewed every 10 s: stopped 8 s, b1's last renewal is at
    // most 10 s old, so its leases still run for 12 s more when it goes on
    // (room for a late renewal on a busy machine); less than two-thirds of
    // the lease, as docs/operations.md promises.
    let seen = pause_one_of_two(
        30,
        Duration::from_secs(8),
        false,
        Duration::from_secs(2),
        40,
    );
    assert!(!seen.held.is_empty());
    assert!(seen.others_work > 0, "b2 kept working while b1 was stopped");
    for (id, (state, attempts, owner)) in &seen.before_continue {
        assert!(
            state == "pending" && owner.as_deref() == Some("b1") && *attempts == 1,
            "entry {id} held by the stopped b1 was taken: {state}, {attempts} attempts, owner {owner:?}"
        );
    }
    for (id, (state, attempts, _)) in &seen.at_end {
        assert_eq!(
            (state.as_str(), *attempts),
            ("done", 1),
            "entry {id}: finished by b1 in one attempt"
        );
    }
    let expected: BTreeSet<String> = bracketed(&seen.ids).into_iter().collect();
    assert_eq!(
        seen.at_sink.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let twice: Vec<_> = seen.at_sink.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
}

#[test]
fn a_lease_that_ran_out_is_taken_over_by_another_instance_issue_14() {
    // Lease 6 s: stopped at least 14 s and until b2 has taken them, b1's
    // leases run out within 6 s and b2 takes the entries and delivers them; b1, continued, finishes the deliveries
    // it had begun, so the sink sees those messages twice (the receiving
    // HISP files a message once by recipient and Message-ID). The assertions
    // of the test above fail on this run.
    let seen = pause_one_of_two(6, Duration::from_secs(14), true, Duration::from_secs(2), 40);
    assert!(!seen.held.is_empty());
    let taken: Vec<_> = seen
        .before_continue
        .iter()
        .filter(|(_, (state, attempts, owner))| {
            *attempts >= 2 && (state == "done" || owner.as_deref() == Some("b2"))
        })
        .collect();
    assert_eq!(
        taken.len(),
        seen.held.len(),
        "every entry b1 held was taken by b2 once its lease ran out: {:?}",
        seen.before_continue
    );
    let expected: BTreeSet<String> = bracketed(&seen.ids).into_iter().collect();
    assert_eq!(
        seen.at_sink.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(
        seen.at_sink.values().any(|n| *n > 1),
        "a delivery b1 had begun and b2 made again reached the sink twice: {:?}",
        seen.at_sink
    );
}
