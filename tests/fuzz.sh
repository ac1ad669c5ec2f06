#!/usr/bin/env bash
# Coverage-guided fuzzing of hisp_smime::open with cargo-fuzz (libFuzzer).
# Needs a nightly toolchain; installs cargo-fuzz when missing.
# Usage: tests/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/open
# Seed the corpus with the openssl-made vectors.
cp tests/vectors/*.eml fuzz/corpus/open/ 2>/dev/null || true
cd fuzz
cargo +nightly fuzz run open corpus/open -- -max_total_time="$seconds" -max_len=65536
