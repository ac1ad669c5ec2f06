//! The fuzzing entry point (`hisp_smtp::fuzzing`, also driven by
//! `fuzz/fuzz_targets/smtp_session.rs`) run on stable: over what the dialogue files of
//! `tests/dialogues/` send, and over seeded random mutations of it. Whatever the client
//! sends, a session must end with well-formed replies, never a panic or a hang.
//!
//! `HISP_SMTP_FUZZ_SEEDS=<dir>` makes `dialogue_inputs_through_the_permissive_policy`
//! write each dialogue's input there, as a seed corpus for the fuzz target.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use hisp_smtp::fuzzing::{self, Setup};
use hisp_smtp::Role;

/// What one dialogue file sends, as fuzzer input (setup byte first).
struct Input {
    name: String,
    setup: Setup,
    bytes: Vec<u8>,
}

impl Input {
    /// The fuzzer input: the setup byte, then the client's bytes.
    fn encoded(&self) -> Vec<u8> {
        let mut out = vec![self.setup.to_byte()];
        out.extend_from_slice(&self.bytes);
        out
    }
}

fn dialogue_inputs() -> Vec<Input> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let mut setup = Setup {
                role: Role::Submission,
                loopback: true,
                stall: false,
                chunk: 0,
            };
            let mut bytes = Vec::new();
            for line in text.lines() {
                if line == "@role backbone" {
                    setup.role = Role::Backbone;
                } else if line == "@no-loopback-auth" {
                    // Without loopback the fuzzing server offers no AUTH in clear text,
                    // as the dialogue's server does with the setting off.
                    setup.loopback = false;
                } else if let Some(c) = line.strip_prefix("C:") {
                    bytes.extend_from_slice(
                        common::expand(c.strip_prefix(' ').unwrap_or(c)).as_bytes(),
                    );
                    bytes.extend_from_slice(b"\r\n");
                }
            }
            Input {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                setup,
                bytes,
            }
        })
        .collect()
}

/// Messages the permissive policy takes from each dialogue's input: one per dialogue that
/// sends a complete message. Where a dialogue's DATA follows a refusal by the test policy
/// (no valid recipient), the permissive server answers 354 and the input ends inside the
/// message text, so nothing is taken; its size limit (4096) is not the dialogues' own, so
/// the oversize dialogue's two 32-octet lines are taken.
const EXPECTED_MESSAGES: &[(&str, usize)] = &[
    ("backbone_relay_refused_is_550_5_7_1", 1),
    ("dot_stuffing_round_trip_rfc5321_4_5_2", 1),
    ("line_length_limits_rfc5321_4_5_3_1", 0),
    ("max_recipients_is_452_4_5_3", 0),
    ("oversize_is_552_5_3_4_rfc1870", 1),
    ("pipelined_mail_rcpt_data_rfc2920", 1),
    ("rset_clears_transaction", 0),
    ("sequence_and_misc_commands", 0),
    ("submission_auth_bad_password_is_535_5_7_8", 0),
    ("submission_auth_in_clear_not_offered_is_538", 0),
    ("submission_auth_login", 0),
    ("submission_auth_plain_over_loopback", 1),
    ("submission_auth_plain_with_challenge", 0),
    ("submission_mail_without_auth_is_530_rfc4954_6", 0),
    ("submission_rcpt_refusals_from_discovery", 0),
    ("submission_sender_not_owned_is_550_5_7_1", 0),
];

