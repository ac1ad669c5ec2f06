//! `hisp discover`, `hisp dns export` and `hisp dns serve` through the real
//! binary, with a real BIND `named` and the built-in responder on loopback.

mod common;
#[path = "../../hisp-discovery/tests/common/named.rs"]
mod named;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{hisp, hisp_cmd, s, Run};
use named::{Named, NamedConfig, Zone};
use serde_json::Value;

/// Two local domains, their CAs, one address each, and a.example trusting
/// b.example's CA for outgoing mail.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(site.config(), "data_dir = \"data\"\n").unwrap();
        for (ca, cn) in [("caA", "A test CA"), ("caB", "B test CA")] {
            site.run(&["cert", "ca", "--cn", cn, "--out", &s(&site.path(ca))])
                .ok();
        }
        site.run(&["domain", "add", "a.example"]).ok();
        site.run(&["domain", "add", "b.example"]).ok();
        site.run(&[
            "address",
            "add",
            "alice@a.example",
            "--cert-from",
            &s(&site.path("caA")),
        ])
        .ok();
        site.run(&[
            "address",
            "add",
            "bob@b.example",
            "--cert-from",
            &s(&site.path("caB")),
        ])
        .ok();
        site.run(&[
            "anchor",
            "add",
            "a.example",
            &s(&site.path("caB/ca.pem")),
            "--direction",
            "out",
        ])
        .ok();
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("hisp.toml")
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config())];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, b"")
    }

    fn discover(&self, address: &str, nameserver: SocketAddr) -> (Run, Value) {
        let run = self.run(&[
            "discover",
            address,
            "--json",
            "--nameserver",
            &nameserver.to_string(),
        ]);
        let json: Value = serde_json::from_slice(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout_text(), run.stderr));
        (run, json)
    }

    /// A named serving `hisp dns export` for both domains.
    fn named_with_export(&self) -> Named {
        let export = self.run(&["dns", "export"]).ok().stdout_text();
        let zone = |origin: &str| {
            // Each zone gets only its own records: named refuses out-of-zone data.
            Zone::new(origin, records_under(&export, origin))
        };
        Named::start(&NamedConfig {
            zones: vec![zone("a.example"), zone("b.example")],
            ..NamedConfig::default()
        })
    }
}

