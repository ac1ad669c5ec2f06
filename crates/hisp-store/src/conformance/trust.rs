//! Anchors and bundles.

use hisp_ca::Binding;
use time::OffsetDateTime;

use super::{addr, anchor_cert, ca, ca_anchor, domain, issued, Backend};
use crate::cert::Fingerprint;
use crate::error::Entity;
use crate::{
    AnchorSelector, BundleFetch, BundleId, BundleSource, Direction, DirectoryVersion, Domain, Flow,
    MessageDirection, NewBundle, Owner, Store, StoreError,
};

pub(crate) fn anchors_are_unique_per_domain_by_fingerprint<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store
        .add_anchors(&domain("a.example"), Direction::Both, &[ca_anchor()])
        .unwrap();
    let err = store
        .add_anchors(&domain("a.example"), Direction::Incoming, &[ca_anchor()])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "anchor CN=store test root (fingerprint {}) of domain a.example already exists",
            ca_anchor().info().fingerprint
        )
    );
    // The same anchor on another domain is another anchor.
    store
        .add_anchors(&domain("b.example"), Direction::Both, &[ca_anchor()])
        .unwrap();
    assert_eq!(store.anchors(None).unwrap().len(), 2);
    assert_eq!(store.anchors(Some(&domain("b.example"))).unwrap().len(), 1);
}

pub(crate) fn anchors_for_a_flow_are_those_marked_for_it_or_both<B: Backend>(db: &B) {
    let store = db.open();
    let d = domain("a.example");
    store.add_domain(&d, &[]).unwrap();
    let (i, o, b) = (
        anchor_cert("in", 1),
        anchor_cert("out", 2),
        anchor_cert("both", 3),
    );
    store.add_anchors(&d, Direction::Incoming, &[i]).unwrap();
    store.add_anchors(&d, Direction::Outgoing, &[o]).unwrap();
    store.add_anchors(&d, Direction::Both, &[b]).unwrap();
    let subjects = |flow| {
        store
            .anchors_for(&d, flow)
            .unwrap()
            .into_iter()
            .map(|a| a.info.subject)
            .collect::<Vec<_>>()
    };
    assert_eq!(subjects(Flow::Incoming), ["CN=in", "CN=both"]);
    assert_eq!(subjects(Flow::Outgoing), ["CN=out", "CN=both"]);
}

pub(crate) fn anchors_are_removed_by_fingerprint_or_serial<B: Backend>(db: &B) {
    let store = db.open();
    let d = domain("a.example");
    store.add_domain(&d, &[]).unwrap();
    let one = anchor_cert("one", 0x0a1b);
    let two = anchor_cert("two", 7);
    let fp = one.info().fingerprint;
    store.add_anchors(&d, Direction::Both, &[one, two]).unwrap();
    let removed = store
        .remove_anchor(&d, &AnchorSelector::parse(&fp.to_string()).unwrap())
        .unwrap();
    assert_eq!(removed.info.subject, "CN=one");
    let removed = store
        .remove_anchor(&d, &AnchorSelector::parse("07").unwrap())
        .unwrap();
    assert_eq!(removed.info.subject, "CN=two");
    let err = store
        .remove_anchor(&d, &AnchorSelector::parse("07").unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "anchor with serial 07 of domain a.example not found"
    );
}

pub(crate) fn a_serial_shared_by_two_anchors_is_ambiguous<B: Backend>(db: &B) {
    let store = db.open();
    let d = domain("a.example");
    store.add_domain(&d, &[]).unwrap();
    store
        .add_anchors(
            &d,
            Direction::Both,
            &[anchor_cert("x", 1), anchor_cert("y", 1)],
        )
        .unwrap();
    let err = store
        .remove_anchor(&d, &AnchorSelector::parse("1").unwrap())
        .unwrap_err();
    assert!(matches!(err, StoreError::Ambiguous { ref candidates, .. } if candidates.len() == 2));
    assert_eq!(store.anchors(None).unwrap().len(), 2);
}

pub(crate) fn an_anchor_removed_through_one_connection_is_gone_for_another_at_once<B: Backend>(
    db: &B,
) {
    let daemon = db.open();
    let cli = db.open();
    let d = domain("a.example");
    cli.add_domain(&d, &[]).unwrap();
    let fp = ca_anchor().info().fingerprint;
    cli.add_anchors(&d, Direction::Both, &[ca_anchor()])
        .unwrap();
    assert_eq!(daemon.anchors_for(&d, Flow::Incoming).unwrap().len(), 1);
    cli.remove_anchor(&d, &AnchorSelector::Fingerprint(fp))
        .unwrap();
    assert!(daemon.anchors_for(&d, Flow::Incoming).unwrap().is_empty());
}

