//! Fuzzes `hisp_smime::seal` (fed by SMTP submission): any message, however
//! broken, must give a sealed message or a typed error, never a panic.
#![no_main]

use std::sync::OnceLock;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use hisp_smime::{seal, KeyPair, SealOptions, Signer};
use libfuzzer_sys::fuzz_target;

struct Keys {
    signer: Signer,
    recipient: openssl::x509::X509,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ca = CertificateAuthority::create("Fuzz CA", &CaOptions::default()).expect("CA");
        let leaf = |a: &str| {
            let i = issue(&ca, &Binding::Address(a.into()), &IssueOptions::default())
                .expect("leaf");
            KeyPair::new(i.cert, i.key).expect("pair")
        };
        Keys {
            signer: Signer::new(leaf("alice@a.example")),
            recipient: leaf("bob@b.example").cert,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let _ = seal(
        data,
        &k.signer,
        std::slice::from_ref(&k.recipient),
        &SealOptions::default(),
    );
});
