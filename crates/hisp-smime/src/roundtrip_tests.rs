//! Seal/open round trips and refusals, with certificates from hisp-ca.

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions, Validity};

use crate::*;

struct Pki {
    ca: CertificateAuthority,
    alice: KeyPair,
    bob: KeyPair,
}

fn pair(ca: &CertificateAuthority, who: &str, options: &IssueOptions) -> KeyPair {
    let issued = issue(ca, &Binding::Address(who.into()), options).unwrap();
    KeyPair::new(issued.cert, issued.key).unwrap()
}

fn pki() -> Pki {
    let ca = CertificateAuthority::create("Test CA", &CaOptions::default()).unwrap();
    let alice = pair(&ca, "alice@a.example", &IssueOptions::default());
    let bob = pair(&ca, "bob@b.example", &IssueOptions::default());
    Pki { ca, alice, bob }
}

const MSG: &[u8] = b"From: alice@a.example\r\nTo: bob@b.example\r\nSubject: hi\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@a.example>\r\nMIME-Version: 1.0\r\n\r\nhello bob\r\n";

fn open_with(p: &Pki, sealed: &[u8]) -> Result<Opened, SmimeError> {
    open(
        sealed,
        &OpenOptions {
            keys: std::slice::from_ref(&p.bob),
        },
    )
}

#[test]
fn round_trip_every_cipher_and_key_transport() {
    let p = pki();
    for cipher in [
        ContentCipher::Aes256Cbc,
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes256Gcm,
    ] {
        for kt in [
            KeyTransport::Pkcs1,
            KeyTransport::OaepSha1,
            KeyTransport::OaepSha256,
        ] {
            let opts = SealOptions {
                cipher,
                key_transport: kt,
                copy_subject: false,
            };
            let sealed = seal(
                MSG,
                &Signer::new(p.alice.clone()),
                std::slice::from_ref(&p.bob.cert),
                &opts,
            )
            .unwrap();
            let opened = open_with(&p, &sealed).unwrap_or_else(|e| panic!("{cipher} {kt}: {e}"));
            assert_eq!(opened.message, MSG);
            assert!(opened.wrapped);
            assert_eq!(opened.cipher, Some(cipher));
            assert_eq!(opened.key_transport, Some(kt));
            assert_eq!(opened.digest, Digest::Sha256);
            assert_eq!(opened.signers.len(), 1);
            assert!(opened.signers[0].verified);
            assert_eq!(
                opened.signers[0].sans,
                vec!["email:alice@a.example".to_string()]
            );
        }
    }
}

