#!/usr/bin/env bash
# Runs the ring's tests under miri with strict provenance and weak-memory emulation: the
# library's unit tests and its integration tests (`ring/tests/abi_c.rs` needs a C compiler and is off under miri).
# Under miri the local backend lays the rings over heap memory and the tests scale their
# workloads down (`common::scaled`, `cfg!(miri)`).
#
#   loom-tests/miri.sh             # lib + integration tests
#   loom-tests/miri.sh --lib       # any `cargo test` selection instead
set -eu
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup +nightly component add miri rust-src
fi
# Isolation off: `kernel::available()` stats the device node, which isolation refuses.
# Weak-memory emulation stays on (miri's default), so stale reads the orderings allow are
# explored too.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance -Zmiri-disable-isolation}"

if [ "$#" -gt 0 ]; then
    exec cargo +nightly miri test -p sbpf-ring "$@"
fi
cargo +nightly miri test -p sbpf-ring --tests
