//! `hisp domain`, `hisp address`, `hisp anchor` and `hisp bundle`, run as the
//! real binary against a store in a temporary data directory.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use hisp_store::{Domain, Flow, SqliteStore, Store};
use serde_json::Value;

/// A temporary directory with a CA (`ca/`) and a config whose data_dir is `data/`.
struct Env {
    pki: Pki,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let pki = Pki::new();
        let config = pki.path("hisp.toml");
        std::fs::write(&config, "data_dir = \"data\"\n").unwrap();
        Env { pki, config }
    }

    fn data_dir(&self) -> PathBuf {
        self.pki.path("data")
    }

    /// Runs `hisp --config <config> args...`.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--config".to_string(), s(&self.config)];
        all.extend(args.iter().map(|a| a.to_string()));
        hisp(all, b"")
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args).ok().stdout_text()
    }

    /// Runs and expects failure with `code` and exactly `stderr`.
    fn fails(&self, args: &[&str], code: i32, stderr: &str) {
        let run = self.run(args);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end(), stderr, "{args:?}");
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.ok(args);
        match serde_json::from_str(&out).unwrap() {
            Value::Array(items) => items,
            other => panic!("not an array: {other}"),
        }
    }

    fn ca_pem(&self) -> String {
        s(&self.pki.ca_pem())
    }

    fn ca_dir(&self) -> String {
        s(&self.pki.ca_dir())
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

const CERT_KEYS: &[&str] = &[
    "fingerprint",
    "has_private_key",
    "issuer",
    "not_after",
    "not_before",
    "serial",
    "subject",
    "usage",
];

/// The SHA-256 fingerprint of a PEM certificate, as `openssl` prints it
/// (upper case, colons).
fn openssl_fingerprint(cert: &Path) -> String {
    let out = openssl(
        [
            "x509".as_ref(),
            "-noout".as_ref(),
            "-fingerprint".as_ref(),
            "-sha256".as_ref(),
            "-in".as_ref(),
            cert.as_os_str(),
        ],
        b"",
    )
    .ok()
    .stdout_text();
    out.trim().rsplit('=').next().unwrap().to_string()
}

#[test]
fn store_commands_need_a_data_dir() {
    let env = Env::new();
    std::fs::write(&env.config, "").unwrap();
    env.fails(
        &["domain", "list"],
        1,
        "hisp: no data_dir configured: this command uses the store <data_dir>/hisp.db; \
         set data_dir in the config file given by --config FILE or HISP_CONFIG",
    );
}

#[test]
fn the_store_file_is_created_0600_under_data_dir() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    assert_eq!(mode(&env.data_dir().join("hisp.db")), 0o600);
}

#[test]
fn domains_are_added_listed_and_removed() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["domain", "add", "B.Example."]),
        "added domain b.example\n"
    );
    env.ok(&["domain", "add", "a.example"]);
    env.fails(
        &["domain", "add", "a.EXAMPLE"],
        1,
        "hisp: domain a.example already exists",
    );
    assert_eq!(
        env.ok(&["domain", "list"]),
        "DOMAIN     ADDRESSES  CERTIFICATES  ANCHORS  BUNDLES\n\
         a.example  0          0             0        0\n\
         b.example  0          0             0        0\n"
    );
    let list = env.json(&["domain", "list", "--json"]);
    assert_eq!(list.len(), 2);
    assert_eq!(
        keys(&list[0]),
        [
            "added_at",
            "address_count",
            "anchor_count",
            "bundle_count",
            "certificates",
            "domain"
        ]
    );
    assert_eq!(list[0]["domain"], "a.example");
    assert_eq!(
        env.ok(&["domain", "remove", "b.example"]),
        "removed domain b.example\n"
    );
    env.fails(
        &["domain", "remove", "b.example"],
        1,
        "hisp: domain b.example not found",
    );
    assert_eq!(env.json(&["domain", "list", "--json"]).len(), 1);
}