#[test]
fn dialogue_inputs_through_the_permissive_policy() {
    let inputs = dialogue_inputs();
    let seeds = std::env::var_os("HISP_SMTP_FUZZ_SEEDS");
    if let Some(dir) = &seeds {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut failures = Vec::new();
    for input in &inputs {
        if let Some(dir) = &seeds {
            std::fs::write(Path::new(dir).join(&input.name), input.encoded()).unwrap();
        }
        let Some(&(_, expected)) = EXPECTED_MESSAGES.iter().find(|(n, _)| *n == input.name) else {
            failures.push(format!("{}: add it to EXPECTED_MESSAGES", input.name));
            continue;
        };
        let outcome = fuzzing::run(&input.encoded());
        if let Err(e) = outcome.check() {
            failures.push(format!("{}: {e}", input.name));
        }
        if outcome.messages.len() != expected {
            failures.push(format!(
                "{}: {} messages taken, expected {expected}\n{}",
                input.name,
                outcome.messages.len(),
                String::from_utf8_lossy(&outcome.replies)
            ));
        }
    }
    assert_eq!(
        inputs.len(),
        EXPECTED_MESSAGES.len(),
        "a dialogue file was removed"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// RFC 5321 §2.3.8 and RFC 2920 §3.2: how the client's bytes are split across reads
/// must not change what the server replies or which messages it takes.
#[test]
fn read_boundaries_do_not_change_the_session() {
    for input in dialogue_inputs() {
        let whole = fuzzing::session(input.setup, &input.bytes);
        for chunk in [1, 2, 3, 5, 7, 13, 31] {
            let split = fuzzing::session(
                Setup {
                    chunk,
                    ..input.setup
                },
                &input.bytes,
            );
            assert_eq!(
                String::from_utf8_lossy(&split.replies),
                String::from_utf8_lossy(&whole.replies),
                "{} read {chunk} bytes at a time",
                input.name
            );
            assert_eq!(split.messages.len(), whole.messages.len(), "{}", input.name);
        }
    }
}

/// A small deterministic generator, so the randomised test needs no crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes and pieces that matter to the SMTP parser and the DATA reader.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b".\r\n",
    b"\r\n.\r\n",
    b"..",
    b" ",
    b":",
    b"<",
    b">",
    b"<>",
    b"@",
    b"=",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"*",
    b"AUTH LOGIN\r\n",
    b"AUTH PLAIN\r\n",
    b"DATA\r\n",
    b"BDAT 10 LAST\r\n",
    b"STARTTLS\r\n",
    b"RSET\r\n",
    b" SIZE=99999999999",
    b" BODY=8BITMIME",
    b" SMTPUTF8",
    b"AGFsaWNlAHNlY3JldA==",
];

fn mutate(rng: &mut XorShift, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, piece.iter().copied());
            }
            2 => {
                let end = (at + rng.below(32)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(64)).min(v.len());
                let copy = v[at..end].to_vec();
                v.splice(
                    at..at,
                    copy.into_iter()
                        .cycle()
                        .take((end - at) * (1 + rng.below(4))),
                );
            }
            4 => {
                let from = rng.below(other.len());
                let end = (from + rng.below(200)).min(other.len());
                v.splice(at..at, other[from..end].iter().copied());
            }
            5 => v.truncate(at),
            _ => {
                if let Some(first) = v.first_mut() {
                    *first = rng.next() as u8;
                }
            }
        }
    }
    v
}

/// Seeded random mutations of the dialogue inputs: every session ends, with well-formed
/// replies, and the whole run stays within a bound (a hang or a quadratic path fails it).
#[test]
fn random_mutations_of_dialogues_end_with_well_formed_replies() {
    let inputs: Vec<Vec<u8>> = dialogue_inputs().iter().map(Input::encoded).collect();
    let mut rng = XorShift(0x0053_4553_5349_4f4e);
    let started = Instant::now();
    let mut taken = 0;
    let mut timed_out = 0;
    for round in 0..4000 {
        let base = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, base, other);
        let outcome = fuzzing::run(&input);
        if let Err(e) = outcome.check() {
            panic!(
                "round {round}: {e}\n--- input ---\n{}\n--- replies ---\n{}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&outcome.replies)
            );
        }
        taken += outcome.messages.len();
        if outcome
            .replies
            .ends_with(b"421 4.4.2 Timeout waiting for command, closing connection\r\n")
        {
            timed_out += 1;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "4000 sessions took {elapsed:?}"
    );
    // Mutations leave most transactions intact, so the permissive policy takes messages;
    // none would mean the inputs never reach DATA and the test exercises nothing there.
    assert!(taken > 100, "only {taken} messages taken in 4000 sessions");
    // A mutated first byte makes some clients stall, so the timeout path runs too.
    assert!(timed_out > 100, "only {timed_out} sessions timed out");
}
