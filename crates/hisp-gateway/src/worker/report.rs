//! MDNs and DSNs that other HISPs send about our outbound mail. They arrive
//! like any Direct message (sealed, judged, opened) and then go to tracking,
//! never into a mailbox (Implementation Guide for Delivery Notification in
//! Direct 1.0 §3.1: the sender's HISP consumes them).
//!
//! A report moves the tracked recipient it names:
//!
//! - `processed`: relayed -> processed, and on to delivered when final
//!   delivery was not asked for;
//! - `dispatched`: relayed or processed -> dispatched -> delivered;
//! - `failed`, `denied` (or any disposition with the `error` modifier) and a
//!   DSN with action failed: -> failed with the remote reason (the sender
//!   then gets one DSN from us).
//!
//! A `processed` MDN that the `dispatched` one overtook only gets its time
//! written (the state stays). A report for a recipient already past that
//! point (a duplicate), for one
//! already failed (late, after the timeout), for an unknown message or from
//! a sender who is not the recipient it speaks for changes nothing and is
//! audited.

use hisp_mdn::{parse_report, DispositionType, DsnAction, Mdn, Report};
use hisp_store::{
    AuditKind, DirectAddress, Expectation, Held, MessageId, MessageRecordId, RecipientId,
    RecipientRecord, Store, StoreError, TrackingState,
};
use time::OffsetDateTime;
use tracing::info;

use super::Worker;
use crate::error::GatewayError;

/// What one report says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Processed,
    Dispatched,
    Failed(String),
    /// A disposition or action that does not move tracking.
    Nothing(String),
}

/// Tracks the report `inner` (opened, trusted), received as inbound queue
/// message `record` from `signer_address` (the From its signer is bound to).
pub(super) async fn track(
    worker: &Worker,
    held: &Held,
    record: MessageRecordId,
    inner: &[u8],
    from: Option<&DirectAddress>,
    now: OffsetDateTime,
) -> Result<(), GatewayError> {
    let report = match parse_report(inner) {
        Ok(r) => r,
        Err(e) => {
            return ignore(worker, record, None, &format!("unreadable report: {e}")).await;
        }
    };
    let (original, claims) = match &report {
        Report::Mdn(mdn) => (
            mdn.original_message_id.clone(),
            vec![(mdn.final_recipient.clone(), said_by_mdn(mdn))],
        ),
        Report::Dsn(dsn) => (
            dsn.original_message_id.clone(),
            dsn.recipients
                .iter()
                .map(|r| {
                    let said = match r.action {
                        DsnAction::Failed => Said::Failed(format!(
                            "the destination reported failed, status {}{}",
                            r.status,
                            r.diagnostic
                                .as_deref()
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        )),
                        other => Said::Nothing(format!("DSN action {other}")),
                    };
                    (r.final_recipient.clone(), said)
                })
                .collect(),
        ),
    };
    let kind = match report {
        Report::Mdn(_) => "MDN",
        Report::Dsn(_) => "DSN",
    };
    let Some(original) = original.and_then(|id| MessageId::parse(&id).ok()) else {
        return ignore(
            worker,
            record,
            None,
            &format!("{kind} names no original Message-ID"),
        )
        .await;
    };
    let lookup = original.clone();
    let tracked = worker
        .ctx
        .store
        .call(move |s| s.tracked_message(&lookup))
        .await?;
    if tracked.is_empty() {
        return ignore(
            worker,
            record,
            Some(&original),
            &format!("{kind} about an unknown message <{original}>"),
        )
        .await;
    }
    let mut seen: Vec<String> = Vec::new();
    for (final_recipient, said) in claims {
        // A DSN naming one recipient twice speaks once.
        if seen
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&final_recipient))
        {
            continue;
        }
        seen.push(final_recipient.clone());
        let named = DirectAddress::parse(&final_recipient).ok();
        let is_named = |r: &RecipientRecord| match &named {
            Some(a) => &r.address == a,
            None => r.address.to_string().eq_ignore_ascii_case(&final_recipient),
        };
        // Several outbound messages may share the Message-ID (a portal that
        // sent again): the report is for the oldest copy it can still move.
        let candidates: Vec<(RecipientRecord, Expectation)> = tracked
            .iter()
            .rev()
            .flat_map(|m| {
                m.recipients
                    .iter()
                    .filter(|r| is_named(r))
                    .map(|r| (r.clone(), m.expect))
            })
            .collect();
        let Some((recipient, expect)) = candidates
            .iter()
            .find(|(r, e)| moves(r, &said, final_delivery_of(*e)).is_ok() || overtaken(r, &said))
            .or(candidates.first())
            .cloned()
        else {
            ignore(
                worker,
                record,
                Some(&original),
                &format!("{kind} about {final_recipient}, who is not a recipient of <{original}>"),
            )
            .await?;
            continue;
        };
        if !speaks_for(from, &recipient.address) {
            let who = from.map_or_else(|| "an unknown sender".to_string(), |f| f.to_string());
            ignore(
                worker,
                record,
                Some(&original),
                &format!("{kind} from {who} about {final_recipient} not accepted: only the recipient (or postmaster of its domain) reports on it"),
            )
            .await?;
            continue;
        }
        let claim = Claim {
            held,
            record,
            original: &original,
            recipient: &recipient,
            final_delivery: final_delivery_of(expect),
            said,
            kind,
        };
        apply(worker, claim, now).await?;
    }
    Ok(())
}

