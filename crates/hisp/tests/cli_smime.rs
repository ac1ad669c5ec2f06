//! `hisp smime seal` and `hisp smime open`, run as the real binary and checked
//! against the `openssl cms` command both ways.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A CA, a sender (alice, address-bound) and a recipient (bob's domain).
struct Parties {
    pki: Pki,
    alice: PathBuf,
    bob: PathBuf,
}

impl Parties {
    fn new() -> Parties {
        let pki = Pki::new();
        let alice = pki.issue("alice", &["--address", "alice@a.example"]);
        let bob = pki.issue("bob", &["--domain", "b.example"]);
        Parties { pki, alice, bob }
    }

    fn seal_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "smime".to_string(),
            "seal".into(),
            "--signer-cert".into(),
            s(&self.alice.join("cert.pem")),
            "--signer-key".into(),
            s(&self.alice.join("key.pem")),
            "--recipient-cert".into(),
            s(&self.bob.join("cert.pem")),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    fn seal(&self, extra: &[&str]) -> Vec<u8> {
        hisp(self.seal_args(extra), MESSAGE).ok().stdout
    }

    fn open_args(&self, recipient: &Path, anchor: &Path, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "smime".to_string(),
            "open".into(),
            "--cert".into(),
            s(&recipient.join("cert.pem")),
            "--key".into(),
            s(&recipient.join("key.pem")),
            "--anchor".into(),
            s(anchor),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// Opens as bob, trusting the test CA.
    fn open(&self, sealed: &[u8], extra: &[&str]) -> Run {
        hisp(self.open_args(&self.bob, &self.pki.ca_pem(), extra), sealed)
    }

    fn open_json(&self, sealed: &[u8], extra: &[&str]) -> (Run, Value) {
        let mut extra = extra.to_vec();
        extra.push("--json");
        let run = self.open(sealed, &extra);
        let json = serde_json::from_slice(&run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout_text(), run.stderr));
        (run, json)
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn sealed_message_is_read_by_openssl_cms_decrypt_and_verify() {
    let p = Parties::new();
    let sealed = write(p.pki.dir.path(), "sealed.eml", &p.seal(&[]));
    let decrypted = p.pki.path("decrypted.eml");
    openssl(
        [
            "cms".to_string(),
            "-decrypt".into(),
            "-in".into(),
            s(&sealed),
            "-recip".into(),
            s(&p.bob.join("cert.pem")),
            "-inkey".into(),
            s(&p.bob.join("key.pem")),
            "-out".into(),
            s(&decrypted),
        ],
        b"",
    )
    .ok();
    let verified = openssl(
        [
            "cms".to_string(),
            "-verify".into(),
            "-in".into(),
            s(&decrypted),
            "-CAfile".into(),
            s(&p.pki.ca_pem()),
        ],
        b"",
    )
    .ok();
    assert!(
        verified.stderr.contains("Verification successful"),
        "{}",
        verified.stderr
    );
    let inner = verified.stdout_text();
    // Applicability Statement 1.3 §3.3: the whole message travels wrapped as message/rfc822.
    assert!(
        inner.to_ascii_lowercase().contains("message/rfc822"),
        "{inner}"
    );
    assert!(inner.contains("Subject: lab results"), "{inner}");
    assert!(inner.contains("hello bob"), "{inner}");
}

#[test]
fn open_writes_the_inner_message_byte_for_byte() {
    let p = Parties::new();
    let sealed = p.seal(&[]);
    let run = p.open(&sealed, &[]).ok();
    assert_eq!(crlf(&run.stdout), crlf(MESSAGE));
    assert_eq!(run.stderr, "");
}

#[test]
fn open_json_reports_algorithms_and_signers() {
    let p = Parties::new();
    let sealed = p.seal(&[]);
    let (run, json) = p.open_json(&sealed, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for key in [
        "ok",
        "reason",
        "cipher",
        "key_transport",
        "digest",
        "signers",
        "inner_size",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["ok"], true);
    assert_eq!(json["reason"], Value::Null);
    assert_eq!(json["cipher"], "aes256-cbc");
    assert_eq!(json["key_transport"], "pkcs1");
    assert_eq!(json["digest"], "sha-256");
    assert_eq!(json["inner_size"], crlf(MESSAGE).len());
    let signers = json["signers"].as_array().unwrap();
    assert_eq!(signers.len(), 1);
    let signer = &signers[0];
    for key in [
        "subject",
        "issuer",
        "serial",
        "not_after",
        "sans",
        "trusted",
    ] {
        assert!(
            signer.get(key).is_some(),
            "missing signers[0].{key} in {json}"
        );
    }
    assert_eq!(signer["subject"], "CN=alice@a.example");
    assert_eq!(signer["issuer"], "CN=hisp test root");
    assert_eq!(signer["sans"], serde_json::json!(["email:alice@a.example"]));
    assert_eq!(signer["trusted"], true);
    let serial = signer["serial"].as_str().unwrap();
    let openssl_serial = openssl(
        [
            "x509".to_string(),
            "-noout".into(),
            "-serial".into(),
            "-in".into(),
            s(&p.alice.join("cert.pem")),
        ],
        b"",
    )
    .ok()
    .stdout_text();
    assert_eq!(openssl_serial.trim(), format!("serial={serial}"));
}

#[test]
fn wrong_anchor_is_refused_as_untrusted() {
    let p = Parties::new();
    let other = Pki::new();
    let sealed = p.seal(&[]);
    let run = hisp(p.open_args(&p.bob, &other.ca_pem(), &[]), &sealed);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "no message is released");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("hisp: open failed at trust: untrusted signer"),
        "{}",
        run.stderr
    );

    let run = hisp(p.open_args(&p.bob, &other.ca_pem(), &["--json"]), &sealed);
    assert_eq!(run.code, 1);
    let json: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert!(
        json["reason"].as_str().unwrap().contains("untrusted"),
        "{json}"
    );
    assert_eq!(json["code"], "untrusted-signer");
    assert_eq!(json["step"], "trust");
    assert_eq!(json["inner_size"], Value::Null);
    assert_eq!(json["cipher"], "aes256-cbc", "decryption did succeed");
    assert_eq!(json["signers"][0]["trusted"], false);
}

#[test]
fn message_for_someone_else_is_refused_at_decrypt() {
    let p = Parties::new();
    let carol = p.pki.issue("carol", &["--address", "carol@c.example"]);
    let sealed = p.seal(&[]);
    let run = hisp(p.open_args(&carol, &p.pki.ca_pem(), &[]), &sealed);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("hisp: open failed at decrypt: not a recipient"),
        "{}",
        run.stderr
    );
}

