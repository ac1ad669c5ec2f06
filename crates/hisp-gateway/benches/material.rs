//! Sealing and opening a 4 KiB message through the gateway's functions,
//! with the keys and anchors of a real store: read and parsed for every
//! message (the path before keys and anchor stores were kept), and kept
//! parsed by `Material`, measured in the same run; prints both and their
//! ratio, and the same for the key and trust material alone.
//!
//! Run with `cargo bench -p hisp-gateway --bench material`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_gateway::context::{anchors, can_decrypt, can_sign, key_pairs};
use hisp_gateway::{
    judge_inbound, seal_for, Destination, InboundContext, InboundVerdict, KeyUse, Material,
};
use hisp_smime::{KeyPair, SealOptions, Signer};
use hisp_store::{
    DirectAddress, Direction, Domain, Flow, NewAnchor, NewCertificate, Owner, SqliteStore, Store,
};
use hisp_trust::{Anchors, Remote, RevocationMode};

const SIZE: usize = 4096;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    sender: [Owner; 2],
    recipient: [Owner; 2],
    domain: Domain,
    destination: Destination,
    message: Vec<u8>,
    remote: Remote,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("store");
    let ca = CertificateAuthority::create("Bench CA", &CaOptions::default()).expect("CA");
    let (a, b) = (
        Domain::parse("a.example").expect("domain"),
        Domain::parse("b.example").expect("domain"),
    );
    let alice = DirectAddress::parse("alice@a.example").expect("address");
    let bob = DirectAddress::parse("bob@b.example").expect("address");
    let mut bob_cert = None;
    for (domain, who) in [(&a, &alice), (&b, &bob)] {
        let leaf = issue(
            &ca,
            &Binding::Address(who.to_string()),
            &IssueOptions::default(),
        )
        .expect("leaf");
        let cert = NewCertificate::new(
            &leaf.cert.to_der().expect("der"),
            Some(&leaf.key_pem().expect("pem")),
        )
        .expect("certificate");
        store.add_domain(domain, &[]).expect("domain");
        store.add_address(who, &[cert]).expect("address");
        let anchor = NewAnchor::from_der(&ca.cert().to_der().expect("der")).expect("anchor");
        store
            .add_anchors(domain, Direction::Both, &[anchor])
            .expect("anchor");
        bob_cert = Some(leaf.cert);
    }
    World {
        _dir: dir,
        store,
        sender: [Owner::Address(alice), Owner::Domain(a)],
        recipient: [Owner::Address(bob.clone()), Owner::Domain(b.clone())],
        domain: b,
        destination: Destination {
            domain: "b.example".into(),
            recipients: vec![bob.to_string()],
            certs: vec![bob_cert.expect("bob's certificate")],
        },
        message: message(SIZE),
        remote: Remote::http(),
    }
}

/// A message of `size` bytes: headers and a text body of 76-column lines.
fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: alice@a.example\r\nTo: bob@b.example\r\nSubject: bench\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@a.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    let line = b"The quick brown fox jumps over the lazy dog while the HISP seals the mail.\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m.truncate(size);
    m
}

/// What one message needs from the store: the sender's signing keys, the
/// recipient's decryption keys and the recipient domain's incoming anchors.
struct Used {
    signer: Signer,
    keys: Vec<KeyPair>,
    anchors: std::sync::Arc<Anchors>,
}

/// Read and parsed now, as every message did before.
fn read_now(w: &World) -> Used {
    let mut signers = key_pairs(&w.store, &w.sender, can_sign).expect("keys");
    let keys = key_pairs(&w.store, &w.recipient, can_decrypt).expect("keys");
    let anchors = Anchors::new(anchors(&w.store, &w.domain, Flow::Incoming).expect("anchors"))
        .expect("anchor store");
    Used {
        signer: Signer::new(signers.swap_remove(0)),
        keys,
        anchors: std::sync::Arc::new(anchors),
    }
}

/// Kept by `Material` (the version read from the store each time).
fn kept(w: &World, m: &Material) -> Used {
    let mut signers = m
        .key_pairs(&w.store, &w.sender, KeyUse::Sign)
        .expect("keys");
    let keys = m
        .key_pairs(&w.store, &w.recipient, KeyUse::Decrypt)
        .expect("keys");
    let anchors = m
        .anchors(&w.store, &w.domain, Flow::Incoming)
        .expect("anchors");
    Used {
        signer: Signer::new(signers.swap_remove(0)),
        keys,
        anchors,
    }
}

/// Seals for the destination and judges the result as the receiving side.
fn seal_and_open(w: &World, used: &Used, at: i64) -> usize {
    let sealed = seal_for(
        &w.message,
        &used.signer,
        &w.destination,
        &SealOptions::default(),
    )
    .expect("seal");
    let verdict = judge_inbound(
        &sealed,
        &InboundContext {
            keys: &used.keys,
            anchors: &used.anchors,
            intermediates: &[],
            at,
            revocation: RevocationMode::HardFail,
            remote: &w.remote,
        },
    );
    match verdict {
        InboundVerdict::Accept { message, .. } => message.len(),
        other => panic!("the message must open and be trusted: {other:?}"),
    }
}

/// Runs `f` for about `budget`, in rounds, and returns the time per call.
fn per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..20 {
        f();
    }
    let (start, mut n) = (Instant::now(), 0u32);
    while start.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    start.elapsed() / n
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let w = world();
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let material = Material::new();
    let budget = Duration::from_secs(3);
    // Alternate the two paths, so drift of the machine touches both alike.
    let (mut fresh_total, mut kept_total) = (Duration::ZERO, Duration::ZERO);
    let (mut fresh_material, mut kept_material) = (Duration::ZERO, Duration::ZERO);
    let rounds = 3;
    for _ in 0..rounds {
        fresh_material += per_call(budget / 4, || {
            black_box(read_now(&w));
        });
        kept_material += per_call(budget / 4, || {
            black_box(kept(&w, &material));
        });
        fresh_total += per_call(budget, || {
            black_box(seal_and_open(&w, &read_now(&w), at));
        });
        kept_total += per_call(budget, || {
            black_box(seal_and_open(&w, &kept(&w, &material), at));
        });
    }
    let r = rounds as u32;
    let (fresh_total, kept_total) = (fresh_total / r, kept_total / r);
    let (fresh_material, kept_material) = (fresh_material / r, kept_material / r);
    println!("seal + open of a {SIZE} B message through the gateway (keys and anchors from a real store)");
    println!(
        "  keys and anchors read and parsed per message: {:9.1} us per message",
        micros(fresh_total)
    );
    println!(
        "  keys and anchors kept (Material):             {:9.1} us per message",
        micros(kept_total)
    );
    println!(
        "  ratio (read and parsed / kept):               {:9.2}x",
        fresh_total.as_secs_f64() / kept_total.as_secs_f64()
    );
    println!(
        "key and trust material alone (the signing keys, the decrypting keys, one anchor set)"
    );
    println!(
        "  read and parsed:                              {:9.1} us",
        micros(fresh_material)
    );
    println!(
        "  kept:                                         {:9.1} us",
        micros(kept_material)
    );
    println!(
        "  ratio:                                        {:9.1}x",
        fresh_material.as_secs_f64() / kept_material.as_secs_f64()
    );
}
