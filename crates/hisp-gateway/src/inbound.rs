//! The judgement of a message from another HISP: it must be encrypted to a
//! local recipient, signed, unchanged (hisp-smime's `open`), and signed by a
//! certificate that hisp-trust finds trusted: a path (with the message's,
//! local and AIA intermediates) to the recipient domain's incoming anchors,
//! valid and not revoked, allowed to sign, and bound to the From address or
//! its domain (Applicability Statement 1.3 §4.1) — the same judgement as
//! discovery's. Anything else is quarantined with the reason; nothing of it
//! reaches a mailbox and no MDN is sent.

use hisp_smime::{open_report, KeyPair, OpenOptions};
use hisp_trust::{
    judge, name_line, Anchors, Intermediates, Purpose, Question, Remote, RevocationMode,
    TrustFailure,
};
use mail_parser::{HeaderName, HeaderValue, MessageParser};
use openssl::x509::X509;

pub use crate::inbound_refusal::InboundRefusal;

/// What judging an inbound message needs.
pub struct InboundContext<'a> {
    /// The key pairs of the envelope recipients (their addresses' and domains').
    pub keys: &'a [KeyPair],
    /// The recipient domain's incoming anchors (and bundle certificates).
    pub anchors: &'a Anchors,
    /// Intermediates kept locally.
    pub intermediates: &'a [X509],
    /// Validation time, Unix seconds.
    pub at: i64,
    /// What to do when a CRL cannot be had.
    pub revocation: RevocationMode,
    /// Network access for caIssuers and CRLs.
    pub remote: &'a Remote,
}

/// The outcome for one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundVerdict {
    /// Deliver `message` (the inner message, byte for byte as signed).
    Accept {
        /// The inner message.
        message: Vec<u8>,
        /// The From address it was checked against.
        from: String,
        /// Which certificate signed it and why it is trusted.
        signer: String,
    },
    /// Keep it out of every mailbox, with why as a value and in words.
    Quarantine {
        /// Why, as a value: its code and the store's quarantine reason come from it.
        refusal: InboundRefusal,
        /// What failed, naming the certificate and the check.
        reason: String,
    },
    /// Not decidable now (a CRL or issuer out of reach): try again later.
    Temporary {
        /// What could not be reached.
        reason: String,
    },
}

fn quarantine(refusal: InboundRefusal, reason: impl Into<String>) -> InboundVerdict {
    InboundVerdict::Quarantine {
        refusal,
        reason: reason.into(),
    }
}

/// Judges an inbound message as received on the backbone.
pub fn judge_inbound(sealed: &[u8], ctx: &InboundContext<'_>) -> InboundVerdict {
    let report = open_report(sealed, &OpenOptions { keys: ctx.keys });
    if let Some(e) = report.error() {
        let reason = format!("{} (at {})", e, e.step());
        return quarantine(InboundRefusal::Open(e.clone()), reason);
    }
    // Applicability Statement 1.3: Direct messages are encrypted; a signed
    // but unencrypted message is refused even if its signature is good.
    if report.cipher.is_none() {
        return quarantine(
            InboundRefusal::NotEncrypted,
            "the message is signed but not encrypted: Direct messages must be encrypted",
        );
    }
    let Some(Ok(message)) = report.result else {
        return quarantine(
            InboundRefusal::Open(hisp_smime::SmimeError::NotSmime(
                "nothing could be opened".into(),
            )),
            "nothing could be opened",
        );
    };
    // Applicability Statement 1.3 §4.1: the signer is judged against the
    // From of the opened message (for a sender that does not wrap, the
    // signed From when the entity has one: `hisp_smime` keeps it alone).
    let from = match from_address(&message) {
        Ok(f) => f,
        Err(why) => {
            return quarantine(
                InboundRefusal::NoFrom,
                format!("{why}: the signer cannot be checked against one From address"),
            )
        }
    };
    let mut refusals = Vec::new();
    let mut failures = Vec::new();
    let mut temporary = Vec::new();
    // hisp-trust alone decides whether a verified signer is trusted, with
    // the certificates the message carried as candidate intermediates.
    for signer in report.signers.iter().filter(|s| s.verified) {
        let verdict = judge(
            &Question {
                cert: &signer.cert,
                purpose: Purpose::Sign,
                expected: &from,
                anchors: ctx.anchors,
                intermediates: Intermediates {
                    message: &report.certificates,
                    local: ctx.intermediates,
                },
                at: ctx.at,
                revocation: ctx.revocation,
            },
            ctx.remote,
        );
        if verdict.usable {
            return InboundVerdict::Accept {
                message,
                from,
                signer: verdict.reason,
            };
        }
        if verdict.temporary {
            temporary.push(verdict.reason);
        } else {
            refusals.push(signer_refusal_text(
                &signer.cert,
                &verdict.failures,
                &verdict.reason,
                ctx.anchors.certs(),
            ));
            failures.extend(verdict.failures);
        }
    }
    if !temporary.is_empty() {
        return InboundVerdict::Temporary {
            reason: temporary.join("; "),
        };
    }
    // `open` succeeds only with a verified signer, and a refused verdict
    // names at least one failure; no anchor is the answer if that ever fails.
    let refusal = InboundRefusal::of_signers(failures)
        .unwrap_or(InboundRefusal::Signer(TrustFailure::NoAnchors));
    quarantine(refusal, refusals.join("; "))
}