#[test]
fn expired_signer_is_refused() {
    let p = Parties::new();
    let old = p
        .pki
        .issue("old", &["--address", "old@a.example", "--expired"]);
    let args = vec![
        "smime".to_string(),
        "seal".into(),
        "--signer-cert".into(),
        s(&old.join("cert.pem")),
        "--signer-key".into(),
        s(&old.join("key.pem")),
        "--recipient-cert".into(),
        s(&p.bob.join("cert.pem")),
    ];
    let sealed = hisp(args, MESSAGE).ok().stdout;
    let (run, json) = p.open_json(&sealed, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(json["ok"], false);
    assert_eq!(json["step"], "trust");
    assert!(
        json["reason"].as_str().unwrap().contains("expired"),
        "{json}"
    );
}

#[test]
fn at_moves_the_validity_check() {
    let p = Parties::new();
    let sealed = p.seal(&[]);
    let run = p.open(&sealed, &["--at", "2199-01-01T00:00:00Z"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("hisp: open failed at trust: expired signer"),
        "{}",
        run.stderr
    );
}

#[test]
fn gcm_and_oaep_are_chosen_by_flags_and_read_by_openssl() {
    let p = Parties::new();
    let sealed = p.seal(&["--cipher", "aes256-gcm", "--key-transport", "oaep-sha256"]);
    let (_, json) = p.open_json(&sealed, &[]);
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["cipher"], "aes256-gcm");
    assert_eq!(json["key_transport"], "oaep-sha256");
    let path = write(p.pki.dir.path(), "gcm.eml", &sealed);
    openssl(
        [
            "cms".to_string(),
            "-decrypt".into(),
            "-in".into(),
            s(&path),
            "-recip".into(),
            s(&p.bob.join("cert.pem")),
            "-inkey".into(),
            s(&p.bob.join("key.pem")),
        ],
        b"",
    )
    .ok();
}

#[test]
fn seal_takes_its_defaults_from_the_config() {
    let p = Parties::new();
    let config = write(
        p.pki.dir.path(),
        "hisp.toml",
        b"[smime]\ncipher = \"aes128-cbc\"\nkey_transport = \"oaep-sha1\"\n",
    );
    let mut args = vec!["--config".to_string(), s(&config)];
    args.extend(p.seal_args(&[]));
    let sealed = hisp(&args, MESSAGE).ok().stdout;
    let (_, json) = p.open_json(&sealed, &[]);
    assert_eq!(json["cipher"], "aes128-cbc", "{json}");
    assert_eq!(json["key_transport"], "oaep-sha1");

    // A flag wins over the config.
    args.extend(["--cipher".to_string(), "aes256-cbc".into()]);
    let sealed = hisp(&args, MESSAGE).ok().stdout;
    let (_, json) = p.open_json(&sealed, &[]);
    assert_eq!(json["cipher"], "aes256-cbc", "{json}");
    assert_eq!(json["key_transport"], "oaep-sha1");
}

fn outer_headers(sealed: &[u8]) -> String {
    let text = String::from_utf8_lossy(sealed);
    let end = text.find("\r\n\r\n").expect("a header block");
    text[..end].to_string()
}

#[test]
fn subject_stays_inside_unless_copy_subject() {
    let p = Parties::new();
    assert!(!outer_headers(&p.seal(&[])).contains("lab results"));
    assert!(outer_headers(&p.seal(&["--copy-subject"])).contains("Subject: lab results"));
}

#[test]
fn every_recipient_can_open_and_any_key_pair_may_be_given() {
    let p = Parties::new();
    let carol = p.pki.issue("carol", &["--address", "carol@c.example"]);
    let sealed = p.seal(&["--recipient-cert", &s(&carol.join("cert.pem"))]);
    hisp(p.open_args(&carol, &p.pki.ca_pem(), &[]), &sealed).ok();
    p.open(&sealed, &[]).ok();

    // dave is not a recipient, but bob's pair given second is found.
    let dave = p.pki.issue("dave", &["--domain", "d.example"]);
    let mut args = p.open_args(&dave, &p.pki.ca_pem(), &[]);
    args.extend([
        "--cert".to_string(),
        s(&p.bob.join("cert.pem")),
        "--key".into(),
        s(&p.bob.join("key.pem")),
    ]);
    hisp(&args, &sealed).ok();
}

#[test]
fn message_made_by_openssl_cms_is_opened() {
    let p = Parties::new();
    let dir = p.pki.dir.path();
    let msg = write(dir, "msg.eml", MESSAGE);
    let signed = dir.join("signed.eml");
    openssl(
        [
            "cms".to_string(),
            "-sign".into(),
            "-md".into(),
            "sha256".into(),
            "-in".into(),
            s(&msg),
            "-signer".into(),
            s(&p.alice.join("cert.pem")),
            "-inkey".into(),
            s(&p.alice.join("key.pem")),
            "-out".into(),
            s(&signed),
        ],
        b"",
    )
    .ok();
    let sealed = openssl(
        [
            "cms".to_string(),
            "-encrypt".into(),
            "-aes256".into(),
            "-in".into(),
            s(&signed),
            s(&p.bob.join("cert.pem")),
        ],
        b"",
    )
    .ok()
    .stdout;
    let (run, json) = p.open_json(&sealed, &[]);
    assert_eq!(run.code, 0, "{json}");
    assert_eq!(json["signers"][0]["subject"], "CN=alice@a.example");
}

/// The header fields of a message, unfolded, one entry each.
fn header_fields(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in head.lines() {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => fields.push(line.to_string()),
        }
    }
    fields
}