#[test]
fn a_bad_domain_is_a_usage_error() {
    let env = Env::new();
    let run = env.run(&["domain", "add", "a_b.example"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "invalid value 'a_b.example' for '<DOMAIN>': invalid domain 'a_b.example': \
             the label 'a_b' may hold only letters, digits and '-'"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_domain_gets_a_domain_bound_certificate_from_a_ca() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example", "--cert-from", &env.ca_dir()]);
    let list = env.json(&["domain", "list", "--json"]);
    let cert = &list[0]["certificates"][0];
    assert_eq!(keys(cert), CERT_KEYS);
    assert_eq!(cert["subject"], "CN=a.example");
    assert_eq!(cert["issuer"], "CN=hisp test root");
    assert_eq!(cert["usage"], "both");
    assert_eq!(cert["has_private_key"], true);
}

#[test]
fn a_domain_with_addresses_is_not_removed() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    env.ok(&["address", "add", "alice@a.example"]);
    env.fails(
        &["domain", "remove", "a.example"],
        1,
        "hisp: domain a.example is still in use: it has 1 address; remove it first",
    );
    assert_eq!(
        env.ok(&["address", "remove", "ALICE@a.example"]),
        "removed address alice@a.example\n"
    );
    env.ok(&["domain", "remove", "a.example"]);
}

#[test]
fn address_with_cert_from_gets_an_address_bound_certificate_and_key() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    let out = env.ok(&[
        "address",
        "add",
        "Alice@a.example",
        "--cert-from",
        &env.ca_dir(),
    ]);
    assert!(
        out.starts_with("added address Alice@a.example\n  certificate CN=Alice@a.example serial "),
        "{out}"
    );
    assert!(out.ends_with("(private key stored)\n"), "{out}");
    assert!(!out.contains("PRIVATE KEY"));
    let list = env.json(&["address", "list", "--json"]);
    assert_eq!(list.len(), 1);
    assert_eq!(
        keys(&list[0]),
        ["added_at", "address", "certificates", "domain"]
    );
    assert_eq!(list[0]["address"], "Alice@a.example");
    assert_eq!(list[0]["domain"], "a.example");
    let cert = &list[0]["certificates"][0];
    assert_eq!(keys(cert), CERT_KEYS);
    assert_eq!(cert["subject"], "CN=Alice@a.example");
    assert_eq!(cert["has_private_key"], true);
    let fingerprint = cert["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 64);
    // The key is in the store, not printed anywhere.
    let text = env.ok(&["address", "list"]);
    assert!(text.contains("Alice@a.example  both "), "{text}");
    assert!(text.contains(fingerprint), "{text}");
}

#[test]
fn address_local_parts_differing_only_in_case_are_one_address() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    env.ok(&["address", "add", "Alice@a.example"]);
    env.fails(
        &["address", "add", "aLICE@A.Example"],
        1,
        "hisp: address Alice@a.example already exists",
    );
}

