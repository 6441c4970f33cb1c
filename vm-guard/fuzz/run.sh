#!/usr/bin/env bash
# Fuzz the guard verifier for a bounded time: run.sh [SECONDS] (default 60).
# Installs cargo-fuzz if it is missing; needs the nightly toolchain.
set -euo pipefail
secs="${1:-60}"
cd "$(dirname "$0")"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
mkdir -p corpus/verify
exec cargo +nightly fuzz run verify corpus/verify -- -max_total_time="$secs" -rss_limit_mb=2048