/// A signer's refusal in words: hisp-trust's reason, introduced as
/// `expired signer <cert>: ...` when a certificate of its path is out of
/// validity, or as `untrusted signer <cert>: ...; anchors: ...` when no path
/// reaches an anchor, so a quarantine record reads as it always has.
fn signer_refusal_text(
    cert: &X509,
    failures: &[TrustFailure],
    reason: &str,
    anchors: &[X509],
) -> String {
    let id = hisp_trust::cert_id(cert);
    if failures.iter().any(|f| f.is_validity()) {
        format!("expired signer {id}: {reason}")
    } else if failures.iter().any(|f| {
        matches!(
            f,
            TrustFailure::NoAnchors | TrustFailure::NoPath | TrustFailure::InvalidPath
        )
    }) {
        let names: Vec<String> = anchors
            .iter()
            .map(|a| format!("'{}'", name_line(a.subject_name())))
            .collect();
        format!(
            "untrusted signer {id}: {reason}; anchors: {}",
            names.join(", ")
        )
    } else {
        reason.to_string()
    }
}

/// The one From address of a message, lower case, or what is wrong with
/// its From (RFC 5322 §3.6: exactly one From field; one mailbox, as
/// Direct binds the signer to one address).
fn from_address(message: &[u8]) -> Result<String, String> {
    let parsed = MessageParser::new()
        .with_address_headers()
        .parse_headers(message)
        .ok_or_else(|| "the opened message has no readable header".to_string())?;
    let fields = parsed
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::From)
        .count();
    match fields {
        0 => return Err("the opened message has no From field".into()),
        1 => {}
        n => return Err(format!("the opened message has {n} From fields")),
    }
    let addresses: Vec<&str> = match parsed.header(HeaderName::From) {
        Some(HeaderValue::Address(list)) => list.iter().filter_map(|a| a.address()).collect(),
        _ => Vec::new(),
    };
    match addresses.as_slice() {
        [one] => Ok(one.to_ascii_lowercase()),
        [] => Err("the From field of the opened message names no address".into()),
        more => Err(format!(
            "the From field of the opened message names {} addresses",
            more.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions, Usage};
    use hisp_smime::{seal, SealOptions, Signer};

    struct World {
        ca: CertificateAuthority,
        alice: KeyPair,
        bob: KeyPair,
        remote: Remote,
    }

    fn pair(ca: &CertificateAuthority, b: Binding, usage: Usage) -> KeyPair {
        let i = issue(
            ca,
            &b,
            &IssueOptions {
                usage,
                ..IssueOptions::default()
            },
        )
        .unwrap();
        KeyPair::new(i.cert, i.key).unwrap()
    }

    fn world() -> World {
        let ca = CertificateAuthority::create("In CA", &CaOptions::default()).unwrap();
        World {
            alice: pair(
                &ca,
                Binding::Address("alice@a.example".into()),
                Usage::Combined,
            ),
            bob: pair(
                &ca,
                Binding::Address("bob@b.example".into()),
                Usage::Combined,
            ),
            ca,
            remote: Remote::http(),
        }
    }

    const MSG: &[u8] = b"From: alice@a.example\r\nTo: bob@b.example\r\nSubject: x\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <i@a.example>\r\n\r\nhello\r\n";

    fn judge_with(w: &World, sealed: &[u8], anchors: &[X509]) -> InboundVerdict {
        judge_inbound(
            sealed,
            &InboundContext {
                keys: std::slice::from_ref(&w.bob),
                anchors: &Anchors::new(anchors.to_vec()).unwrap(),
                intermediates: &[],
                at: time_now(),
                revocation: RevocationMode::HardFail,
                remote: &w.remote,
            },
        )
    }

    fn time_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    #[test]
    fn trusted_bound_signer_is_accepted() {
        let w = world();
        let sealed = seal(
            MSG,
            &Signer::new(w.alice.clone()),
            std::slice::from_ref(&w.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        match judge_with(&w, &sealed, &[w.ca.cert().to_owned()]) {
            InboundVerdict::Accept { message, from, .. } => {
                assert_eq!(message, MSG);
                assert_eq!(from, "alice@a.example");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signer_not_bound_to_from_is_quarantined_applicability_statement_4_1() {
        let w = world();
        let forged = String::from_utf8(MSG.to_vec())
            .unwrap()
            .replace("From: alice@", "From: mallory@");
        let sealed = seal(
            forged.as_bytes(),
            &Signer::new(w.alice.clone()),
            std::slice::from_ref(&w.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        match judge_with(&w, &sealed, &[w.ca.cert().to_owned()]) {
            InboundVerdict::Quarantine { refusal, reason } => {
                assert_eq!(refusal, InboundRefusal::Signer(TrustFailure::Unbound));
                assert_eq!(refusal.code(), "unbound-signer");
                assert!(reason.contains("mallory@a.example"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn untrusted_signer_is_quarantined() {
        let w = world();
        let other = CertificateAuthority::create("Other CA", &CaOptions::default()).unwrap();
        let sealed = seal(
            MSG,
            &Signer::new(w.alice.clone()),
            std::slice::from_ref(&w.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        match judge_with(&w, &sealed, &[other.cert().to_owned()]) {
            InboundVerdict::Quarantine { refusal, reason } => {
                assert_eq!(refusal, InboundRefusal::Signer(TrustFailure::NoPath));
                assert_eq!(refusal.code(), "untrusted-signer");
                assert!(
                    reason.starts_with("untrusted signer 'CN=alice@a.example'"),
                    "{reason}"
                );
                assert!(reason.ends_with("; anchors: 'CN=Other CA'"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expired_signer_is_quarantined_by_hisp_trust_rfc5280_6_1_3() {
        let w = world();
        let expired = {
            let i = issue(
                &w.ca,
                &Binding::Address("alice@a.example".into()),
                &IssueOptions {
                    validity: hisp_ca::Validity::expired(30),
                    ..IssueOptions::default()
                },
            )
            .unwrap();
            KeyPair::new(i.cert, i.key).unwrap()
        };
        let sealed = seal(
            MSG,
            &Signer::new(expired),
            std::slice::from_ref(&w.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        match judge_with(&w, &sealed, &[w.ca.cert().to_owned()]) {
            InboundVerdict::Quarantine { refusal, reason } => {
                assert_eq!(refusal, InboundRefusal::Signer(TrustFailure::Expired));
                assert_eq!(refusal.code(), "expired-signer");
                assert_eq!(
                    refusal.quarantine_reason(),
                    hisp_store::QuarantineReason::Untrusted
                );
                assert!(
                    reason.starts_with("expired signer 'CN=alice@a.example'"),
                    "{reason}"
                );
                assert!(reason.contains(" expired at "), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The path may need an intermediate the message does not carry: a
    /// locally kept one completes it, as for discovery (RFC 5280 §6.1).
    #[test]
    fn signer_under_a_local_intermediate_is_accepted_rfc5280_6_1() {
        let w = world();
        let int =
            w.ca.create_intermediate("In Intermediate", &CaOptions::default())
                .unwrap();
        let alice = pair(
            &int,
            Binding::Address("alice@a.example".into()),
            Usage::Combined,
        );
        let sealed = seal(
            MSG,
            &Signer::new(alice),
            std::slice::from_ref(&w.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        let anchors = Anchors::new(vec![w.ca.cert().to_owned()]).unwrap();
        let judged = |intermediates: &[X509]| {
            judge_inbound(
                &sealed,
                &InboundContext {
                    keys: std::slice::from_ref(&w.bob),
                    anchors: &anchors,
                    intermediates,
                    at: time_now(),
                    revocation: RevocationMode::HardFail,
                    remote: &w.remote,
                },
            )
        };
        match judged(&[]) {
            InboundVerdict::Quarantine { refusal, .. } => {
                assert_eq!(refusal, InboundRefusal::Signer(TrustFailure::NoPath))
            }
            other => panic!("{other:?}"),
        }
        match judged(&[int.cert().to_owned()]) {
            InboundVerdict::Accept { message, .. } => assert_eq!(message, MSG),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signer_without_digital_signature_is_quarantined_rfc5280_4_2_1_3() {
        let w = world();
        let enc_only = pair(
            &w.ca,
            Binding::Address("alice@a.example".into()),
            Usage::EncryptionOnly,
        );
        let sealed = seal(
            MSG,
            &Signer::new(enc_only),
            std::slice::from_ref(&w.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        match judge_with(&w, &sealed, &[w.ca.cert().to_owned()]) {
            InboundVerdict::Quarantine { refusal, reason } => {
                assert_eq!(refusal, InboundRefusal::Signer(TrustFailure::KeyUsage));
                assert_eq!(refusal.code(), "untrusted-signer");
                assert!(reason.contains("digitalSignature"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tampered_or_foreign_messages_are_quarantined_with_the_smime_code() {
        let w = world();
        let carol = pair(
            &w.ca,
            Binding::Address("carol@b.example".into()),
            Usage::Combined,
        );
        let sealed = seal(
            MSG,
            &Signer::new(w.alice.clone()),
            std::slice::from_ref(&carol.cert),
            &SealOptions::default(),
        )
        .unwrap();
        match judge_with(&w, &sealed, &[w.ca.cert().to_owned()]) {
            InboundVerdict::Quarantine { refusal, .. } => {
                assert_eq!(refusal.code(), "not-a-recipient")
            }
            other => panic!("{other:?}"),
        }
        match judge_with(&w, MSG, &[w.ca.cert().to_owned()]) {
            InboundVerdict::Quarantine { refusal, .. } => assert_eq!(refusal.code(), "not-smime"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn from_address_is_the_one_from_or_says_what_is_wrong_rfc5322_3_6() {
        assert_eq!(
            from_address(b"From: Alice <Alice@A.example>\r\n\r\nx\r\n"),
            Ok("alice@a.example".to_string())
        );
        let twice = from_address(b"From: a@a.example\r\nFrom: b@a.example\r\n\r\nx\r\n");
        assert_eq!(
            twice,
            Err("the opened message has 2 From fields".to_string())
        );
        let none = from_address(b"To: b@b.example\r\n\r\nx\r\n");
        assert_eq!(
            none,
            Err("the opened message has no From field".to_string())
        );
        let two = from_address(b"From: a@a.example, b@a.example\r\n\r\nx\r\n");
        assert_eq!(
            two,
            Err("the From field of the opened message names 2 addresses".to_string())
        );
    }
}
