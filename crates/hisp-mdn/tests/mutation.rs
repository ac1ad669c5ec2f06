//! Parsing is total: mutated reports (byte flips, truncation, insertions, duplicated and
//! dropped lines) give a value or a typed error, never a panic. A fixed seed keeps the
//! run reproducible; the failing seed and iteration are printed on a panic.

use hisp_mdn::{parse_dsn, parse_mdn, parse_report, report_kind, requested};

/// xorshift64*: enough randomness for mutations, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to the parsers, so mutations hit interesting paths.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b":",
    b";",
    b"/",
    b",",
    b"(",
    b")",
    b"\\",
    b"\"",
    b"<",
    b">",
    b"=",
    b"--",
    b" ",
    b"\t",
    b"\xff",
    b"\xc3",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n",
    b"Content-Type: message/disposition-notification\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Final-Recipient: rfc822;",
    b"Disposition: automatic-action/MDN-sent-automatically; processed",
    b"Action: failed\r\nStatus: 5.1.1\r\n",
    b"Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=",
    b"=?UTF-8?B?",
    b"((((((((((",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 => {
                // Flip a byte.
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                // Truncate.
                let n = rng.below(data.len() + 1);
                data.truncate(n);
            }
            2 => {
                // Insert an interesting token.
                let at = rng.below(data.len() + 1);
                let token = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 | 4 => {
                // Duplicate or drop a line.
                let lines: Vec<&[u8]> = data.split_inclusive(|b| *b == b'\n').collect();
                if lines.is_empty() {
                    continue;
                }
                let i = rng.below(lines.len());
                let mut out = Vec::with_capacity(data.len() + 128);
                for (j, l) in lines.iter().enumerate() {
                    if j == i && rng.below(2) == 0 {
                        continue;
                    }
                    out.extend_from_slice(l);
                    if j == i {
                        out.extend_from_slice(l);
                    }
                }
                data = out;
            }
            5 => {
                // Replace a random byte with a random one.
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
            _ => {
                // Repeat a slice, to grow input the way a hostile peer would.
                if !data.is_empty() {
                    let a = rng.below(data.len());
                    let b = (a + rng.below(64)).min(data.len());
                    let piece = data[a..b].to_vec();
                    for _ in 0..rng.below(8) {
                        data.splice(b..b, piece.iter().copied());
                    }
                }
            }
        }
    }
    data
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("fixture"))
        .collect();
    out.sort();
    assert!(out.len() >= 8);
    out
}

#[test]
fn mutated_reports_never_panic() {
    let seeds = fixtures();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let iterations = 6000;
    for i in 0..iterations {
        let base = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, base);
        let outcome = std::panic::catch_unwind(|| {
            let _ = parse_report(&input);
            let _ = parse_mdn(&input);
            let _ = parse_dsn(&input);
            let _ = report_kind(&input);
            let _ = requested(&input);
        });
        if outcome.is_err() {
            panic!(
                "iteration {i}: parser panicked on input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn pathological_inputs_are_linear() {
    // Deep comment nesting, many folded lines, many blocks, long lines: each must finish
    // quickly (the whole test runs in well under a second when the readers are linear).
    let inputs: Vec<Vec<u8>> = vec![
        [
            &b"Content-Type: message/disposition-notification\r\n\r\nDisposition: "[..],
            &b"(".repeat(200_000),
            b"\r\n",
        ]
        .concat(),
        [
            &b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n"[..],
            &b"\r\nFinal-Recipient: rfc822;a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n"
                .repeat(20_000),
        ]
        .concat(),
        [
            &b"Content-Type: message/delivery-status\r\n\r\nDiagnostic-Code: x\r\n"[..],
            &b" folded\r\n".repeat(50_000),
        ]
        .concat(),
        [
            &b"Disposition-Notification-Options: "[..],
            &b"X-DIRECT-FINAL-DESTINATION-DELIVERY;".repeat(20_000),
        ]
        .concat(),
        b"Content-Type: multipart/report; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n"
            .repeat(2_000),
    ];
    let start = std::time::Instant::now();
    for input in &inputs {
        let _ = parse_report(input);
        let _ = report_kind(input);
        let _ = requested(input);
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}
