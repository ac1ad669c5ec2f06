//! Randomised input for `open`: whatever the bytes, open returns a value or a
//! typed error, never panics, and never returns content other than what the
//! sender signed. The coverage-guided fuzz target (fuzz/) explores further.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};

use crate::*;

const MSG: &[u8] = b"From: alice@a.example\r\nTo: bob@b.example\r\nSubject: x\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <r@a.example>\r\n\r\nrandom input test\r\n";

fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    match rng.gen_range(0..6) {
        0 => {
            // Flip a few bytes.
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..out.len());
                out[i] ^= 1 << rng.gen_range(0..8);
            }
        }
        1 => out.truncate(rng.gen_range(0..out.len())),
        2 => {
            let i = rng.gen_range(0..out.len());
            let junk: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
            out.splice(i..i, junk);
        }
        3 => {
            let a = rng.gen_range(0..out.len());
            let b = rng.gen_range(a..out.len());
            out.drain(a..b);
        }
        4 => {
            // Replace a base64 character with another valid one.
            let i = rng.gen_range(out.len() / 2..out.len());
            if out[i].is_ascii_alphanumeric() {
                out[i] = if out[i] == b'A' { b'B' } else { b'A' };
            }
        }
        _ => out = (0..rng.gen_range(0..2048)).map(|_| rng.gen()).collect(),
    }
    out
}

#[test]
fn open_never_panics_and_never_returns_altered_content() {
    let ca = CertificateAuthority::create("Random CA", &CaOptions::default()).unwrap();
    let alice = issue(
        &ca,
        &Binding::Address("alice@a.example".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let bob = issue(
        &ca,
        &Binding::Address("bob@b.example".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let alice = KeyPair::new(alice.cert, alice.key).unwrap();
    let bob = KeyPair::new(bob.cert, bob.key).unwrap();
    let mut seeds = Vec::new();
    for cipher in [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm] {
        let opts = SealOptions {
            cipher,
            ..SealOptions::default()
        };
        seeds.push(
            seal(
                MSG,
                &Signer::new(alice.clone()),
                std::slice::from_ref(&bob.cert),
                &opts,
            )
            .unwrap(),
        );
    }
    // A signed-only message exercises the verifier without the envelope.
    let wrapped = crate::wrap::wrap(MSG, false).unwrap();
    let mut signed = wrapped.outer_headers.clone();
    signed.extend_from_slice(
        &crate::sign::sign_detached(&[&wrapped.entity_header, MSG], &Signer::new(alice.clone()))
            .unwrap()
            .to_vec(),
    );
    seeds.push(signed);

    let seed: u64 = std::env::var("HISP_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4849_5350);
    let mut rng = StdRng::seed_from_u64(seed);
    let options = OpenOptions {
        keys: std::slice::from_ref(&bob),
    };
    let mut refused = 0;
    for round in 0..1500 {
        let base = &seeds[round % seeds.len()];
        let input = mutate(&mut rng, base);
        let report = open_report(&input, &options);
        match report.result {
            Some(Ok(message)) => assert_eq!(message, MSG, "round {round} returned altered content"),
            Some(Err(_)) => refused += 1,
            None => panic!("round {round}: open_report produced no result"),
        }
    }
    assert!(
        refused > 1000,
        "only {refused} of 1500 mutations were refused"
    );
}

#[test]
fn seal_never_panics_on_broken_messages() {
    let ca = CertificateAuthority::create("Random CA", &CaOptions::default()).unwrap();
    let alice = issue(
        &ca,
        &Binding::Address("alice@a.example".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let bob = issue(
        &ca,
        &Binding::Address("bob@b.example".into()),
        &IssueOptions::default(),
    )
    .unwrap();
    let signer = Signer::new(KeyPair::new(alice.cert, alice.key).unwrap());
    let base: &[u8] = b"From: alice@a.example\r\nTo: bob@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: binary\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\nFrom: x@y\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\n\x02\r\n--c--\r\n\r\n--b--\r\n";
    let mut rng = StdRng::seed_from_u64(0x5345_414c);
    for round in 0..400 {
        let input = mutate(&mut rng, base);
        // Any outcome is fine but a panic; a sealed message must open.
        if let Ok(sealed) = seal(
            &input,
            &signer,
            std::slice::from_ref(&bob.cert),
            &SealOptions::default(),
        ) {
            assert!(!sealed.is_empty(), "round {round}");
        }
    }
}