fn final_delivery_of(expect: Expectation) -> bool {
    matches!(
        expect,
        Expectation::Mail {
            final_delivery: true
        }
    )
}

/// What an MDN's disposition says (RFC 8098 §3.2.6).
fn said_by_mdn(mdn: &Mdn) -> Said {
    let why = || {
        mdn.failure
            .clone()
            .or_else(|| mdn.error.clone())
            .unwrap_or_else(|| "no reason given".into())
    };
    if mdn
        .disposition
        .modifiers
        .iter()
        .any(|m| m.eq_ignore_ascii_case("error"))
    {
        return Said::Failed(format!("the destination reported an error: {}", why()));
    }
    match &mdn.disposition.kind {
        DispositionType::Processed => Said::Processed,
        DispositionType::Dispatched => Said::Dispatched,
        DispositionType::Failed | DispositionType::Denied => Said::Failed(format!(
            "the destination reported {}: {}",
            mdn.disposition.kind.as_str(),
            why()
        )),
        other => Said::Nothing(format!("disposition {}", other.as_str())),
    }
}

/// Whether a report whose signed sender is `from` may speak for
/// `recipient`: the recipient itself (the Direct way: the MDN comes from
/// the original recipient), or postmaster of its domain (a HISP that
/// reports for its users). Another user of the same domain may not.
fn speaks_for(from: Option<&DirectAddress>, recipient: &DirectAddress) -> bool {
    from.is_some_and(|f| {
        f == recipient
            || (f.domain() == recipient.domain()
                && f.local_part().eq_ignore_ascii_case("postmaster"))
    })
}

/// The tracking moves for what a report said, from the recipient's state.
fn moves(
    recipient: &RecipientRecord,
    said: &Said,
    final_delivery: bool,
) -> Result<Vec<TrackingState>, String> {
    use TrackingState::*;
    let state = recipient.state;
    // Completed by a processed MDN alone (no final delivery asked): a
    // failure report that follows still counts (processed, then failed).
    let by_processed_only = state == Delivered
        && !final_delivery
        && recipient.at(Relayed).is_some()
        && recipient.at(Dispatched).is_none();
    match (said, state) {
        (Said::Nothing(what), _) => Err(format!("{what} does not change tracking")),
        (_, Failed) => Err(format!(
            "late: the recipient had already failed ({})",
            state
        )),
        (Said::Processed, Relayed) if final_delivery => Ok(vec![Processed]),
        (Said::Processed, Relayed) => Ok(vec![Processed, Delivered]),
        (Said::Processed, Queued) => Err("processed MDN before the message was relayed".into()),
        (Said::Processed, _) => Err(format!("duplicate: the recipient is already {state}")),
        (Said::Dispatched, Relayed | Processed) => Ok(vec![Dispatched, Delivered]),
        (Said::Dispatched, Queued) => Err("dispatched MDN before the message was relayed".into()),
        (Said::Dispatched, _) => Err(format!("duplicate: the recipient is already {state}")),
        (Said::Failed(_), Queued | Relayed | Processed) => Ok(vec![Failed]),
        (Said::Failed(_), Delivered) if by_processed_only => Ok(vec![Failed]),
        (Said::Failed(_), _) => Err(format!(
            "the recipient is already {state}; a failure report cannot undo that"
        )),
    }
}

