#!/usr/bin/env bash
# The full test run: what the README's test command and CI execute.
#
#   scripts/test.sh [--quick]
#
# Installs what it needs on a fresh Debian 12 machine (apt packages, rustup components and
# targets), then runs, in order: format, lint and doc checks; the workspace tests (unit,
# property, stress, C ABI and validator differential, guard corpora and conformance); miri
# on the ring crate; the loom models and their weakened variants; a bounded fuzz run of the
# guard verifier; and the kernel module's suite inside Debian's 6.1 and 6.12 kernels under
# QEMU, including the ring suite on the kernel backend. --quick runs only the checks and the workspace tests.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
quick=0
[ "${1:-}" = "--quick" ] && quick=1

step() { printf '\n=== %s ===\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "install"
# The bpf-conformance vectors are read in place, not copied into this tree (see their
# README); no package registry carries them, so they must already be on the machine.
conformance=${SBPF_CONFORMANCE_DIR:-$repo/../shared/bpf-conformance}
if [ ! -f "$conformance/add.data" ]; then
	echo "test.sh: the bpf-conformance vectors are not at $conformance." >&2
	echo "  Keep this checkout next to the project's shared/ folder, or set" >&2
	echo "  SBPF_CONFORMANCE_DIR to a copy of bpf_conformance's tests/ directory." >&2
	exit 1
fi
export SBPF_CONFORMANCE_DIR=$conformance
need=()
for p in build-essential clang llvm qemu-system-x86 busybox-static cpio zstd; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-unknown-linux-musl >/dev/null

step "format, lints, docs"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "workspace tests"
cargo test --workspace --release

if [ $quick = 0 ]; then
	step "miri (ring crate)"
	bash loom-tests/miri.sh
fi

if [ $quick = 0 ]; then
	step "loom models"
	bash loom-tests/run.sh
fi

if [ $quick = 0 ]; then
	step "guard verifier fuzzing (bounded)"
	bash vm-guard/fuzz/run.sh 60

	step "kernel module in QEMU (Debian 6.1 and 6.12)"
	# The ring suite, built static for the guest, runs there on the kernel backend.
	bins=$(cargo test -p sbpf-ring -p sbpf-ring-cli --release --target x86_64-unknown-linux-musl --features sbpf-ring/tokio \
		--test ring --test props --test lifecycle --test dispatch --test dispatch_async --test demo --test objects --test bpf_maps --no-run --message-format=json 2>/dev/null |
		grep -o '"executable":"[^"]*/deps/[^"]*"' | sed 's/"executable":"\(.*\)"/\1/')
	VMTEST_RUST_BINS="$bins" bash kmod/vmtest/run.sh --kernel all
fi

step "all tests passed"
