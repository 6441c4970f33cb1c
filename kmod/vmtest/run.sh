#!/usr/bin/env bash
# Builds the sbpf_ring module and its C tests against Debian's packaged cloud kernels,
# boots each kernel under QEMU (TCG) from a busybox initramfs, runs every test in the guest
# and turns the serial console into an exit status.
#
#   kmod/vmtest/run.sh [--kernel 6.1|6.12|all] [--keep] [--setup-only]
#
# Environment:
#   VMTEST_DIR        cache and work directory (default: <repo>/.vmtest)
#   VMTEST_RUST_BINS  space-separated static (musl) executables to run in the guest with
#                     SBPF_RING_BACKEND=kernel; each is a test "rust:<basename>"
#   VMTEST_TIMEOUT    seconds one boot may take (default 900)
#   VMTEST_INJECT_FAIL=1  add a test that fails, to check the harness reports it
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kmod=$(cd "$here/.." && pwd)
repo=$(cd "$kmod/.." && pwd)
vmdir=${VMTEST_DIR:-$repo/.vmtest}
timeout_s=${VMTEST_TIMEOUT:-900}
which_kernel=all
keep=0
setup_only=0

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--kernel) which_kernel=${2:?--kernel needs 6.1, 6.12 or all}; shift 2 ;;
	--kernel=*) which_kernel=${1#--kernel=}; shift ;;
	--keep) keep=1; shift ;;
	--setup-only) setup_only=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
case $which_kernel in
6.1|6.12|all) ;;
*) echo "run.sh: --kernel must be 6.1, 6.12 or all" >&2; exit 2 ;;
esac

log() { printf '[vmtest] %s\n' "$*" >&2; }
die() { printf '[vmtest] error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ $apt_updated = 0 ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	log "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Kernel release names (e.g. 6.1.0-56-cloud-amd64), resolved from apt at run time.
resolve_kernel() {
	local want=$1 rel cand
	case $want in
	6.1)
		rel=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			sed -n 's/^ *Depends: linux-image-\(6\.1\.[^ ]*-cloud-amd64\)$/\1/p' | head -n1)
		[ -n "$rel" ] || die "cannot resolve the 6.1 cloud kernel from linux-image-cloud-amd64"
		echo "$rel"
		;;
	6.12)
		for cand in $(apt-cache search --names-only '^linux-image-6\.12.*cloud-amd64$' |
			awk '{print $1}' | sed -n 's/^linux-image-\(6\.12\.[0-9][^ ]*-cloud-amd64\)$/\1/p' |
			sort -V -r); do
			if apt-cache show "linux-headers-$cand" >/dev/null 2>&1; then
				echo "$cand"
				return 0
			fi
		done
		die "no linux-image-6.12.*-cloud-amd64 with matching headers in apt"
		;;
	esac
}

setup_host() {
	apt_install qemu-system-x86 busybox-static cpio zstd gcc make libc6-dev
	if command -v rustup >/dev/null 2>&1; then
		rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl ||
			rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 ||
			log "warning: could not add the musl Rust target"
	fi
}

# Headers installed on the host; image unpacked (not installed) under $vmdir/kernels.
fetch_kernel() {
	local rel=$1
	local kdir=$vmdir/kernels/$rel
	if [ ! -d "/usr/src/linux-headers-$rel" ]; then
		if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
		apt_install "linux-headers-$rel"
	fi
	if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
		mkdir -p "$kdir"
		log "downloading linux-image-$rel"
		(cd "$kdir" && rm -f ./*.deb && apt-get download -qq "linux-image-$rel" >/dev/null &&
			dpkg -x ./linux-image-*.deb . && rm -f ./*.deb)
		ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1 || die "no vmlinuz in linux-image-$rel"
	fi
}

kernels=()
case $which_kernel in
all) kernels=(6.1 6.12) ;;
*) kernels=("$which_kernel") ;;
esac

setup_host
mkdir -p "$vmdir"
declare -A release
for k in "${kernels[@]}"; do
	release[$k]=$(resolve_kernel "$k")
	log "kernel $k -> ${release[$k]}"
	fetch_kernel "${release[$k]}"
done
[ $setup_only = 1 ] && exit 0
