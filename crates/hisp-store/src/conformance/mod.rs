//! The conformance suite of the [`Store`] trait: what every backend must do,
//! written against the trait alone and run against each backend.
//!
//! A backend joins with a harness and one line. The harness implements
//! [`Backend`]: a fresh, empty database per test, stores opened on it (each
//! one another connection, as another process would have), the database
//! named for a child process ([`Backend::location`], [`Backend::at`]), and
//! the few looks beneath the trait the suite needs to see what no trait
//! call shows ([`Backend::count`], [`Backend::message_bytes`],
//! [`Backend::password_hashes`]). The line is
//! `crate::conformance::suite!(TheHarness);` inside a test module of its
//! own, which becomes one module per part of the suite with one `#[test]`
//! per case, named `<that module>::<part>::<case>`: SQLite's run as
//! `sqlite::tests::conformance::queue::claims_are_exclusive_across_connections`.
//!
//! Each case is a `pub(crate) fn <case><B: Backend>(db: &B)` in one of the
//! part modules below, and listed in [`suite!`]; a case written but not
//! listed fails `every_case_of_the_suite_is_listed` of every backend.
//! Inside a case, stores come from [`Backend::open`] and are used through
//! the trait only (`B::Handle` is opaque there).

pub(crate) mod audit_chain;
pub(crate) mod connections;
pub(crate) mod directory;
pub(crate) mod engine;
pub(crate) mod filing;
pub(crate) mod mailbox;
pub(crate) mod mailbox_view;
pub(crate) mod once;
pub(crate) mod portal_notice;
pub(crate) mod portal_user;
pub(crate) mod queue;
pub(crate) mod tracking;
pub(crate) mod trust;
pub(crate) mod users;

use std::cell::Cell;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use hisp_ca::{issue, Binding, CaOptions, CertificateAuthority, IssueOptions};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

use crate::{DirectAddress, Domain, MessageRecordId, NewAnchor, NewCertificate, Store};

/// A backend under test: the databases the suite's cases run against.
///
/// One value is one database, fresh and empty for one case, and gone when
/// the value is dropped.
pub(crate) trait Backend: Send + Sync + Sized + 'static {
    /// The backend's store.
    type Handle: Store + 'static;

    /// A new, empty database.
    fn fresh() -> Self;

    /// A store on this database. Every call opens another connection, as
    /// another process (the CLI beside `hisp serve`) would; a store dropped
    /// and opened again sees what was committed before.
    fn open(&self) -> Self::Handle;

    /// Text naming this database, from which [`Backend::at`] makes a
    /// harness on it in another process.
    fn location(&self) -> String;

    /// A harness on the database `location` names, which it leaves in
    /// place when dropped: a case run again in a child process works on
    /// its parent's database.
    fn at(location: &str) -> Self;

    /// How many `rows` the database holds, read beneath the trait.
    fn count(&self, rows: Rows) -> u64;

    /// The bytes stored for a queued message record, read beneath the
    /// trait (without claiming it).
    fn message_bytes(&self, message: MessageRecordId) -> Vec<u8>;

    /// The stored password hashes of every account of one kind, as stored.
    fn password_hashes(&self, accounts: Accounts) -> Vec<String>;
}

/// Rows the suite counts beneath the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Message records (queued mail, the bytes once).
    Messages,
    /// Queue entries.
    Queue,
    /// Recipients of message records, with their tracking.
    Recipients,
    /// Mailbox entries, of every folder and owner.
    Mailbox,
    /// Audit events.
    AuditEvents,
    /// Quarantine entries that hold their own copy of the bytes (rather than
    /// referring to the queue's).
    QuarantineCopies,
}

/// Which accounts' password hashes [`Backend::password_hashes`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accounts {
    /// Submission accounts (`add_user`).
    Submission,
    /// Portal accounts (`add_portal_user`).
    Portal,
}

