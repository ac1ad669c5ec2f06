//! The figures of a run, as a table for people and as JSON for scripts.

use serde::Serialize;

use crate::bound::Bound;
use crate::openssl_cli::Cli;

/// One instance's resources over the measured part of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Resources {
    /// Resident set just before the first measured message, bytes.
    pub rss_before: u64,
    /// Peak resident set during the measured part (VmHWM), bytes.
    pub peak_rss: u64,
    /// Peak minus before, bytes.
    pub rss_growth: u64,
    /// The growth as a multiple of one message's size.
    pub rss_growth_per_message_size: f64,
    /// CPU seconds (user + system) over the measured part.
    pub cpu_secs: f64,
    /// CPU milliseconds per message (its MDNs included).
    pub cpu_ms_per_message: f64,
}

/// The database server's resources over the measured part of the run
/// (`--store postgres`: the server and all its processes).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerResources {
    /// CPU seconds (user + system) over the measured part, serving the
    /// two HISPs (the benchmark's own reads left out).
    pub cpu_secs: f64,
    /// CPU milliseconds per message (both HISPs' databases together).
    pub cpu_ms_per_message: f64,
    /// CPU seconds of the backends serving the benchmark's own reads (the
    /// mailbox watcher, the tracking poll), left out of the above.
    pub benchmark_reads_cpu_secs: f64,
}

/// Submit-to-mailbox latencies, milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// The watcher's poll interval: each figure is late by at most this.
    pub resolution_ms: f64,
}

impl Latency {
    /// From latencies in seconds (any order).
    pub fn of(mut secs: Vec<f64>, resolution_ms: f64) -> Latency {
        secs.sort_by(f64::total_cmp);
        let at = |p: f64| -> f64 {
            if secs.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least p of all at or below it.
            let rank = (p * secs.len() as f64).ceil().max(1.0) as usize;
            secs[rank.min(secs.len()) - 1] * 1000.0
        };
        Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
            resolution_ms,
        }
    }
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs (`nproc`).
    pub cpus: usize,
    /// The CPU model from /proc/cpuinfo.
    pub cpu_model: String,
}

impl Machine {
    /// Reads this machine's.
    pub fn this() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            cpus: cpus(),
            cpu_model,
        }
    }
}