/// Whether `said` is a `processed` MDN that the `dispatched` one overtook
/// (both travel as separate messages and may arrive in either order): the
/// state stays, but the processed step gets its time, so the sender sees
/// every step (Implementation Guide for Delivery Notification in Direct
/// 1.0 §2.2: processed, then dispatched).
fn overtaken(recipient: &RecipientRecord, said: &Said) -> bool {
    *said == Said::Processed
        && recipient.at(TrackingState::Dispatched).is_some()
        && recipient.at(TrackingState::Processed).is_none()
        && recipient.state.went_past(TrackingState::Processed)
}

/// One report's word about one tracked recipient.
struct Claim<'a> {
    /// The report's own queue entry, in this worker's hand.
    held: &'a Held,
    record: MessageRecordId,
    original: &'a MessageId,
    recipient: &'a RecipientRecord,
    final_delivery: bool,
    said: Said,
    kind: &'a str,
}

/// What one report does to one recipient, decided on its current record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Make these moves.
    Steps(Vec<TrackingState>),
    /// A processed MDN the dispatched one overtook: write its time only.
    Overtaken,
    /// Change nothing, for this reason.
    Ignore(String),
}

fn decide(recipient: &RecipientRecord, said: &Said, final_delivery: bool) -> Decision {
    if overtaken(recipient, said) {
        return Decision::Overtaken;
    }
    match moves(recipient, said, final_delivery) {
        Ok(steps) => Decision::Steps(steps),
        Err(why) => Decision::Ignore(why),
    }
}

/// How many times a report is decided afresh when another report about
/// the same recipient moved it between the read and the write (reports are
/// handled side by side).
const DECIDE_ATTEMPTS: usize = 3;

/// Makes the moves of `claim`, all in one transaction, and audits them.
/// The decision is made on the recipient as the store has it at the write:
/// when a concurrent report moved it first, the move is refused and the
/// report is decided again on the fresh record.
async fn apply(worker: &Worker, claim: Claim<'_>, now: OffsetDateTime) -> Result<(), GatewayError> {
    let Claim {
        held,
        record,
        original,
        recipient,
        final_delivery,
        said,
        kind,
    } = claim;
    let note = match &said {
        Said::Failed(why) => Some(why.clone()),
        Said::Processed => Some(format!("processed {kind} received")),
        Said::Dispatched => Some(format!("dispatched {kind} received")),
        Said::Nothing(_) => None,
    };
    let report = StoredReport {
        held: held.clone(),
        record,
        recipient: recipient.id,
        address: recipient.address.clone(),
        original: original.clone(),
        kind: kind.to_string(),
        said,
        final_delivery,
        note,
    };
    let decided = worker
        .ctx
        .store
        .call(move |s| track_in_store(s, &report, now))
        .await?;
    match decided {
        Decision::Ignore(why) => {
            ignore(
                worker,
                record,
                Some(original),
                &format!("{kind} about {}: {why}", recipient.address),
            )
            .await
        }
        Decision::Overtaken => {
            info!(rcpt = %recipient.address, original = %original, "processed MDN after the dispatched one");
            Ok(())
        }
        Decision::Steps(steps) => {
            info!(rcpt = %recipient.address, original = %original, ?steps, "report tracked");
            Ok(())
        }
    }
}

/// A report about one recipient, as [`track_in_store`] applies it.
struct StoredReport {
    /// The report's queue entry: the moves are made only while it is in
    /// the worker's hand.
    held: Held,
    record: MessageRecordId,
    recipient: RecipientId,
    address: DirectAddress,
    original: MessageId,
    kind: String,
    said: Said,
    final_delivery: bool,
    note: Option<String>,
}

