//! Fuzzes `hisp_smime::open_report` (the receiving side, fed by the network):
//! any input must give a result or a typed error, never a panic or a crash.
#![no_main]

use std::sync::OnceLock;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_smime::{open_report, KeyPair, OpenOptions};
use libfuzzer_sys::fuzz_target;

struct Keys {
    pair: KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ca = CertificateAuthority::create("Fuzz CA", &CaOptions::default()).expect("CA");
        let bob = issue(&ca, &Binding::Address("bob@b.example".into()), &IssueOptions::default())
            .expect("leaf");
        Keys {
            pair: KeyPair::new(bob.cert, bob.key).expect("pair"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let report = open_report(
        data,
        &OpenOptions {
            keys: std::slice::from_ref(&k.pair),
        },
    );
    assert!(report.result.is_some());
});