/// Online CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// `throughput`, `rate` or `single`.
    pub mode: &'static str,
    /// Message size, bytes.
    pub size: usize,
    /// Messages measured.
    pub messages: usize,
    /// Submission sessions in parallel.
    pub connections: usize,
    /// The submission rate asked for (messages/s), if any.
    pub rate: Option<f64>,
    /// Every message was in the recipient's Inbox exactly once.
    pub filed_exactly_once: bool,
    /// Messages whose processed and dispatched MDNs came back (tracking delivered).
    pub delivered: u64,
    /// Seconds from the first submission to the last message filed.
    pub secs_to_all_filed: f64,
    /// Seconds from the first submission to the last recipient delivered (MDNs back).
    pub secs_to_all_delivered: f64,
    /// Messages into the recipient's mailbox per second (`messages / secs_to_all_filed`).
    pub messages_per_sec: f64,
    /// Messages the submission listener took per second.
    pub submitted_per_sec: f64,
    /// From the 250 to DATA to the message in the recipient's Inbox.
    pub latency: Latency,
    /// The sending instance.
    pub sender: Resources,
    /// The receiving instance.
    pub receiver: Resources,
    /// The store both ran on: `sqlite`, or `postgres` and the server's version.
    pub store: String,
    /// The PostgreSQL server (`--store postgres`), serving both HISPs.
    pub database_server: Option<ServerResources>,
    /// The cryptographic bound of the same work.
    pub bound: Bound,
    /// The openssl command-line pipeline (the message alone).
    pub openssl_cli: Cli,
    /// `messages_per_sec / bound.messages_per_sec`.
    pub ratio_to_bound: f64,
    /// `messages_per_sec / openssl_cli.messages_per_sec`.
    pub ratio_to_openssl_cli: f64,
    /// Where it ran.
    pub machine: Machine,
    /// The `hisp` binary measured.
    pub hisp: String,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Figures {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("mode".into(), self.mode.into()),
            ("store".into(), self.store.clone()),
            (
                "load".into(),
                format!(
                    "{} messages of {} bytes over {} connection(s){}",
                    self.messages,
                    self.size,
                    self.connections,
                    self.rate
                        .map_or_else(String::new, |r| format!(" at {r:.1}/s"))
                ),
            ),
            ("filed exactly once".into(), yes_no(self.filed_exactly_once)),
            (
                "MDNs back (delivered)".into(),
                format!("{} of {}", self.delivered, self.messages),
            ),
            (
                "into the mailbox".into(),
                format!(
                    "{:.1} messages/s ({:.2} s)",
                    self.messages_per_sec, self.secs_to_all_filed
                ),
            ),
            (
                "all MDNs back after".into(),
                format!("{:.2} s", self.secs_to_all_delivered),
            ),
            (
                "submission took".into(),
                format!("{:.1} messages/s", self.submitted_per_sec),
            ),
            (
                "submit-to-mailbox p50 / p99 / max".into(),
                format!(
                    "{:.1} / {:.1} / {:.1} ms (+{:.0} ms polling)",
                    self.latency.p50_ms,
                    self.latency.p99_ms,
                    self.latency.max_ms,
                    self.latency.resolution_ms
                ),
            ),
        ];
        for (name, r) in [("sender", &self.sender), ("receiver", &self.receiver)] {
            rows.push((
                format!("{name} peak RSS (growth)"),
                format!(
                    "{} (+{}, {:.2}x message size)",
                    mib(r.peak_rss),
                    mib(r.rss_growth),
                    r.rss_growth_per_message_size
                ),
            ));
            rows.push((
                format!("{name} CPU per message"),
                format!(
                    "{:.2} ms ({:.2} s in all)",
                    r.cpu_ms_per_message, r.cpu_secs
                ),
            ));
        }
        if let Some(db) = &self.database_server {
            rows.push((
                "PostgreSQL CPU per message".into(),
                format!(
                    "{:.2} ms ({:.2} s in all, both databases; +{:.2} s serving the benchmark's reads)",
                    db.cpu_ms_per_message, db.cpu_secs, db.benchmark_reads_cpu_secs
                ),
            ));
        }
        rows.extend([
            (
                "crypto bound".into(),
                format!(
                    "{:.1} messages/s ({} processes, {:.2} ms each: message + 2 MDNs)",
                    self.bound.messages_per_sec,
                    self.bound.processes,
                    self.bound.secs_per_message * 1000.0
                ),
            ),
            (
                "openssl cms pipeline".into(),
                format!(
                    "{:.1} messages/s ({} loops, the message alone)",
                    self.openssl_cli.messages_per_sec, self.openssl_cli.loops
                ),
            ),
            (
                "end-to-end / bound".into(),
                format!("{:.3}", self.ratio_to_bound),
            ),
            (
                "end-to-end / openssl-cli".into(),
                format!("{:.3}", self.ratio_to_openssl_cli),
            ),
            (
                "machine".into(),
                format!("{} CPUs, {}", self.machine.cpus, self.machine.cpu_model),
            ),
            ("hisp".into(), self.hisp.clone()),
        ]);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "NO" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let l = Latency::of((1..=100).map(|i| i as f64 / 1000.0).collect(), 2.0);
        assert!((l.p50_ms - 50.0).abs() < 1e-9);
        assert!((l.p99_ms - 99.0).abs() < 1e-9);
        assert!((l.max_ms - 100.0).abs() < 1e-9);
        let one = Latency::of(vec![0.007], 2.0);
        assert!((one.p50_ms - 7.0).abs() < 1e-9 && (one.p99_ms - 7.0).abs() < 1e-9);
    }
}