/// Decides `report` on the recipient as the store has it now and makes the
/// moves, audited; decided again when another report moved the recipient
/// between the read and the write.
fn track_in_store(
    s: &dyn Store,
    report: &StoredReport,
    now: OffsetDateTime,
) -> Result<Decision, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let fresh = s.recipient(report.recipient)?;
        let decision = decide(&fresh, &report.said, report.final_delivery);
        let done = match &decision {
            Decision::Ignore(_) => return Ok(decision),
            Decision::Overtaken => s
                .note_overtaken_step(report.recipient, TrackingState::Processed, now)
                .map(|_| "processed, after dispatched".to_string()),
            Decision::Steps(steps) => s
                .track_steps_held(
                    &report.held,
                    report.recipient,
                    steps,
                    now,
                    report.note.as_deref(),
                )
                .map(|_| {
                    let names: Vec<&str> = steps.iter().map(|s| s.as_str()).collect();
                    names.join(" -> ")
                }),
        };
        match done {
            Ok(what) => {
                let (kind, original) = (&report.kind, &report.original);
                s.audit(
                    AuditKind::MdnReceived,
                    Some(original),
                    None,
                    &format!("{kind} about {}: {what}", report.address),
                )?;
                s.audit(
                    AuditKind::MdnReceived,
                    None,
                    Some(report.record),
                    &format!("{kind} tracked for <{original}>"),
                )?;
                return Ok(decision);
            }
            Err(e) if e.is_transition() && attempt < DECIDE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Audits a report that changes nothing, about the original message when
/// known and about the report itself.
async fn ignore(
    worker: &Worker,
    record: MessageRecordId,
    original: Option<&MessageId>,
    why: &str,
) -> Result<(), GatewayError> {
    info!(%why, "report ignored");
    let (original, why) = (original.cloned(), why.to_string());
    worker
        .ctx
        .store
        .call(move |s| {
            if let Some(original) = &original {
                s.audit(AuditKind::MdnIgnored, Some(original), None, &why)?;
            }
            s.audit(AuditKind::MdnIgnored, None, Some(record), &why)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hisp_store::{MessageDirection, SqliteStore};
    use TrackingState::*;

    /// A recipient in `state`, relayed unless still queued, with the
    /// dispatched step reached when `dispatched`.
    fn rec(state: TrackingState, dispatched: bool) -> RecipientRecord {
        let at = Some(OffsetDateTime::UNIX_EPOCH);
        let mut reached_at = [None; 6];
        reached_at[0] = at;
        if state != Queued {
            reached_at[1] = at;
        }
        if dispatched {
            reached_at[3] = at;
        }
        RecipientRecord {
            id: RecipientId(1),
            message: MessageRecordId(1),
            message_id: None,
            address: DirectAddress::parse("doc@b.example").unwrap(),
            state,
            reached_at,
            reason: None,
            notified_at: None,
            envelope_from: None,
            direction: MessageDirection::Outbound,
            expect: Expectation::Mail {
                final_delivery: false,
            },
            status: None,
        }
    }

    fn m(
        state: TrackingState,
        said: &Said,
        final_delivery: bool,
    ) -> Result<Vec<TrackingState>, String> {
        moves(&rec(state, false), said, final_delivery)
    }

    #[test]
    fn processed_completes_unless_final_delivery_was_asked() {
        assert_eq!(
            m(Relayed, &Said::Processed, false),
            Ok(vec![Processed, Delivered])
        );
        assert_eq!(m(Relayed, &Said::Processed, true), Ok(vec![Processed]));
        assert_eq!(
            m(Processed, &Said::Dispatched, true),
            Ok(vec![Dispatched, Delivered])
        );
        assert_eq!(
            m(Relayed, &Said::Dispatched, true),
            Ok(vec![Dispatched, Delivered])
        );
    }

    #[test]
    fn duplicates_late_and_meaningless_reports_change_nothing() {
        for (state, said) in [
            (Processed, Said::Processed),
            (Delivered, Said::Processed),
            (Delivered, Said::Dispatched),
            (Failed, Said::Processed),
            (Failed, Said::Dispatched),
            (Failed, Said::Failed("x".into())),
            (Delivered, Said::Failed("x".into())),
            (Relayed, Said::Nothing("disposition displayed".into())),
            (Queued, Said::Processed),
        ] {
            assert!(m(state, &said, true).is_err(), "{state} {said:?}");
        }
        let late = m(Failed, &Said::Processed, true).unwrap_err();
        assert!(late.starts_with("late"), "{late}");
    }

    #[test]
    fn a_processed_mdn_overtaken_by_the_dispatched_one_only_gets_its_time() {
        assert!(overtaken(&rec(Delivered, true), &Said::Processed));
        assert!(!overtaken(&rec(Delivered, false), &Said::Processed));
        assert!(!overtaken(&rec(Relayed, false), &Said::Processed));
        assert!(!overtaken(&rec(Delivered, true), &Said::Dispatched));
        let mut seen = rec(Delivered, true);
        seen.reached_at[2] = Some(OffsetDateTime::UNIX_EPOCH);
        assert!(
            !overtaken(&seen, &Said::Processed),
            "a second processed MDN"
        );
        let mut failed = rec(Failed, true);
        failed.reached_at[5] = Some(OffsetDateTime::UNIX_EPOCH);
        assert!(!overtaken(&failed, &Said::Processed));
    }

    #[test]
    fn failures_fail_an_open_recipient() {
        assert_eq!(
            m(Processed, &Said::Failed("x".into()), true),
            Ok(vec![Failed])
        );
    }

    #[test]
    fn a_failure_after_a_processed_mdn_alone_still_counts() {
        let failed = Said::Failed("mailbox gone".into());
        // No final delivery asked: processed completed it; failed follows.
        assert_eq!(
            moves(&rec(Delivered, false), &failed, false),
            Ok(vec![Failed])
        );
        // Completed by a dispatched MDN, or final delivery asked: it stands.
        assert!(moves(&rec(Delivered, true), &failed, false).is_err());
        assert!(moves(&rec(Delivered, false), &failed, true).is_err());
    }

    #[test]
    fn only_the_recipient_or_its_postmaster_speaks_for_it() {
        let doc = DirectAddress::parse("doc@b.example").unwrap();
        let pm = DirectAddress::parse("Postmaster@b.example").unwrap();
        let nurse = DirectAddress::parse("nurse@b.example").unwrap();
        let eve = DirectAddress::parse("postmaster@c.example").unwrap();
        assert!(speaks_for(Some(&doc), &doc));
        assert!(speaks_for(Some(&pm), &doc));
        assert!(!speaks_for(Some(&nurse), &doc));
        assert!(!speaks_for(Some(&eve), &doc));
        assert!(!speaks_for(None, &doc));
    }

    /// Reports are handled side by side: one decided on a record read
    /// before another report moved the recipient is decided again on the
    /// record the store has (a processed MDN whose dispatched MDN was
    /// tracked first only gets its time; a second dispatched one is a
    /// duplicate), never refused as a store error.
    #[test]
    fn a_report_is_decided_on_the_recipient_as_stored_at_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).unwrap();
        let bob = DirectAddress::parse("bob@b.example").unwrap();
        let message = b"From: alice@a.example\r\nTo: bob@b.example\r\nMessage-ID: <race@a.example>\r\n\r\nhi\r\n";
        let now = OffsetDateTime::now_utc();
        let record = store
            .enqueue(
                MessageDirection::Outbound,
                Some(&DirectAddress::parse("alice@a.example").unwrap()),
                std::slice::from_ref(&bob),
                message,
                now,
            )
            .unwrap();
        let original = MessageId::parse("race@a.example").unwrap();
        let stale = store.tracking(&original).unwrap()[0].clone();
        store.track(stale.id, Relayed, now, None).unwrap();
        // The dispatched report wins the race to the store.
        store
            .track_steps(stale.id, &[Dispatched, Delivered], now, None)
            .unwrap();
        let held = store
            .claim_due(now, std::time::Duration::from_secs(60), 1)
            .unwrap()[0]
            .held();
        let report = |said: Said| StoredReport {
            held: held.clone(),
            record,
            recipient: stale.id,
            address: bob.clone(),
            original: original.clone(),
            kind: "MDN".into(),
            said,
            final_delivery: true,
            note: None,
        };
        assert_eq!(
            decide(&rec(Relayed, false), &Said::Processed, true),
            Decision::Steps(vec![Processed]),
            "what the stale record alone would decide"
        );
        let later = OffsetDateTime::from_unix_timestamp(now.unix_timestamp() + 1).unwrap();
        let decided = track_in_store(&store, &report(Said::Processed), later).unwrap();
        assert_eq!(decided, Decision::Overtaken);
        let after = store.recipient(stale.id).unwrap();
        assert_eq!(after.state, Delivered);
        assert_eq!(after.at(Processed), Some(later));
        let again = track_in_store(&store, &report(Said::Dispatched), later).unwrap();
        assert!(
            matches!(again, Decision::Ignore(ref why) if why.contains("duplicate")),
            "{again:?}"
        );
    }
}
