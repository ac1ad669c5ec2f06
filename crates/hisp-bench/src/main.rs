//! `hisp-bench`: the end-to-end benchmark of hisp (issue 13).
//!
//! It sets up two HISPs on loopback with the `hisp` command line (sender
//! a.example and receiver b.example, each with its own data directory and
//! SQLite store, or with `--store postgres` its own database on one
//! PostgreSQL server started for the run, each trusting the other's CA,
//! each discovering the other
//! through the other's built-in DNS responder, routes to each other's
//! backbone), runs them as `hisp serve` processes, submits messages over
//! SMTP with AUTH, and measures until every message is in the receiving
//! mailbox exactly once and its processed and dispatched MDNs are back.
//! In the same run it measures the bound (the same cryptographic work in
//! one process per core, through `hisp-smime`) and the `openssl cms`
//! command-line pipeline, and prints both ratios.
//!
//! Figures belong here, never in timed tests: the test suite runs the
//! `--quick` mode and checks only counts.

mod bound;
mod instance;
mod message;
mod openssl_cli;
mod pg;
mod report;
mod site;
mod submit;
mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use crate::instance::{Instance, Sample};
use crate::report::{Figures, Latency, Machine, Resources, ServerResources};
use crate::site::Site;
use crate::submit::Load;
use crate::watch::{MailboxWatch, Reader, Tracking};

/// Two `hisp serve` instances on loopback, measured end to end.
#[derive(Debug, Parser)]
#[command(name = "hisp-bench", version)]
struct Args {
    /// Size of each message in bytes, header included.
    #[arg(long)]
    size: Option<usize>,
    /// Messages to send (with --single: one after another, each on idle instances).
    #[arg(long)]
    messages: Option<usize>,
    /// SMTP submission sessions in parallel.
    #[arg(long)]
    connections: Option<usize>,
    /// Submit at this many messages per second in all, instead of as fast as
    /// the server takes them (for the latency at a given load, such as half
    /// the peak rate).
    #[arg(long, conflicts_with = "single")]
    rate: Option<f64>,
    /// One message at a time on idle instances: each is sent once the one
    /// before is filed and its MDNs are back. Gives the latency of a lone
    /// message.
    #[arg(long)]
    single: bool,
    /// A few small messages and short bound measurements: seconds, for the
    /// test suite. Explicit --size/--messages/--connections still apply.
    #[arg(long)]
    quick: bool,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The `hisp` binary to run. Default: `hisp` next to this executable,
    /// built first (`cargo build -p hisp`, same profile) when the source
    /// tree this was built from is there.
    #[arg(long)]
    hisp: Option<PathBuf>,
    /// Seconds each bound and openssl measurement runs. Default 5 (quick: 0.5).
    #[arg(long)]
    bound_secs: Option<f64>,
    /// How often the receiver's mailbox is polled, in milliseconds: the
    /// latency figures are late by at most this.
    #[arg(long, default_value_t = 2)]
    poll_ms: u64,
    /// Give up when the messages are not all filed, with their MDNs back,
    /// within this many seconds. Default 600 (quick: 60).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Keep the sites' directories (stores, logs) and print where they are.
    #[arg(long)]
    keep: bool,
    /// The store of both HISPs: `sqlite` (each its file under its data
    /// directory) or `postgres` (each its own database on one PostgreSQL
    /// server started on loopback for the run, stopped and removed after).
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    /// A setting of the PostgreSQL server (`-c NAME=VALUE` of `postgres`),
    /// for instance `shared_preload_libraries=pg_stat_statements` to see
    /// where its time goes (with --keep). Repeatable; only with --store postgres.
    #[arg(
        long = "postgres-setting",
        value_name = "NAME=VALUE",
        requires = "store"
    )]
    postgres_settings: Vec<String>,
    /// Internal: run as a bound worker on the spec in this file.
    #[arg(long, hide = true)]
    bound_worker: Option<PathBuf>,
}

/// Which store the two HISPs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// SQLite, one file under each data directory.
    Sqlite,
    /// PostgreSQL, one database each on one server.
    Postgres,
}

/// The settings after --quick and the defaults.
struct Plan {
    size: usize,
    messages: usize,
    connections: usize,
    rate: Option<f64>,
    single: bool,
    bound_secs: f64,
    poll: Duration,
    timeout: Duration,
}

