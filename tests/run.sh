#!/usr/bin/env bash
# The whole test suite of hisp, from a fresh Debian machine:
#   1. installs what the tests need (as root, with apt-get),
#   2. checks formatting and lints (cargo fmt, clippy -D warnings),
#   3. runs every test of the workspace.
# Benchmarks and fuzzing are separate commands (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: openssl is the independent S/MIME peer of the tests;
# libssl-dev and pkg-config build the openssl crate; bind9 (named, dig) and
# slapd/ldap-utils are the real DNS and LDAP servers of the discovery tests;
# postfix (with libsasl2-modules for its SASL client) is the portal's relay and
# the silent peer (smtp-sink) of the gateway tests; swaks is the SMTP client.
packages=(openssl libssl-dev pkg-config ca-certificates bind9 bind9-utils bind9-dnsutils slapd ldap-utils swaks libnet-ssleay-perl postfix libsasl2-modules)
# sqlite3: the administrator who reads the database while `hisp demo` runs,
# and who edits a store by hand in the audit chain test.
packages+=(sqlite3)
# tidy (HTML Tidy 5) validates the portal's pages; chromium and
# chromium-driver are the real browser the portal's web test drives.
packages+=(tidy chromium chromium-driver)
# postgresql: the server binaries (initdb, postgres) of the store's PostgreSQL
# tests, which start their own throwaway server (crates/hisp-testpg).
packages+=(postgresql)
# time (GNU time): the peak memory of `hisp store copy` moving 25 MiB messages.
packages+=(time)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing test dependencies: ${packages[*]}"
    apt-get update -q
    # The tests start their own Postfix instances; the system one stays unconfigured.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
else
    for p in "${packages[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || { echo "missing Debian package $p: run as root to install it" >&2; exit 1; }
    done
fi
if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