/// The exported records whose owner name is `origin` or below it.
fn records_under(export: &str, origin: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in export.lines() {
        if !line.starts_with(char::is_whitespace) && !line.starts_with(')') {
            let owner = line.split_whitespace().next().unwrap_or("");
            keep = owner == format!("{origin}.") || owner.ends_with(&format!(".{origin}."));
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The keys of `hisp discover --json`, as the contract lists them.
fn assert_contract_shape(json: &Value) {
    for key in ["address", "usable", "temporary", "reason", "certificates"] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    for cert in json["certificates"].as_array().unwrap() {
        for key in [
            "source",
            "owner",
            "binding",
            "subject",
            "issuer",
            "serial",
            "not_before",
            "not_after",
            "usable",
            "reason",
        ] {
            assert!(cert.get(key).is_some(), "certificate without {key}: {cert}");
        }
    }
}

#[test]
fn exported_zone_loads_in_named_and_discover_finds_the_certificate_rfc4398() {
    let site = Site::new();
    let named = site.named_with_export();
    let (run, json) = site.discover("bob@b.example", named.addr());
    assert_eq!(run.code, 0, "{json}\n{}", run.stderr);
    assert_contract_shape(&json);
    assert_eq!(json["usable"], true);
    assert_eq!(json["temporary"], false);
    let cert = &json["certificates"][0];
    assert_eq!(cert["source"], "dns");
    assert_eq!(cert["owner"], "bob.b.example");
    assert_eq!(cert["binding"], "address");
    assert_eq!(cert["subject"], "CN=bob@b.example");
    assert_eq!(cert["usable"], true);
    assert!(cert["reason"].is_null());
}

#[test]
fn anchor_removal_takes_effect_on_the_next_discover() {
    let site = Site::new();
    let named = site.named_with_export();
    assert_eq!(site.discover("bob@b.example", named.addr()).0.code, 0);
    let anchors: Value =
        serde_json::from_slice(&site.run(&["anchor", "list", "--json"]).ok().stdout).unwrap();
    let fingerprint = anchors[0]["fingerprint"].as_str().unwrap().to_string();
    site.run(&["anchor", "remove", "a.example", &fingerprint])
        .ok();
    let (run, json) = site.discover("bob@b.example", named.addr());
    assert_eq!(run.code, 2, "{json}");
    assert_eq!(json["usable"], false);
    assert_eq!(json["temporary"], false);
    let reason = json["certificates"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("CN=bob@b.example"), "{reason}");
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .contains("no usable certificate"),
        "{json}"
    );
}

#[test]
fn address_without_a_certificate_is_not_a_direct_address_exit_2() {
    let site = Site::new();
    let named = site.named_with_export();
    let (run, json) = site.discover("carol@b.example", named.addr());
    assert_eq!(run.code, 2, "{json}");
    assert_contract_shape(&json);
    assert_eq!(json["usable"], false);
    assert_eq!(json["temporary"], false);
    assert_eq!(json["certificates"].as_array().unwrap().len(), 0);
}

#[test]
fn dns_server_down_is_a_temporary_failure_exit_3() {
    let site = Site::new();
    // A port nothing listens on.
    let nameserver = SocketAddr::from(([127, 0, 0, 1], named::free_port()));
    let (run, json) = site.discover("bob@b.example", nameserver);
    assert_eq!(run.code, 3, "{json}");
    assert_eq!(json["usable"], false);
    assert_eq!(json["temporary"], true);
    assert!(
        json["reason"].as_str().unwrap().contains("temporary"),
        "{json}"
    );
}

/// `hisp dns serve` on a free port, stopped when dropped.
struct Responder {
    child: Child,
    addr: SocketAddr,
}

impl Responder {
    fn start(site: &Site) -> Responder {
        let addr = SocketAddr::from(([127, 0, 0, 1], named::free_port()));
        let child = hisp_cmd([
            "--config",
            &s(&site.config()),
            "dns",
            "serve",
            "--listen",
            &addr.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hisp dns serve starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "hisp dns serve did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Responder { child, addr }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn builtin_responder_serves_the_local_certificates_to_discover() {
    let site = Site::new();
    let responder = Responder::start(&site);
    let (run, json) = site.discover("bob@b.example", responder.addr);
    assert_eq!(run.code, 0, "{json}\n{}", run.stderr);
    assert_eq!(json["certificates"][0]["owner"], "bob.b.example");
    // alice is published too, but a.example's anchors do not include A's CA.
    let (run, json) = site.discover("alice@a.example", responder.addr);
    assert_eq!(run.code, 2, "{json}");
    assert_eq!(json["certificates"][0]["binding"], "address");
}

#[test]
fn discover_flags_work_without_a_config_file() {
    let site = Site::new();
    let named = site.named_with_export();
    let run = hisp(
        [
            "discover",
            "bob@b.example",
            "--nameserver",
            &named.addr().to_string(),
            "--anchor",
            &s(&site.path("caB/ca.pem")),
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout_text(), run.stderr);
    assert!(
        run.stdout_text().contains("bob@b.example: usable"),
        "{}",
        run.stdout_text()
    );
}

#[test]
fn bundle_refresh_puts_its_anchors_in_force_and_a_failed_refresh_keeps_the_last_good() {
    let site = Site::new();
    let named = site.named_with_export();
    // Trust B's CA through a bundle instead of a direct anchor.
    let anchors: Value =
        serde_json::from_slice(&site.run(&["anchor", "list", "--json"]).ok().stdout).unwrap();
    let fingerprint = anchors[0]["fingerprint"].as_str().unwrap().to_string();
    site.run(&["anchor", "remove", "a.example", &fingerprint])
        .ok();
    let bundle = site.path("b.p7b");
    common::openssl(
        [
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            &s(&site.path("caB/ca.pem")),
            "-outform",
            "DER",
            "-out",
            &s(&bundle),
        ],
        b"",
    )
    .ok();
    site.run(&[
        "bundle",
        "add",
        "a.example",
        &s(&bundle),
        "--direction",
        "out",
    ])
    .ok();
    // Added but never fetched: not in force yet.
    assert_eq!(site.discover("bob@b.example", named.addr()).0.code, 2);
    let refreshed = site.run(&["bundle", "refresh"]).ok();
    assert!(
        refreshed.stdout_text().contains("1 certificate(s)"),
        "{}",
        refreshed.stdout_text()
    );
    assert_eq!(site.discover("bob@b.example", named.addr()).0.code, 0);
    // A broken bundle is refused; the last good copy stays in force.
    std::fs::write(&bundle, b"not a bundle").unwrap();
    let failed = site.run(&["bundle", "refresh"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("the last good copy stays in force"),
        "{}",
        failed.stderr
    );
    assert_eq!(site.discover("bob@b.example", named.addr()).0.code, 0);
    let list: Value =
        serde_json::from_slice(&site.run(&["bundle", "list", "--json"]).ok().stdout).unwrap();
    assert!(!list[0]["last_error"].is_null(), "{list}");
}