pub(crate) fn anchor_info_round_trips<B: Backend>(db: &B) {
    let store = db.open();
    let d = domain("a.example");
    store.add_domain(&d, &[]).unwrap();
    let anchor = ca_anchor();
    let added = store
        .add_anchors(&d, Direction::Incoming, std::slice::from_ref(&anchor))
        .unwrap();
    let listed = store.anchors(Some(&d)).unwrap();
    assert_eq!(added, listed);
    let a = &listed[0];
    assert_eq!(a.der, ca().cert().to_der().unwrap());
    assert_eq!(a.info.fingerprint, Fingerprint::of(&a.der));
    assert_eq!(a.info.serial, anchor.info().serial);
    assert_eq!(a.info.not_after, anchor.info().not_after);
    assert_eq!(a.direction, Direction::Incoming);
}

fn bundle(d: &Domain, source: &str) -> NewBundle {
    NewBundle {
        domain: d.clone(),
        source: BundleSource::parse(source).unwrap(),
        direction: Direction::Both,
        refresh_secs: 3600,
    }
}

pub(crate) fn bundles_are_unique_per_domain_and_source<B: Backend>(db: &B) {
    let store = db.open();
    let d = domain("a.example");
    store.add_domain(&d, &[]).unwrap();
    store
        .add_bundle(&bundle(&d, "https://x.example/b.p7b"))
        .unwrap();
    let err = store
        .add_bundle(&bundle(&d, "https://x.example/b.p7b"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bundle https://x.example/b.p7b of domain a.example already exists"
    );
    store.add_bundle(&bundle(&d, "/etc/hisp/b.p7b")).unwrap();
    let mut short = bundle(&d, "/etc/hisp/c.p7b");
    short.refresh_secs = 59;
    assert!(store.add_bundle(&short).is_err());
    assert_eq!(store.bundles(Some(&d)).unwrap().len(), 2);
    store
        .remove_bundle(&d, &BundleSource::parse("/etc/hisp/b.p7b").unwrap())
        .unwrap();
    assert_eq!(store.bundles(None).unwrap().len(), 1);
}

pub(crate) fn a_failed_fetch_keeps_the_last_good_bundle<B: Backend>(db: &B) {
    let store = db.open();
    let d = domain("a.example");
    store.add_domain(&d, &[]).unwrap();
    let b = store
        .add_bundle(&bundle(&d, "https://x.example/b.p7b"))
        .unwrap();
    assert_eq!(b.last_good, None);
    let t1 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let t2 = OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap();
    store
        .record_bundle_fetch(
            b.id,
            &BundleFetch::Good {
                bytes: b"p7b".to_vec(),
                at: t1,
            },
        )
        .unwrap();
    store
        .record_bundle_fetch(
            b.id,
            &BundleFetch::Failed {
                error: "HTTP 503".into(),
                at: t2,
            },
        )
        .unwrap();
    let b = &store.bundles(None).unwrap()[0];
    assert_eq!(b.last_good.as_deref(), Some(&b"p7b"[..]));
    assert_eq!(b.last_good_at, Some(t1));
    assert_eq!(b.last_fetched_at, Some(t2));
    assert_eq!(b.last_error.as_deref(), Some("HTTP 503"));
    let err = store
        .record_bundle_fetch(
            BundleId(999),
            &BundleFetch::Failed {
                error: "x".into(),
                at: t2,
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::NotFound {
            entity: Entity::Bundle,
            ..
        }
    ));
}

/// A server's caches of parsed keys and anchor stores are current only
/// while `directory_version` stays: it moves for its own changes of keys
/// and anchors, for a removal that cascades to certificates, and for
/// another process's commits; reading and queueing leave it.
pub(crate) fn directory_version_moves_with_keys_and_anchors_of_any_process<B: Backend>(db: &B) {
    let server = db.open();
    let d = domain("a.example");
    let alice = addr("alice@a.example");
    server.add_domain(&d, &[]).unwrap();
    server.add_address(&alice, &[]).unwrap();

    let mut seen = server.directory_version().unwrap();
    let moved = |seen: &mut DirectoryVersion, what: &str| {
        let now = server.directory_version().unwrap();
        assert_ne!(now, *seen, "{what} must move the version");
        *seen = now;
    };
    server
        .add_certificate(
            &Owner::Address(alice.clone()),
            &issued(Binding::Address(alice.to_string()), true),
        )
        .unwrap();
    moved(&mut seen, "a certificate added");
    server
        .add_anchors(&d, Direction::Both, &[ca_anchor()])
        .unwrap();
    moved(&mut seen, "an anchor added");

    server.anchors_for(&d, Flow::Incoming).unwrap();
    server.certificates(None).unwrap();
    server
        .enqueue(
            MessageDirection::Outbound,
            Some(&alice),
            &[addr("x@b.example")],
            b"From: alice@a.example\r\n\r\nx\r\n",
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
    assert_eq!(
        server.directory_version().unwrap(),
        seen,
        "reads and the queue leave it"
    );

    let cli = db.open();
    cli.remove_anchor(
        &d,
        &AnchorSelector::Fingerprint(ca_anchor().info().fingerprint),
    )
    .unwrap();
    moved(&mut seen, "another process's removal of an anchor");
    server.remove_address(&alice).unwrap();
    assert!(server.certificates(None).unwrap().is_empty());
    moved(&mut seen, "an address removed with its certificates");
}