thread_local! {
    /// The harness's name of the case running on this thread.
    static CASE: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Set, to the parent's [`Backend::location`], only for a case run again
/// in a child process ([`spawn_child`]).
const CHILD_DATABASE: &str = "HISP_STORE_CONFORMANCE_DATABASE";

/// Runs one case against a fresh database of `B` (in a child process, the
/// parent's database); `path` is the generated test's `module_path!()` and
/// name.
pub(crate) fn run<B: Backend>(path: &'static str, case: fn(&B)) {
    // The harness names a test by its path without the crate's name.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    CASE.with(|c| c.set(Some(name)));
    let db = match std::env::var(CHILD_DATABASE) {
        Ok(location) => B::at(&location),
        Err(_) => B::fresh(),
    };
    case(&db);
}

/// Whether this process is a child that [`spawn_child`] started.
pub(crate) fn in_child() -> bool {
    std::env::var_os(CHILD_DATABASE).is_some()
}

/// Starts the running case again, alone, in a child process (the test
/// binary) working on `db`, with its stdout piped.
pub(crate) fn spawn_child<B: Backend>(db: &B) -> Child {
    let case = CASE
        .with(Cell::get)
        .expect("a conformance case runs through conformance::run");
    Command::new(std::env::current_exe().unwrap())
        .args([case, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DATABASE, db.location())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The parts of the suite with their cases, as [`suite!`] lists them, and
/// the source of each part.
const PARTS: &[(&str, &str)] = &[
    ("audit_chain", include_str!("audit_chain.rs")),
    ("connections", include_str!("connections.rs")),
    ("directory", include_str!("directory.rs")),
    ("engine", include_str!("engine.rs")),
    ("filing", include_str!("filing.rs")),
    ("mailbox", include_str!("mailbox.rs")),
    ("mailbox_view", include_str!("mailbox_view.rs")),
    ("once", include_str!("once.rs")),
    ("portal_notice", include_str!("portal_notice.rs")),
    ("portal_user", include_str!("portal_user.rs")),
    ("queue", include_str!("queue.rs")),
    ("tracking", include_str!("tracking.rs")),
    ("trust", include_str!("trust.rs")),
    ("users", include_str!("users.rs")),
];

/// Checks that `listed` (every `part::case` a [`suite!`] instance runs) is
/// exactly the cases written in the part modules (a case listed twice does
/// not compile): each
/// `pub(crate) fn <case><B: Backend>(db: &B) {` (however rustfmt wraps it;
/// the parameter may be `_`).
pub(crate) fn check_listed(listed: &[&str]) {
    let written: Vec<String> = PARTS
        .iter()
        .flat_map(|(part, source)| {
            source
                .split("\npub(crate) fn ")
                .skip(1)
                .filter_map(move |item| {
                    let (signature, _) = item.split_once('{')?;
                    let signature: String = signature.split_whitespace().collect();
                    let signature = signature.replace(",>", ">").replace(",)", ")");
                    let (case, parameter) = signature.split_once("<B:Backend>(")?;
                    let name = parameter.strip_suffix(":&B)")?;
                    name.chars()
                        .all(|c| c == '_' || c.is_ascii_alphanumeric())
                        .then(|| format!("{part}::{case}"))
                })
        })
        .collect();
    let listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    let unlisted: Vec<&String> = written.iter().filter(|c| !listed.contains(c)).collect();
    let unwritten: Vec<&String> = listed.iter().filter(|c| !written.contains(c)).collect();
    assert!(
        unlisted.is_empty() && unwritten.is_empty(),
        "suite! must list every case: not listed {unlisted:?}, listed but not written {unwritten:?}"
    );
}

/// Instantiates the whole conformance suite for a backend: `suite!(H)`
/// with `H` a path to the backend's [`Backend`] harness. Put it in a module
/// of its own; the tests are `<that module>::<part>::<case>`.
macro_rules! suite {
    ($backend:ty) => {
        /// The backend this instance of the suite runs against.
        type SuiteBackend = $backend;

        $crate::conformance::suite!(@parts
            audit_chain: [
                the_chain_of_a_store_after_real_activity_verifies,
                export_selects_by_the_address_an_event_concerns,
            ],
            connections: [
                data_survives_reopening,
                the_store_is_shareable_between_threads_as_a_trait_object,
                two_processes_writing_at_once_both_succeed,
            ],
            directory: [
                domains_are_added_listed_and_removed,
                a_domain_differing_only_in_case_is_a_duplicate,
                an_address_differing_only_in_local_part_case_is_a_duplicate,
                an_address_needs_a_local_domain,
                a_domain_with_addresses_cannot_be_removed,
                removing_a_domain_removes_its_anchors_bundles_and_domain_certificates,
                address_certificates_keep_their_key_and_are_removed_with_the_address,
                a_certificate_bound_to_another_address_is_refused_applicability_statement_4_1,
                the_binding_compares_the_local_part_without_case,
                a_failed_certificate_leaves_no_address_behind,
            ],
            engine: [
                a_claim_takes_no_more_than_the_cap_of_one_destination_and_goes_on_to_others,
                an_entry_counts_against_every_destination_of_its_recipients_still_queued,
                inbound_entries_have_no_destination_and_no_cap,
                a_renewed_lease_keeps_the_entry_from_other_claims_and_a_lost_one_is_refused,
                a_tracking_move_by_a_worker_whose_entry_was_taken_over_is_refused_and_moves_nothing_issue_14,
                a_released_entry_is_due_again_at_once_and_audited,
                retry_now_makes_pending_entries_due_and_refuses_finished_or_unknown_ones,
                the_bell_rings_after_a_commit_that_queued_and_not_otherwise,
                changes_by_another_connection_are_seen_and_own_changes_are_not,
                the_queue_keeps_when_an_entry_was_queued_and_claimed_to_the_millisecond,
                a_message_sent_again_is_not_filed_twice_but_answered_again_rfc_5322_3_6_4,
                quarantine_and_the_tracking_of_its_recipients_move_in_one_transaction,
            ],
            filing: [
                a_filed_message_is_in_the_inbox_delivered_and_answered_with_the_filed_mdns,
                a_removed_address_fails_the_recipient_and_is_answered_with_the_missing_mdns,
                filing_a_delivered_recipient_again_is_already_done_and_writes_nothing,
                filing_a_failed_recipient_again_is_already_done_even_once_the_address_is_back,
                a_recipient_that_may_not_be_delivered_is_refused_after_the_inbox_write_and_keeps_nothing,
                an_unknown_recipient_is_not_found_and_writes_nothing,
            ],
            mailbox: [
                a_delivered_message_is_listed_unread_with_its_header_summary,
                mark_read_clears_unread_once,
                disregard_moves_and_deletes_nothing,
                mail_goes_only_to_local_addresses_and_not_straight_to_disregarded,
                mail_outlives_the_removal_of_its_address,
                quarantine_keeps_the_message_the_reason_and_the_envelope,
                quarantining_a_queued_message_refers_to_it_without_a_copy,
                a_copy_is_filed_once_per_folder_by_its_message_id_even_once_moved,
            ],
            mailbox_view: [
                new_mail_is_unread_sent_copies_are_read_and_counts_follow_reading,
                another_mailboxs_entry_is_not_found_by_every_call,
                disregard_and_restore_move_an_entry_out_and_back_audited,
                entries_leave_every_view_retention_days_after_arrival_and_stay_in_the_store,
                correspondents_are_who_wrote_to_the_owner_newest_first_with_names,
                a_refused_delete_is_audited_for_the_owner_and_leaves_the_entry_as_it_was,
            ],
            once: [
                a_message_is_queued_once_under_its_mark_and_again_under_another,
                the_mark_outlives_the_store_being_opened_again,
                a_refused_enqueue_leaves_no_mark,
                an_empty_mark_is_refused,
            ],
            portal_notice: [
                an_opted_in_portal_user_gets_one_notice_queued_with_the_filing,
                no_notice_without_a_portal_account_an_address_notices_on_or_an_enabled_account,
                filing_without_a_notice_queues_none_even_for_an_opted_in_user,
            ],
            portal_user: [
                a_portal_account_belongs_to_an_existing_local_address,
                portal_passwords_are_stored_as_argon2id_hashes_only,
                a_portal_login_needs_the_right_password_of_an_enabled_account_and_is_audited,
                a_new_portal_password_replaces_the_old_one,
                notify_settings_read_back_and_each_change_is_audited_once,
                removing_an_address_removes_its_portal_account,
            ],
            queue: [
                enqueue_commits_the_message_its_recipients_and_an_audit_event,
                a_failed_enqueue_leaves_nothing_behind,
                a_committed_message_survives_closing_the_store,
                a_message_is_not_due_before_its_time,
                a_claimed_item_is_invisible_until_its_lease_expires,
                released_leases_make_a_dead_workers_items_claimable_at_once,
                claims_are_exclusive_across_connections,
                retry_later_releases_the_item_until_its_next_attempt,
                fail_gives_up_and_fails_the_recipients_not_yet_done,
                tracking_follows_the_notification_guide_and_refuses_impossible_moves,
                audit_events_written_by_the_gateway_find_the_message_id,
                an_enqueued_message_survives_kill_9,
            ],
            tracking: [
                the_expectation_and_subject_come_back_through_claim_status_and_tracking,
                overdue_lists_mail_waiting_for_mdns_relayed_before_the_cut_oldest_first,
                a_failed_recipient_gets_exactly_one_notice_filed_in_the_senders_inbox,
                a_notice_naming_any_recipient_already_notified_files_nothing,
                a_notice_about_unknown_or_unfailed_recipients_is_refused_and_writes_nothing,
                listings_are_newest_first_and_keep_every_recipient_of_a_matching_message,
                a_duplicate_move_is_refused_and_not_audited,
                the_end_of_the_lifetime_fails_only_recipients_not_yet_relayed,
                several_steps_are_made_together_or_not_at_all,
                a_processed_step_overtaken_by_dispatched_gets_its_time_and_the_state_stays,
                a_failure_keeps_its_rfc3463_status_for_the_dsn,
            ],
            trust: [
                anchors_are_unique_per_domain_by_fingerprint,
                anchors_for_a_flow_are_those_marked_for_it_or_both,
                anchors_are_removed_by_fingerprint_or_serial,
                a_serial_shared_by_two_anchors_is_ambiguous,
                an_anchor_removed_through_one_connection_is_gone_for_another_at_once,
                anchor_info_round_trips,
                bundles_are_unique_per_domain_and_source,
                a_failed_fetch_keeps_the_last_good_bundle,
                directory_version_moves_with_keys_and_anchors_of_any_process,
            ],
            users: [
                a_new_account_verifies_its_password_and_requests_final_delivery,
                the_stored_hash_is_argon2id_and_never_the_password,
                a_wrong_password_and_an_unknown_user_fail_alike,
                a_user_name_is_added_once_and_short_passwords_are_refused,
                grants_name_local_addresses_or_whole_local_domains,
                removing_an_address_takes_its_grants_with_it,
                final_delivery_can_be_turned_off_per_account,
            ],
        );
    };
    (@parts $($part:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $part {
                $(
                    #[test]
                    fn $case() {
                        $crate::conformance::run::<super::SuiteBackend>(
                            concat!(module_path!(), "::", stringify!($case)),
                            $crate::conformance::$part::$case::<super::SuiteBackend>,
                        );
                    }
                )*
            }
        )*

        #[test]
        fn every_case_of_the_suite_is_listed() {
            $crate::conformance::check_listed(&[
                $($(concat!(stringify!($part), "::", stringify!($case)),)*)*
            ]);
        }
    };
}
pub(crate) use suite;

/// The CA that issues the suite's certificates, made once per test binary.
pub(crate) fn ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(|| {
        CertificateAuthority::create("store test root", &CaOptions::default()).unwrap()
    })
}

pub(crate) fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

pub(crate) fn addr(text: &str) -> DirectAddress {
    DirectAddress::parse(text).unwrap()
}

/// An issued certificate with its key, as the store takes it.
pub(crate) fn issued(binding: Binding, with_key: bool) -> NewCertificate {
    let issued = issue(ca(), &binding, &IssueOptions::default()).unwrap();
    let der = issued.cert.to_der().unwrap();
    let key = issued.key_pem().unwrap();
    NewCertificate::new(&der, with_key.then_some(key.as_slice())).unwrap()
}

/// A self-signed CA certificate with a chosen serial, for anchors.
pub(crate) fn anchor_cert(cn: &str, serial: u32) -> NewAnchor {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    NewAnchor::from_der(&b.build().to_der().unwrap()).unwrap()
}

/// The suite CA's own certificate as an anchor.
pub(crate) fn ca_anchor() -> NewAnchor {
    NewAnchor::from_der(&ca().cert().to_der().unwrap()).unwrap()
}
