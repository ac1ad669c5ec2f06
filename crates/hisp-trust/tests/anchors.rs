//! Anchors per local domain and direction; changes are in force for the
//! next judgement.

mod common;

use common::now;
use common::pki::root;
use hisp_ca::{issue, Binding as CaBinding, IssueOptions};
use hisp_trust::{
    fingerprint, judge, Anchor, AnchorSet, Direction, Intermediates, Purpose, Question, Remote,
    RevocationMode, Verdict,
};
use openssl::x509::X509;

const LOCAL: &str = "direct.example.org";

fn signer_verdict(set: &AnchorSet, cert: &X509, remote: &Remote) -> Verdict {
    judge(
        &Question {
            cert,
            purpose: Purpose::Sign,
            expected: "alice@partner.example",
            anchors: &set.incoming(LOCAL),
            intermediates: Intermediates::default(),
            at: now(),
            revocation: RevocationMode::HardFail,
        },
        remote,
    )
}

fn partner_leaf(ca: &hisp_ca::CertificateAuthority) -> X509 {
    issue(
        ca,
        &CaBinding::Address("alice@partner.example".into()),
        &IssueOptions::default(),
    )
    .unwrap()
    .cert
}

#[test]
fn anchors_are_filtered_by_direction() {
    let (a, b, c) = (root("In CA"), root("Out CA"), root("Both CA"));
    let mut set = AnchorSet::new();
    set.add(Anchor::new(LOCAL, Direction::Incoming, a.cert().clone()));
    set.add(Anchor::new(LOCAL, Direction::Outgoing, b.cert().clone()));
    set.add(Anchor::new(LOCAL, Direction::Both, c.cert().clone()));
    set.add(Anchor::new(
        "other.example",
        Direction::Both,
        a.cert().clone(),
    ));
    assert_eq!(
        set.incoming(LOCAL),
        vec![a.cert().clone(), c.cert().clone()]
    );
    assert_eq!(
        set.outgoing(LOCAL),
        vec![b.cert().clone(), c.cert().clone()]
    );
    assert_eq!(set.outgoing("other.example"), vec![a.cert().clone()]);
    assert!(set.incoming("unknown.example").is_empty());
}

#[test]
fn domains_compare_without_case_or_trailing_dot() {
    let a = root("In CA");
    let mut set = AnchorSet::new();
    set.add(Anchor::new(
        "Direct.Example.ORG.",
        Direction::Incoming,
        a.cert().clone(),
    ));
    assert_eq!(set.incoming("direct.example.org").len(), 1);
    assert_eq!(set.all()[0].domain, "direct.example.org");
}

#[test]
fn outgoing_anchor_does_not_trust_an_inbound_signer() {
    let partner = root("Partner CA");
    let leaf = partner_leaf(&partner);
    let mut set = AnchorSet::new();
    set.add(Anchor::new(
        LOCAL,
        Direction::Outgoing,
        partner.cert().clone(),
    ));
    let v = signer_verdict(&set, &leaf, &Remote::http());
    assert!(!v.usable, "{}", v.reason);
    assert!(
        v.reason.contains("no trust anchor is configured"),
        "{}",
        v.reason
    );
}

#[test]
fn re_adding_an_anchor_replaces_its_direction() {
    let partner = root("Partner CA");
    let mut set = AnchorSet::new();
    set.add(Anchor::new(
        LOCAL,
        Direction::Outgoing,
        partner.cert().clone(),
    ));
    set.add(Anchor::new(
        LOCAL,
        Direction::Incoming,
        partner.cert().clone(),
    ));
    assert_eq!(set.all().len(), 1);
    assert_eq!(set.incoming(LOCAL).len(), 1);
    assert!(set.outgoing(LOCAL).is_empty());
}

#[test]
fn anchor_removal_takes_effect_on_the_next_judge_call() {
    let partner = root("Partner CA");
    let leaf = partner_leaf(&partner);
    let remote = Remote::http();
    let mut set = AnchorSet::new();
    set.add(Anchor::new(LOCAL, Direction::Both, partner.cert().clone()));
    assert!(signer_verdict(&set, &leaf, &remote).usable);

    // Fingerprints are accepted with colons and in upper case, as tools print them.
    let fp = fingerprint(partner.cert()).unwrap();
    let colons: Vec<String> = fp
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap().to_uppercase())
        .collect();
    assert!(set.remove(LOCAL, &colons.join(":")));
    assert!(!set.remove(LOCAL, &fp), "already removed");
    let v = signer_verdict(&set, &leaf, &remote);
    assert!(!v.usable, "{}", v.reason);

    // And back again: no verdict was cached.
    set.add(Anchor::new(
        LOCAL,
        Direction::Incoming,
        partner.cert().clone(),
    ));
    assert!(signer_verdict(&set, &leaf, &remote).usable);
    assert_eq!(set.remove_domain(LOCAL), 1);
    assert!(!signer_verdict(&set, &leaf, &remote).usable);
}

#[test]
fn direction_reads_the_cli_words() {
    assert_eq!("in".parse::<Direction>().unwrap(), Direction::Incoming);
    assert_eq!("OUT".parse::<Direction>().unwrap(), Direction::Outgoing);
    assert_eq!("both".parse::<Direction>().unwrap(), Direction::Both);
    assert_eq!(
        "sideways".parse::<Direction>().unwrap_err().to_string(),
        "unknown anchor direction 'sideways': use in, out or both"
    );
}
