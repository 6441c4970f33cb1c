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
#   VMTEST_TESTS      the C tests to run (default: functional closing limits shared hostile killed bench bpfmap)
#   VMTEST_INJECT_FAIL=test|oops|nomarker  make the guest fail on purpose (a FAIL marker,
#                     a WARNING in the kernel log, no final summary), to check that the
#                     harness exits non-zero
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kmod=$(cd "$here/.." && pwd)
repo=$(cd "$kmod/.." && pwd)
vmdir=${VMTEST_DIR:-$repo/.vmtest}
timeout_s=${VMTEST_TIMEOUT:-900}
which_kernel=all
keep=0
setup_only=0

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

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
	apt_update_once
	log "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

apt_update_once() {
	if [ $apt_updated = 0 ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
}

# Kernel release names (e.g. 6.1.0-56-cloud-amd64), resolved from apt at run time; the
# package lists are refreshed once if they do not know the kernel (a fresh machine).
resolve_kernel() {
	resolve_kernel_from_lists "$1" 2>/dev/null && return 0
	apt_update_once
	resolve_kernel_from_lists "$1"
}

resolve_kernel_from_lists() {
	local want=$1 rel cand
	case $want in
	6.1)
		rel=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			sed -n 's/^ *Depends: linux-image-\(6\.1\.[^ ]*-cloud-amd64\)$/\1/p' | head -n1)
		[ -n "$rel" ] || { echo "cannot resolve 6.1 from linux-image-cloud-amd64" >&2; return 1; }
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
		echo "no linux-image-6.12.*-cloud-amd64 with matching headers in apt" >&2
		return 1
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
		apt_install "linux-headers-$rel"
	fi
	if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
		mkdir -p "$kdir"
		log "downloading linux-image-$rel"
		(cd "$kdir" && rm -f ./*.deb &&
			apt-get download -qq -o APT::Sandbox::User=root "linux-image-$rel" >/dev/null &&
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
	release[$k]=$(resolve_kernel "$k") || die "cannot resolve kernel $k from apt"
	log "kernel $k -> ${release[$k]}"
	fetch_kernel "${release[$k]}"
done
[ $setup_only = 1 ] && exit 0

work=$vmdir/work.$$
mkdir -p "$work"
cleanup() {
	if [ $keep = 1 ]; then log "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The C tests do not depend on the kernel: build them once.
log "building the C tests"
make -s -C "$kmod" selftest >/dev/null || die "the validation self-test failed (make -C kmod selftest)"
make -s -C "$kmod" tests || die "building the C tests failed"
read -r -a tests <<<"${VMTEST_TESTS:-functional closing limits shared hostile killed bench bpfmap}"
for t in "${tests[@]}"; do
	[ -x "$kmod/tests/bin/$t" ] || die "missing test binary $t"
done

rust_bins=()
for b in ${VMTEST_RUST_BINS:-}; do
	[ -x "$b" ] || die "VMTEST_RUST_BINS: $b is not an executable"
	rust_bins+=("$b")
done

write_init() {
	cat <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
echo
echo "VMTEST kernel $(uname -r) clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
R=/tmp/results
: > $R
mark() { echo "TEST $*" | tee -a $R; }
# Let the kernel's random generator finish seeding now, while nothing else runs: reading
# /dev/random blocks until it has. Seeding flips a static key, which patches kernel text;
# under multi-threaded TCG another vCPU running the patched function at that moment can
# execute a stale copy holding the patch's int3 and oops. Without this it happened during
# the tests, about 20 s in, when the first getrandom() call forced the seeding.
t0=$(cut -d' ' -f1 /proc/uptime)
head -c 1 /dev/random > /dev/null
echo "VMTEST random generator ready at ${t0}s..$(cut -d' ' -f1 /proc/uptime)s"
run() {	# run NAME SECONDS CMD...: the program prints its own markers
	name=$1; secs=$2; shift 2
	timeout "$secs" "$@" > /tmp/out 2>&1
	st=$?
	cat /tmp/out; grep '^TEST ' /tmp/out >> $R
	if [ $st -eq 0 ]; then mark "exit:$name PASS"; else mark "exit:$name FAIL status $st"; fi
}
if insmod /sbpf_ring.ko; then mark "insmod PASS"; else mark "insmod FAIL"; fi
[ -c /dev/sbpf_ring ] || mark "devnode FAIL /dev/sbpf_ring missing"
pinned0=$(cat /sys/module/sbpf_ring/parameters/pinned_bytes)
for t in TESTS; do
	run "$t" 600 /tests/$t
done
case "INJECT" in	# VMTEST_INJECT_FAIL: prove the host side notices
test) mark "injected FAIL deliberately" ;;
oops) echo "WARNING: injected by VMTEST_INJECT_FAIL" > /dev/kmsg ;;
nomarker) echo "VMTEST exiting init without a summary"; exit 1 ;;
esac
for b in /rust/*; do
	[ -x "$b" ] || continue
	n=$(basename "$b")
	SBPF_RING_BACKEND=kernel timeout 600 "$b" > /tmp/out 2>&1
	st=$?
	cat /tmp/out
	if [ $st -eq 0 ]; then mark "rust:$n PASS"; else mark "rust:$n FAIL status $st"; fi
done
# The module stays while a ring is open, and goes once it is closed.
/tests/killed hold /tmp/holding &
holder=$!
i=0; while [ ! -e /tmp/holding ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if rmmod sbpf_ring 2>/dev/null; then mark "rmmod_busy FAIL unloaded with a ring open"
else mark "rmmod_busy PASS"; fi
kill -9 $holder; wait $holder 2>/dev/null
# Objects are uncharged once freed, a grace period after their last holder: wait up to 5 s.
i=0
while :; do
	pinned1=$(cat /sys/module/sbpf_ring/parameters/pinned_bytes 2>/dev/null)
	[ "$pinned1" = "$pinned0" ] || [ $i -ge 50 ] && break
	sleep 0.1; i=$((i+1))
done
if [ "$pinned1" = "$pinned0" ]; then mark "pinned_bytes_final PASS"
else mark "pinned_bytes_final FAIL $pinned1 != $pinned0"; fi
cat /sys/kernel/debug/sbpf_ring/rings
if rmmod sbpf_ring; then mark "rmmod PASS"; else mark "rmmod FAIL"; fi
[ -e /sys/module/sbpf_ring ] && mark "unloaded FAIL module still present"
echo "VMTEST dmesg begin"
dmesg
echo "VMTEST dmesg end"
echo "VMTEST summary pass=$(grep -c ' PASS$' $R) fail=$(grep -c ' FAIL' $R)"
echo "VMTEST done"
poweroff -f
INIT
}

run_kernel() {
	local k=$1 rel=${release[$1]}
	local kw=$work/$rel
	local vmlinuz initrd logf
	vmlinuz=$(ls "$vmdir/kernels/$rel"/boot/vmlinuz-* | head -n1)
	logf=$vmdir/console-$rel.log
	mkdir -p "$kw/build" "$kw/root/bin" "$kw/root/tests" "$kw/root/rust"

	log "[$k] building the module against /usr/src/linux-headers-$rel"
	cp -r "$kmod/Kbuild" "$kmod/src" "$kmod/include" "$kw/build/"
	if ! make -s -C "/usr/src/linux-headers-$rel" M="$kw/build" W=1 modules \
		>"$kw/build.log" 2>&1; then
		cat "$kw/build.log" >&2
		die "[$k] module build failed"
	fi
	if grep -E 'warning:|error:' "$kw/build.log" >&2; then
		die "[$k] module build has warnings"
	fi

	cp "$kw/build/sbpf_ring.ko" "$kw/root/"
	cp "$(command -v busybox)" "$kw/root/bin/busybox"
	for t in "${tests[@]}" killed; do cp "$kmod/tests/bin/$t" "$kw/root/tests/"; done
	for b in ${rust_bins[@]+"${rust_bins[@]}"}; do cp "$b" "$kw/root/rust/"; done
	write_init | sed -e "s|TESTS|${tests[*]}|" \
		-e "s|\"INJECT\"|\"${VMTEST_INJECT_FAIL:-}\"|" >"$kw/root/init"
	chmod +x "$kw/root/init"
	initrd=$kw/initrd.cpio.gz
	(cd "$kw/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

	log "[$k] booting $rel under QEMU (TCG); console: $logf"
	local t0=$SECONDS st=0
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg,thread=multi -m 1024 -smp 2 -nographic \
		-no-reboot -kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 oops=panic" </dev/null >"$logf" 2>&1 || st=$?
	local secs=$((SECONDS - t0))
	tr -d '\r' <"$logf" >"$logf.tmp" && mv "$logf.tmp" "$logf"

	grep -E '^(TEST|BENCH|RATIO|PROFILE|VMTEST kernel|VMTEST summary) ' "$logf" || true
	local pass fail bad=0
	pass=$(grep -cE '^TEST .* PASS$' "$logf" || true)
	fail=$(grep -cE '^TEST .* FAIL' "$logf" || true)
	if [ "$st" != 0 ]; then
		log "[$k] qemu exited with status $st (124: timeout after ${timeout_s}s)"; bad=1
	fi
	if ! grep -q '^VMTEST done' "$logf"; then
		log "[$k] no final summary marker in the console log"; bad=1
	fi
	if grep -nE 'Oops|BUG:|WARNING:|general protection|Call Trace|Kernel panic' "$logf" >&2; then
		log "[$k] the kernel log has an oops, BUG, WARNING or call trace"; bad=1
	fi
	[ "$fail" = 0 ] || bad=1
	[ "$pass" -gt 0 ] || bad=1
	write_bench_results "$logf" "$rel"
	summary+=("kernel $rel: $pass passed, $fail failed, ${secs}s in QEMU$([ $bad = 0 ] && echo '' || echo ' -> FAILED')")
	return $bad
}

# The guest's BENCH lines as the JSON `sbpf-ring bench` reads (benches/src/kmod.rs):
# $vmdir/kmod-bench-<release>.json, and kmod-bench.json for the kernel run last.
write_bench_results() {
	local logf=$1 rel=$2 out="$vmdir/kmod-bench-$2.json"
	grep -q '^BENCH ' "$logf" || return 0
	{
		printf '{ "kernel": "%s", "cases": [\n' "$rel"
		grep -E '^BENCH ' "$logf" | sed -E 's/^BENCH ([^ ]+) ops_per_sec=([0-9.]+).*/  { "name": "\1", "ops_per_sec": \2, "note": "kernel '"$rel"', same boot" }/' |
			sed '$!s/$/,/'
		printf '] }\n'
	} >"$out"
	cp "$out" "$vmdir/kmod-bench.json"
}

summary=()
overall=0
t_all=$SECONDS
for k in "${kernels[@]}"; do
	run_kernel "$k" || overall=1
done
echo
for line in "${summary[@]}"; do echo "vmtest: $line"; done
echo "vmtest: total $((SECONDS - t_all))s; $([ $overall = 0 ] && echo PASS || echo FAIL)"
exit $overall
