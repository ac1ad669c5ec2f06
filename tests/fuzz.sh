#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer). Targets (fuzz/fuzz_targets/):
#   open    hisp_smime::open on arbitrary bytes (seeded with tests/vectors/)
#   seal    hisp_smime::seal on arbitrary messages
#   report  hisp_mdn::parse_report, report_kind and requested (seeded with the
#           MDN and DSN fixtures of crates/hisp-mdn/tests/fixtures/)
#   smtp_session  hisp_smtp::fuzzing::run: the server side of a whole SMTP session
#           (submission or backbone, by the first byte) over arbitrary client bytes, no
#           sockets or TLS (seeded with crates/hisp-smtp/tests/dialogues/, written
#           into the corpus by the fuzz_session test)
# Needs a nightly toolchain; installs cargo-fuzz when missing.
# Usage: tests/fuzz.sh [SECONDS] [TARGET]   (defaults: 60, open; or FUZZ_TARGET=report)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
target="${2:-${FUZZ_TARGET:-open}}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "fuzz/corpus/$target"
case "$target" in
    open) cp tests/vectors/*.eml fuzz/corpus/open/ 2>/dev/null || true ;;
    report) cp crates/hisp-mdn/tests/fixtures/* fuzz/corpus/report/ 2>/dev/null || true ;;
    smtp_session) HISP_SMTP_FUZZ_SEEDS="$PWD/fuzz/corpus/smtp_session" \
        cargo test -q -p hisp-smtp --test fuzz_session dialogue_inputs >/dev/null ;;
esac
cd fuzz
cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536