/// A sender that does not wrap headers signs the whole message with
/// `openssl cms -sign` (its own From, To, Subject, Date, Message-ID,
/// MIME-Version) and puts the same fields outside, with another Subject and
/// a trace field: `hisp smime open` prints each field once, the signed
/// inner fields winning, the outer trace field kept, and none of the
/// envelope's MIME fields (Applicability Statement 1.3: wrapping is
/// optional; RFC 5322 §3.6: one From, To, Subject, Date, Message-ID).
#[test]
fn open_of_an_unwrapped_message_with_its_own_fields_prints_each_field_once_inner_first_rfc5322_3_6()
{
    let p = Parties::new();
    let dir = p.pki.dir.path();
    let inner = b"From: alice@a.example\r\n\
To: bob@b.example\r\n\
Subject: inner subject, signed\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <unwrapped@a.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain\r\n\
\r\n\
hello bob\r\n";
    let msg = write(dir, "whole.eml", inner);
    let signed = dir.join("signed.eml");
    openssl(
        [
            "cms".to_string(),
            "-sign".into(),
            "-md".into(),
            "sha256".into(),
            "-in".into(),
            s(&msg),
            "-signer".into(),
            s(&p.alice.join("cert.pem")),
            "-inkey".into(),
            s(&p.alice.join("key.pem")),
            "-out".into(),
            s(&signed),
        ],
        b"",
    )
    .ok();
    let encrypted = openssl(
        [
            "cms".to_string(),
            "-encrypt".into(),
            "-aes256".into(),
            "-in".into(),
            s(&signed),
            "-from".into(),
            "alice@a.example".into(),
            "-to".into(),
            "bob@b.example".into(),
            "-subject".into(),
            "outer subject, not signed".into(),
            s(&p.bob.join("cert.pem")),
        ],
        b"",
    )
    .ok()
    .stdout;
    let mut sealed =
        b"Received: from hisp.a.example by hisp.b.example; Mon, 1 Jan 2024 00:00:01 +0000\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <unwrapped@a.example>\r\n"
            .to_vec();
    sealed.extend_from_slice(&encrypted);

    let run = p.open(&sealed, &[]).ok();
    let text = run.stdout_text();
    let fields = header_fields(&run.stdout);
    for name in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Received",
    ] {
        let count = fields
            .iter()
            .filter(|f| {
                f.split_once(':')
                    .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .count();
        assert_eq!(count, 1, "{name} once in:\n{text}");
    }
    assert!(fields[0].starts_with("Received: "), "trace on top:\n{text}");
    assert!(
        fields.contains(&"Subject: inner subject, signed".to_string()),
        "{text}"
    );
    assert!(
        fields.contains(&"Content-Type: text/plain".to_string()),
        "{text}"
    );
    assert!(!text.contains("outer subject"), "{text}");
    assert!(!text.contains("smime.p7m"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello bob\r\n"), "{text}");
    let (_, json) = p.open_json(&sealed, &[]);
    assert_eq!(json["wrapped"], false, "{json}");
}

#[test]
fn bad_input_gives_a_clear_message() {
    let p = Parties::new();
    let missing = s(&p.pki.path("missing.pem"));
    let not_a_cert = s(&write(p.pki.dir.path(), "junk.pem", b"not a certificate"));
    let alice_cert = s(&p.alice.join("cert.pem"));
    let alice_key = s(&p.alice.join("key.pem"));
    let bob_cert = s(&p.bob.join("cert.pem"));
    let bob_key = s(&p.bob.join("key.pem"));
    let ca = s(&p.pki.ca_pem());
    let seal = |signer_cert: &str, signer_key: &str, recipient: &str| {
        vec![
            "smime".to_string(),
            "seal".into(),
            "--signer-cert".into(),
            signer_cert.into(),
            "--signer-key".into(),
            signer_key.into(),
            "--recipient-cert".into(),
            recipient.into(),
        ]
    };
    let cases: Vec<(Vec<String>, &[u8], String)> = vec![
        (
            seal(&missing, &alice_key, &bob_cert),
            MESSAGE,
            format!("hisp: cannot read signer certificate {missing}: No such file or directory (os error 2)"),
        ),
        (
            seal(&alice_cert, &missing, &bob_cert),
            MESSAGE,
            format!("hisp: cannot read signer key {missing}: No such file or directory (os error 2)"),
        ),
        (
            seal(&alice_cert, &alice_key, &missing),
            MESSAGE,
            format!("hisp: cannot read recipient certificate {missing}: No such file or directory (os error 2)"),
        ),
        (
            seal(&alice_cert, &alice_key, &not_a_cert),
            MESSAGE,
            format!("hisp: recipient certificate {not_a_cert} is not a PEM or DER certificate"),
        ),
        (
            seal(&alice_cert, &bob_key, &bob_cert),
            MESSAGE,
            format!("hisp: signer certificate {alice_cert} and key {bob_key}: bad key material: the private key does not belong to the certificate"),
        ),
        (
            seal(&alice_cert, &alice_key, &bob_cert),
            b"",
            "hisp: no message on stdin".to_string(),
        ),
        (
            vec![
                "smime".to_string(), "open".into(), "--cert".into(), bob_cert.clone(),
                "--anchor".into(), ca.clone(), "--key".into(), bob_key.clone(),
                "--cert".into(), alice_cert.clone(),
            ],
            b"x",
            "hisp: give one --key for every --cert (got 2 --cert and 1 --key)".to_string(),
        ),
        (
            vec![
                "smime".to_string(), "open".into(), "--cert".into(), bob_cert.clone(),
                "--key".into(), bob_key.clone(), "--anchor".into(), missing.clone(),
            ],
            b"x",
            format!("hisp: cannot read anchor {missing}: No such file or directory (os error 2)"),
        ),
        (
            vec![
                "smime".to_string(), "open".into(), "--cert".into(), bob_cert.clone(),
                "--key".into(), bob_key.clone(), "--anchor".into(), ca.clone(),
            ],
            b"",
            "hisp: no sealed message on stdin".to_string(),
        ),
    ];
    for (args, stdin, expected) in cases {
        let run = hisp(&args, stdin);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
        let first = run.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&expected),
            "{args:?}\nexpected: {expected}\ngot:      {}",
            run.stderr
        );
    }
}

#[test]
fn garbage_is_refused_at_mime() {
    let p = Parties::new();
    let run = p.open(b"this is not a message at all", &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("hisp: open failed at mime: "),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_cipher_flag_is_a_usage_error() {
    let p = Parties::new();
    let run = hisp(p.seal_args(&["--cipher", "des3"]), MESSAGE);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "invalid value 'des3' for '--cipher <CIPHER>': unknown cipher 'des3': use aes256-cbc, aes128-cbc or aes256-gcm"
        ),
        "{}",
        run.stderr
    );
}