#[test]
fn an_address_needs_a_local_domain() {
    let env = Env::new();
    env.fails(
        &["address", "add", "alice@b.example"],
        1,
        "hisp: domain b.example is not a local domain (`hisp domain list` shows them, \
         `hisp domain add b.example` adds it)",
    );
    let run = env.run(&["address", "add", "alice"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn an_imported_certificate_must_be_bound_to_the_address_and_match_its_key() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    let carol = env.pki.issue("carol", &["--address", "carol@a.example"]);
    let dave = env.pki.issue("dave", &["--address", "dave@a.example"]);
    let cert = s(&carol.join("cert.pem"));
    env.ok(&[
        "address",
        "add",
        "carol@a.example",
        "--cert",
        &cert,
        "--key",
        &s(&carol.join("key.pem")),
    ]);
    let run = env.run(&[
        "address",
        "add",
        "dave@a.example",
        "--cert",
        &cert,
        "--key",
        &s(&carol.join("key.pem")),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "it is not bound to the address dave@a.example: its subjectAltName rfc822Name entries are carol@a.example"
        ),
        "{}",
        run.stderr
    );
    let run = env.run(&[
        "address",
        "add",
        "dave@a.example",
        "--cert",
        &s(&dave.join("cert.der")),
        "--key",
        &s(&carol.join("key.pem")),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .ends_with("the private key does not belong to it\n"),
        "{}",
        run.stderr
    );
    // Neither failure left an address behind.
    assert_eq!(env.json(&["address", "list", "--json"]).len(), 1);
}

#[test]
fn anchors_are_added_from_pem_with_several_certificates_listed_and_removed() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    env.ok(&["domain", "add", "b.example"]);
    // A second CA, and one file holding both CA certificates.
    let other = env.pki.path("other");
    hisp(
        ["cert", "ca", "--cn", "other root", "--out", &s(&other)],
        b"",
    )
    .ok();
    let both = env.pki.path("both.pem");
    let mut pem = std::fs::read(env.pki.ca_pem()).unwrap();
    pem.extend(std::fs::read(other.join("ca.pem")).unwrap());
    std::fs::write(&both, pem).unwrap();

    let out = env.ok(&["anchor", "add", "a.example", &s(&both), "--direction", "in"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    env.ok(&["anchor", "add", "b.example", &s(&other.join("ca.der"))]);
    env.fails(
        &["anchor", "add", "b.example", &s(&both)],
        1,
        &format!(
            "hisp: nothing added from {}: anchor CN=other root (fingerprint {}) of domain b.example already exists",
            s(&both),
            openssl_fingerprint(&other.join("ca.pem")).replace(':', "").to_lowercase()
        ),
    );

    let all = env.json(&["anchor", "list", "--json"]);
    assert_eq!(all.len(), 3);
    assert_eq!(
        keys(&all[0]),
        [
            "added_at",
            "direction",
            "domain",
            "fingerprint",
            "issuer",
            "not_after",
            "not_before",
            "serial",
            "subject"
        ]
    );
    assert_eq!(all[0]["direction"], "in");
    assert_eq!(all[2]["direction"], "both");
    let b = env.json(&["anchor", "list", "--json", "--domain", "b.example"]);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["subject"], "CN=other root");

    // By fingerprint, as openssl prints it.
    let fp = openssl_fingerprint(&env.pki.ca_pem());
    let out = env.ok(&["anchor", "remove", "a.example", &fp]);
    assert!(
        out.starts_with("removed anchor CN=hisp test root serial "),
        "{out}"
    );
    // By serial.
    let serial = b[0]["serial"].as_str().unwrap().to_string();
    env.ok(&["anchor", "remove", "a.example", &serial]);
    env.fails(
        &["anchor", "remove", "a.example", &serial],
        1,
        &format!("hisp: anchor with serial {serial} of domain a.example not found"),
    );
    assert!(env
        .json(&["anchor", "list", "--json", "--domain", "a.example"])
        .is_empty());
    assert_eq!(env.json(&["anchor", "list", "--json"]).len(), 1);
}

#[test]
fn anchor_removal_is_seen_by_a_running_process_at_once() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    env.ok(&["anchor", "add", "a.example", &env.ca_pem()]);
    // A long-lived connection, as a running `hisp serve` holds.
    let daemon = SqliteStore::open_in(&env.data_dir()).unwrap();
    let domain = Domain::parse("a.example").unwrap();
    assert_eq!(
        daemon.anchors_for(&domain, Flow::Incoming).unwrap().len(),
        1
    );
    let fp = openssl_fingerprint(&env.pki.ca_pem());
    env.ok(&["anchor", "remove", "a.example", &fp]);
    assert!(daemon
        .anchors_for(&domain, Flow::Incoming)
        .unwrap()
        .is_empty());
    assert!(daemon
        .anchors_for(&domain, Flow::Outgoing)
        .unwrap()
        .is_empty());
    // And another process.
    assert_eq!(env.ok(&["anchor", "list"]), "");
}

#[test]
fn bundles_are_added_listed_and_removed() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    let url = "https://bundles.example/direct.p7b";
    assert_eq!(
        env.ok(&[
            "bundle",
            "add",
            "a.example",
            url,
            "--direction",
            "out",
            "--refresh",
            "600"
        ]),
        format!("added bundle {url} to a.example (out, refreshed every 600 s)\n")
    );
    let file = env.pki.ca_dir().join("ca.der");
    env.ok(&["bundle", "add", "a.example", &s(&file)]);
    env.fails(
        &["bundle", "add", "a.example", url],
        1,
        &format!("hisp: bundle {url} of domain a.example already exists"),
    );
    env.fails(
        &["bundle", "add", "a.example", "missing.p7b"],
        1,
        "hisp: bundle file missing.p7b does not exist or is not a file",
    );
    let run = env.run(&["bundle", "add", "a.example", url, "--refresh", "59"]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    let list = env.json(&["bundle", "list", "--json"]);
    assert_eq!(list.len(), 2);
    assert_eq!(
        keys(&list[0]),
        [
            "added_at",
            "direction",
            "domain",
            "kind",
            "last_error",
            "last_fetched_at",
            "last_good_at",
            "last_good_bytes",
            "refresh_seconds",
            "source"
        ]
    );
    assert_eq!(list[0]["kind"], "url");
    assert_eq!(list[0]["source"], url);
    assert_eq!(list[0]["direction"], "out");
    assert_eq!(list[0]["refresh_seconds"], 600);
    assert_eq!(list[0]["last_fetched_at"], Value::Null);
    assert_eq!(list[1]["kind"], "file");
    assert_eq!(list[1]["source"], s(&file.canonicalize().unwrap()));
    assert_eq!(list[1]["direction"], "both");
    assert_eq!(list[1]["refresh_seconds"], 3600);
    let text = env.ok(&["bundle", "list"]);
    assert!(text.contains("not fetched yet"), "{text}");

    env.ok(&["bundle", "remove", "a.example", url]);
    env.fails(
        &["bundle", "remove", "a.example", url],
        1,
        &format!("hisp: bundle {url} of domain a.example not found"),
    );
    assert_eq!(env.json(&["bundle", "list", "--json"]).len(), 1);
}

#[test]
fn removing_a_domain_takes_its_anchors_and_bundles() {
    let env = Env::new();
    env.ok(&["domain", "add", "a.example"]);
    env.ok(&["anchor", "add", "a.example", &env.ca_pem()]);
    env.ok(&[
        "bundle",
        "add",
        "a.example",
        "https://bundles.example/a.p7b",
    ]);
    env.ok(&["domain", "remove", "a.example"]);
    assert!(env.json(&["anchor", "list", "--json"]).is_empty());
    assert!(env.json(&["bundle", "list", "--json"]).is_empty());
}