#[test]
fn lf_input_is_sealed_in_canonical_crlf_form_rfc8551_3_1_1() {
    let p = pki();
    let lf = String::from_utf8(MSG.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    let sealed = seal(
        lf.as_bytes(),
        &Signer::new(p.alice.clone()),
        std::slice::from_ref(&p.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let opened = open_with(&p, &sealed).unwrap();
    assert_eq!(opened.message, MSG);
}

#[test]
fn not_a_recipient_names_the_recipients() {
    let p = pki();
    let carol = pair(&p.ca, "carol@b.example", &IssueOptions::default());
    let sealed = seal(
        MSG,
        &Signer::new(p.alice.clone()),
        std::slice::from_ref(&carol.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let err = open_with(&p, &sealed).unwrap_err();
    assert!(matches!(err, SmimeError::NotARecipient { .. }), "{err}");
    assert!(err.to_string().contains("Test CA"), "{err}");
}

/// Open verifies signatures and digests only: a signer from a CA nobody
/// named, or one whose certificate has expired, is reported with its
/// certificate for the caller to judge (hisp-trust), not refused here.
#[test]
fn open_reports_signers_without_judging_their_trust() {
    let p = pki();
    let other = CertificateAuthority::create("Other CA", &CaOptions::default()).unwrap();
    let stranger = pair(&other, "alice@a.example", &IssueOptions::default());
    let expired = pair(
        &p.ca,
        "alice@a.example",
        &IssueOptions {
            validity: Validity::expired(30),
            ..IssueOptions::default()
        },
    );
    for signer in [stranger, expired] {
        let sealed = seal(
            MSG,
            &Signer::new(signer.clone()),
            std::slice::from_ref(&p.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        let opened = open_with(&p, &sealed).unwrap();
        assert_eq!(opened.message, MSG);
        assert_eq!(opened.signers.len(), 1);
        assert!(opened.signers[0].verified);
        assert_eq!(opened.signers[0].problem, None);
        assert_eq!(opened.signers[0].cert, signer.cert);
        assert_eq!(opened.certificates, vec![signer.cert.clone()]);
    }
}

#[test]
fn tampered_content_is_a_digest_mismatch() {
    let p = pki();
    let wrapped = crate::wrap::wrap(MSG, false).unwrap();
    let signed = crate::sign::sign_detached(
        &[&wrapped.entity_header, MSG],
        &Signer::new(p.alice.clone()),
    )
    .unwrap();
    let text = String::from_utf8(signed.to_vec())
        .unwrap()
        .replace("hello bob", "hello eve");
    let der = crate::encrypt::encrypt(
        &[text.as_bytes()],
        std::slice::from_ref(&p.bob.cert),
        ContentCipher::Aes256Cbc,
        KeyTransport::Pkcs1,
    )
    .unwrap();
    let sealed = crate::encrypt::to_mime(&wrapped.outer_headers, &der, ContentCipher::Aes256Cbc);
    let err = open_with(&p, &sealed).unwrap_err();
    assert!(matches!(err, SmimeError::DigestMismatch { .. }), "{err}");
}

#[test]
fn rsa_1024_is_refused_for_signing_and_encrypting() {
    let p = pki();
    let weak = pair(
        &p.ca,
        "weak@a.example",
        &IssueOptions {
            bits: 1024,
            ..IssueOptions::default()
        },
    );
    let err = seal(
        MSG,
        &Signer::new(weak.clone()),
        std::slice::from_ref(&p.bob.cert),
        &SealOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SmimeError::WeakKey {
                step: Step::Sign,
                bits: 1024,
                ..
            }
        ),
        "{err}"
    );
    let err = seal(
        MSG,
        &Signer::new(p.alice.clone()),
        std::slice::from_ref(&weak.cert),
        &SealOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SmimeError::WeakKey {
                step: Step::Encrypt,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn encrypts_to_every_recipient_certificate() {
    let p = pki();
    let bob2 = pair(&p.ca, "bob@b.example", &IssueOptions::default());
    let sealed = seal(
        MSG,
        &Signer::new(p.alice.clone()),
        &[p.bob.cert.clone(), bob2.cert.clone()],
        &SealOptions::default(),
    )
    .unwrap();
    for keys in [&p.bob, &bob2] {
        let opened = open(
            &sealed,
            &OpenOptions {
                keys: std::slice::from_ref(keys),
            },
        )
        .unwrap();
        assert_eq!(opened.message, MSG);
    }
}

#[test]
fn not_smime_is_refused() {
    let p = pki();
    let err = open_with(&p, MSG).unwrap_err();
    assert!(matches!(err, SmimeError::NotSmime(_)), "{err}");
}

#[test]
fn certificates_split_out_of_our_signed_data_rfc5652_5_1() {
    let p = pki();
    let der = crate::sign::signed_data(&[MSG], &Signer::new(p.alice.clone())).unwrap();
    let split = crate::inspect::split_signed_data(&der).expect("a DER SignedData splits");
    assert_eq!(split.certs.len(), 1);
    assert_eq!(split.certs[0], p.alice.cert.to_der().unwrap());
    // What is left is still a SignedData libcrypto reads, now without certificates.
    let rest = openssl::cms::CmsContentInfo::from_der(&split.without_certs).unwrap();
    assert!(rest.to_der().unwrap().len() + split.certs[0].len() <= der.len() + 8);
    // Something that is not a SignedData is left alone.
    assert!(crate::inspect::split_signed_data(b"\x30\x03\x02\x01\x00").is_none());
}

#[test]
fn message_of_headers_only_without_final_crlf_seals_and_opens() {
    let p = pki();
    let msg = b"From: alice@a.example\r\nTo: bob@b.example";
    let sealed = seal(
        msg,
        &Signer::new(p.alice.clone()),
        std::slice::from_ref(&p.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&sealed);
    assert!(
        text.contains("To: bob@b.example\r\nContent-Type: application/pkcs7-mime"),
        "{text}"
    );
    let opened = open_with(&p, &sealed).unwrap();
    assert_eq!(
        opened.message,
        b"From: alice@a.example\r\nTo: bob@b.example\r\n\r\n"
    );
}

#[test]
fn sealed_message_stays_within_sealed_size_bound() {
    let p = pki();
    let cc: Vec<String> = (0..20).map(|i| format!("r{i}@b.example")).collect();
    // Ten recipient certificates (ten RecipientInfos) and a long Cc line copied into
    // the wrapper, around bodies of several sizes in 76-column base64 lines.
    let recipients: Vec<_> = std::iter::repeat_n(p.bob.cert.clone(), 10).collect();
    for body_len in [0usize, 1, 57 * 1000, 2 * 1024 * 1024] {
        let mut message = format!(
            "From: alice@a.example\r\nTo: bob@b.example\r\nCc: {}\r\nSubject: size\r\n\
             Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s@a.example>\r\n\
             MIME-Version: 1.0\r\nContent-Type: application/pdf\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
            cc.join(", ")
        )
        .into_bytes();
        let line = [b'Q'; 76];
        while message.len() < body_len {
            message.extend_from_slice(&line);
            message.extend_from_slice(b"\r\n");
        }
        let sealed = seal(
            &message,
            &Signer::new(p.alice.clone()),
            &recipients,
            &SealOptions::default(),
        )
        .unwrap();
        let bound = crate::sealed_size_bound(message.len());
        assert!(
            sealed.len() <= bound,
            "{} octets sealed to {}, over the bound {bound}",
            message.len(),
            sealed.len()
        );
        // The bound is near what sealing really does: not more than the overhead
        // and 1 % above it.
        assert!(
            bound - sealed.len() <= crate::SEAL_OVERHEAD / 8 * 11 + message.len() / 100,
            "bound {bound} far above {}",
            sealed.len()
        );
    }
}
