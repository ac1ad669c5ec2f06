//! The benchmark in its quick mode, so it cannot rot: real `hisp serve`
//! processes on loopback, real SMTP submission, the bound and the openssl
//! pipeline. Only counts and the presence of the figures are checked, never
//! a speed.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hisp-bench"))
        .args(args)
        .output()
        .expect("hisp-bench runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn positive(v: &Value, path: &[&str]) -> f64 {
    let mut at = v;
    for key in path {
        at = &at[key];
    }
    let n = at
        .as_f64()
        .unwrap_or_else(|| panic!("{path:?} is a number in {v:#}"));
    assert!(n > 0.0 && n.is_finite(), "{path:?} = {n}, not positive");
    n
}

#[test]
fn quick_run_files_every_message_exactly_once_with_both_mdns_back_and_prints_both_ratios() {
    let (ok, stdout, stderr) =
        bench(&["--quick", "--messages", "6", "--connections", "3", "--json"]);
    assert!(ok, "hisp-bench failed:\n{stderr}\n{stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON figures");
    assert_eq!(v["mode"], "throughput");
    assert_eq!(v["messages"], 6);
    assert_eq!(v["filed_exactly_once"], true, "{v:#}");
    assert_eq!(
        v["delivered"], 6,
        "every message's processed and dispatched MDNs came back"
    );
    positive(&v, &["messages_per_sec"]);
    positive(&v, &["bound", "messages_per_sec"]);
    positive(&v, &["openssl_cli", "messages_per_sec"]);
    positive(&v, &["ratio_to_bound"]);
    positive(&v, &["ratio_to_openssl_cli"]);
    positive(&v, &["latency", "p50_ms"]);
    assert!(v["latency"]["p99_ms"].as_f64() >= v["latency"]["p50_ms"].as_f64());
    for side in ["sender", "receiver"] {
        positive(&v, &[side, "peak_rss"]);
        positive(&v, &[side, "cpu_ms_per_message"]);
    }
    assert_eq!(v["bound"]["processes"], v["machine"]["cpus"]);
}

#[test]
fn single_mode_sends_one_message_on_idle_instances_and_prints_the_table() {
    let (ok, stdout, stderr) = bench(&["--quick", "--single", "--messages", "1"]);
    assert!(ok, "hisp-bench failed:\n{stderr}\n{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} line in:\n{stdout}"))
            .to_string()
    };
    assert!(line("mode").ends_with("single"), "{stdout}");
    assert!(line("filed exactly once").ends_with("yes"), "{stdout}");
    assert!(
        line("MDNs back (delivered)").ends_with("1 of 1"),
        "{stdout}"
    );
    for ratio in ["end-to-end / bound", "end-to-end / openssl-cli"] {
        let value: f64 = line(ratio)
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{ratio} is a number:\n{stdout}"));
        assert!(value > 0.0, "{ratio} = {value}");
    }
}

#[test]
fn postgres_mode_runs_both_hisps_on_their_own_databases_and_says_so() {
    let (ok, stdout, stderr) = bench(&[
        "--quick",
        "--store",
        "postgres",
        "--messages",
        "6",
        "--connections",
        "3",
        "--json",
    ]);
    assert!(
        ok,
        "hisp-bench --store postgres failed:\n{stderr}\n{stdout}"
    );
    let v: Value = serde_json::from_str(&stdout).expect("JSON figures");
    let store = v["store"].as_str().unwrap_or_default();
    assert!(store.starts_with("postgres "), "store = {store:?}");
    assert_eq!(v["filed_exactly_once"], true, "{v:#}");
    assert_eq!(
        v["delivered"], 6,
        "every message's processed and dispatched MDNs came back"
    );
    positive(&v, &["messages_per_sec"]);
    positive(&v, &["database_server", "cpu_ms_per_message"]);
    for side in ["sender", "receiver"] {
        positive(&v, &[side, "cpu_ms_per_message"]);
    }
}

#[test]
fn sqlite_stays_the_default_store() {
    let (ok, stdout, stderr) =
        bench(&["--quick", "--messages", "2", "--connections", "1", "--json"]);
    assert!(ok, "hisp-bench failed:\n{stderr}\n{stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON figures");
    assert_eq!(v["store"], "sqlite");
    assert_eq!(v["database_server"], Value::Null);
    assert_eq!(v["filed_exactly_once"], true, "{v:#}");
}