impl Plan {
    fn from(args: &Args) -> anyhow::Result<Plan> {
        let quick = args.quick;
        let plan = Plan {
            size: args.size.unwrap_or(4096),
            messages: args.messages.unwrap_or(match (quick, args.single) {
                (true, _) => 4,
                (false, true) => 5,
                (false, false) => 2000,
            }),
            connections: if args.single {
                1
            } else {
                args.connections.unwrap_or(if quick { 2 } else { 8 })
            },
            rate: args.rate,
            single: args.single,
            bound_secs: args.bound_secs.unwrap_or(if quick { 0.5 } else { 5.0 }),
            poll: Duration::from_millis(args.poll_ms.max(1)),
            timeout: Duration::from_secs(args.timeout_secs.unwrap_or(if quick { 60 } else { 600 })),
        };
        if plan.messages == 0 || plan.connections == 0 {
            bail!("--messages and --connections must be at least 1");
        }
        if plan.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            bail!("--rate must be a positive number of messages per second");
        }
        Ok(plan)
    }

    fn mode(&self) -> &'static str {
        match (self.single, self.rate) {
            (true, _) => "single",
            (false, Some(_)) => "rate",
            (false, None) => "throughput",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.bound_worker {
        Some(spec) => bound::worker(spec),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hisp-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let plan = Plan::from(args)?;
    let hisp = locate_hisp(args.hisp.as_deref())?;
    let root = tempfile::Builder::new().prefix("hisp-bench-").tempdir()?;
    let dir = root.path().to_path_buf();
    let _keep = if args.keep {
        eprintln!("hisp-bench: the sites are in {}", dir.display());
        Some(root.keep())
    } else {
        None
    };
    let mut sender = Site::new(dir.join("sender"), "a.example", message::SENDER)?;
    let mut receiver = Site::new(dir.join("receiver"), "b.example", message::RECIPIENT)?;
    // Declared after the directory, so dropped (stopped) before it is removed.
    let mut database_server = match args.store {
        StoreKind::Sqlite if !args.postgres_settings.is_empty() => {
            anyhow::bail!("--postgres-setting is only for --store postgres")
        }
        StoreKind::Sqlite => None,
        StoreKind::Postgres => {
            let server = pg::Server::start(&dir.join("postgres"), &args.postgres_settings)?;
            sender.use_postgres(server.create_database("hisp_sender")?)?;
            receiver.use_postgres(server.create_database("hisp_receiver")?)?;
            Some(server)
        }
    };
    let store = match &database_server {
        None => "sqlite".to_string(),
        Some(server) => format!("postgres {}", server.version()?),
    };
    set_up(&hisp, &sender, &receiver, plan.size)?;

    let patience = Duration::from_secs(30);
    let mut receiving = Instance::start(&hisp, &receiver, patience)?;
    let mut sending = Instance::start(&hisp, &sender, patience)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut tracking_db = sender.store.open()?;

    // A first message outside the measurement: discovery answers cached,
    // libraries loaded, the same state as a HISP that has been running.
    let warm = Load {
        run: format!("warmup-{}", std::process::id()),
        first: 0,
        size: 4096,
        messages: 1,
        rate: None,
    };
    let warm_watch = MailboxWatch::start(&receiver.store, message::RECIPIENT, plan.poll)?;
    let sessions = runtime.block_on(submit::connect_all(sender.submission, 1))?;
    let (_, sessions) = runtime.block_on(submit::submit(sessions, &warm, Instant::now()))?;
    runtime.block_on(submit::quit_all(sessions));
    let deadline = Instant::now() + plan.timeout;
    wait_done(
        &mut tracking_db,
        &warm,
        &warm_watch,
        1,
        deadline,
        &sending,
        &receiving,
    )?;
    warm_watch.stop()?;

    let load = Load {
        run: format!("{}-{}", std::process::id(), unix_millis()),
        first: 0,
        size: plan.size,
        messages: plan.messages,
        rate: plan.rate,
    };
    // The sessions are open and authenticated before the measurement starts.
    let mut sessions =
        runtime.block_on(submit::connect_all(sender.submission, plan.connections))?;
    let before = (sending.sample()?, receiving.sample()?);
    let server_before = database_server
        .as_ref()
        .map(pg::Server::cpu_secs)
        .transpose()?;
    sending.reset_peak()?;
    receiving.reset_peak()?;
    let watcher = MailboxWatch::start(&receiver.store, message::RECIPIENT, plan.poll)?;
    let deadline = Instant::now() + plan.timeout;
    let start = Instant::now();
    let (taken, submitted_at) = if plan.single {
        let mut taken = Vec::new();
        for i in 0..plan.messages {
            let one = Load {
                first: i,
                messages: 1,
                ..load.clone()
            };
            let (t, s) = runtime.block_on(submit::submit(sessions, &one, Instant::now()))?;
            taken.extend(t);
            sessions = s;
            wait_done(
                &mut tracking_db,
                &load,
                &watcher,
                i + 1,
                deadline,
                &sending,
                &receiving,
            )?;
        }
        let at = taken.iter().map(|t| t.at).max().unwrap_or(start);
        (taken, at)
    } else {
        let (taken, s) = runtime.block_on(submit::submit(sessions, &load, start))?;
        sessions = s;
        (taken, Instant::now())
    };
    runtime.block_on(submit::quit_all(sessions));
    let all_delivered = wait_done(
        &mut tracking_db,
        &load,
        &watcher,
        plan.messages,
        deadline,
        &sending,
        &receiving,
    )?;
    let after = (sending.sample()?, receiving.sample()?);
    let server_after = database_server
        .as_ref()
        .map(pg::Server::cpu_secs)
        .transpose()?;
    let filed = watcher.stop()?;
    let final_tracking = tracking_db.tracking(&prefix(&load))?;

    // Exactly once: the watcher saw each message once, and the database
    // holds one Inbox copy of each, and nothing else of this run.
    let counts = receiver
        .store
        .open()?
        .inbox_counts(message::RECIPIENT, &prefix(&load))?;
    let mut latencies = Vec::with_capacity(taken.len());
    let mut last_filed = start;
    let mut exactly_once = counts.len() == plan.messages && taken.len() == plan.messages;
    for t in &taken {
        let seen = filed.seen.get(&t.message_id).map_or(&[][..], Vec::as_slice);
        exactly_once &= seen.len() == 1 && counts.get(&t.message_id) == Some(&1);
        if let Some(&at) = seen.first() {
            latencies.push(at.saturating_duration_since(t.at).as_secs_f64());
            last_filed = last_filed.max(at);
        }
    }
    sending.stop()?;
    receiving.stop()?;
    drop(tracking_db);
    if let Some(server) = &mut database_server {
        server.stop()?;
    }

    // The bound and the openssl pipeline, with the instances stopped so
    // that they have the machine to themselves.
    let spec = bound::Spec {
        sender_cert: sender.cert_pem(),
        sender_key: sender.key_pem(),
        sender_ca: sender.ca_pem(),
        receiver_cert: receiver.cert_pem(),
        receiver_key: receiver.key_pem(),
        receiver_ca: receiver.ca_pem(),
        size: plan.size,
        secs: plan.bound_secs,
    };
    let exe = std::env::current_exe()?;
    let cpus = report::cpus();
    let bound = bound::measure(&exe, &spec, &dir.join("bound.json"), cpus)?;
    let openssl = openssl_cli::measure(&spec, &dir, cpus)?;

    let secs_to_all_filed = last_filed.duration_since(start).as_secs_f64();
    let messages_per_sec = plan.messages as f64 / secs_to_all_filed.max(1e-9);
    let resources = |b: Sample, a: Sample| {
        let growth = a.peak_rss.saturating_sub(b.rss);
        let cpu = (a.cpu_secs - b.cpu_secs).max(0.0);
        Resources {
            rss_before: b.rss,
            peak_rss: a.peak_rss,
            rss_growth: growth,
            rss_growth_per_message_size: growth as f64 / plan.size as f64,
            cpu_secs: cpu,
            cpu_ms_per_message: cpu * 1000.0 / plan.messages as f64,
        }
    };
    let figures = Figures {
        mode: plan.mode(),
        size: plan.size,
        messages: plan.messages,
        connections: plan.connections,
        rate: plan.rate,
        filed_exactly_once: exactly_once,
        delivered: final_tracking.delivered,
        secs_to_all_filed,
        secs_to_all_delivered: all_delivered.duration_since(start).as_secs_f64(),
        messages_per_sec,
        submitted_per_sec: plan.messages as f64
            / submitted_at.duration_since(start).as_secs_f64().max(1e-9),
        latency: Latency::of(latencies, plan.poll.as_secs_f64() * 1000.0),
        sender: resources(before.0, after.0),
        receiver: resources(before.1, after.1),
        store,
        database_server: server_before.zip(server_after).map(|(b, a)| {
            let bench = (a.bench - b.bench).max(0.0);
            let cpu = (a.total - b.total - bench).max(0.0);
            ServerResources {
                cpu_secs: cpu,
                cpu_ms_per_message: cpu * 1000.0 / plan.messages as f64,
                benchmark_reads_cpu_secs: bench,
            }
        }),
        ratio_to_bound: messages_per_sec / bound.messages_per_sec,
        ratio_to_openssl_cli: messages_per_sec / openssl.messages_per_sec,
        bound,
        openssl_cli: openssl,
        machine: Machine::this(),
        hisp: hisp.display().to_string(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print!("{}", figures.table());
    }
    if !figures.filed_exactly_once {
        bail!("not every message was filed exactly once");
    }
    Ok(())
}

/// Both sites' CAs first (each is the other's anchor), then domains,
/// addresses, anchors, and the sender's submission account.
fn set_up(hisp: &Path, sender: &Site, receiver: &Site, size: usize) -> anyhow::Result<()> {
    // The backbone carries the sealed form, about 1.37 times the message
    // (base64 of the signed message): above the default 25 MiB limit, both
    // listeners get room for it.
    const DEFAULT_LIMIT: usize = 25 * 1024 * 1024;
    let needed = size / 2 * 3 + (1 << 20);
    let limit = (needed > DEFAULT_LIMIT).then_some(needed);
    sender.write_config(receiver, limit)?;
    receiver.write_config(sender, limit)?;
    sender.make_ca(hisp)?;
    receiver.make_ca(hisp)?;
    sender.provision(
        hisp,
        &receiver.ca_pem(),
        Some((message::ACCOUNT, message::PASSWORD)),
    )?;
    receiver.provision(hisp, &sender.ca_pem(), None)?;
    Ok(())
}

/// The Message-ID prefix of a load's messages.
fn prefix(load: &Load) -> String {
    format!("bench-{}-", load.run)
}

/// Waits until `count` messages of `load` are seen filed and the sender's
/// tracking has `count` of them delivered with both MDNs; returns when the
/// last of that happened (as seen). Fails on a failed recipient or at
/// `deadline`, with both logs' ends.
fn wait_done(
    tracking_db: &mut Reader,
    load: &Load,
    watcher: &MailboxWatch,
    count: usize,
    deadline: Instant,
    sending: &Instance,
    receiving: &Instance,
) -> anyhow::Result<Instant> {
    let prefix = prefix(load);
    let mut tracking = Tracking::default();
    let mut looked = None::<Instant>;
    loop {
        let filed = watcher.with(|f| f.seen.keys().filter(|k| k.starts_with(&prefix)).count());
        // The tracking query reads every message of the run: until all are
        // filed it is only looked at now and then (for a failure), so that
        // the benchmark's own reads take little of the machine it measures.
        if filed >= count || looked.is_none_or(|at| at.elapsed() >= TRACKING_EVERY) {
            tracking = tracking_db.tracking(&prefix).unwrap_or(tracking);
            looked = Some(Instant::now());
        }
        if filed >= count && tracking.delivered >= count as u64 {
            return Ok(Instant::now());
        }
        if tracking.failed > 0 || Instant::now() > deadline {
            bail!(
                "{filed} of {count} messages filed, {} delivered, {} failed{}\n\
                 --- sender log (end):\n{}\n--- receiver log (end):\n{}",
                tracking.delivered,
                tracking.failed,
                if tracking.failed > 0 {
                    ""
                } else {
                    " before the deadline"
                },
                tail(&sending.log_text(), 30),
                tail(&receiving.log_text(), 30)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How often [`wait_done`] reads the sender's tracking before every message is filed.
const TRACKING_EVERY: Duration = Duration::from_millis(250);

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The `hisp` binary: `given`, else `hisp` next to this executable. When
/// the source tree this was built from is there, `cargo build -p hisp`
/// (this executable's profile) runs first, so the figures are of the code
/// beside it and not of a stale binary.
fn locate_hisp(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!("--hisp {}: no such file", path.display());
        }
        // Absolute: the sites' commands run in their own directories.
        return std::fs::canonicalize(path).with_context(|| format!("--hisp {}", path.display()));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("this executable's directory")?;
    let sibling = dir.join("hisp");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if workspace.join("Cargo.toml").is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "hisp"])
            .current_dir(&workspace);
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("release") => {
                cmd.arg("--release");
            }
            Some("debug") | None => {}
            Some(profile) => {
                cmd.args(["--profile", profile]);
            }
        }
        let status = cmd.status().context("running cargo build -p hisp")?;
        if !status.success() {
            bail!("cargo build -p hisp failed ({status})");
        }
    }
    if !sibling.is_file() {
        bail!(
            "no hisp binary at {} (build it with cargo build --release -p hisp, or give --hisp PATH)",
            sibling.display()
        );
    }
    Ok(sibling)
}
