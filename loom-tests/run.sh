#!/usr/bin/env bash
# Runs the loom models of the ring protocol, then, for every ordering the contract relies
# on, builds the ring with that one ordering weakened (`--cfg loom_weaken="<site>"`) and
# checks that the model of that step FAILS. Exits non-zero if a real model fails or a
# weakened ordering goes unnoticed.
#
#   loom-tests/run.sh              # everything
#   loom-tests/run.sh models       # the real models only
#
# Environment: LOOM_MAX_PREEMPTIONS (default 2), CARGO_TARGET_DIR (default target/loom, so
# the loom cfg does not invalidate the main build).
set -u
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/loom}"
export RUSTFLAGS="--cfg loom"
export RUST_BACKTRACE=0
mkdir -p "$CARGO_TARGET_DIR/weaken"
logs="$CARGO_TARGET_DIR/weaken"
status=0

# site | test target | test name (what must fail with that ordering weakened)
weakenings='
publish          submission two_producers_wrap
publish_batch    submission batch_publish
peek             submission two_producers_wrap
sq_head_release  submission two_producers_wrap
sq_head_acquire  submission full_ring
sq_head_acquire  submission full_ring_single
cq_tail_release  completion completions_wrap
cq_tail_acquire  completion completions_wrap
cq_head_release  completion completions_wrap
cq_head_acquire  completion completions_wrap
prepare_sleep    wakeup     need_wakeup_kick
after_publish    wakeup     need_wakeup_kick
after_release    wakeup     full_cq_kick
prepare_sleep    wakeup     full_cq_kick
gate_admit       shutdown   close_while_consuming
gate_close       shutdown   close_while_consuming
event_wait       event      wait_notify
event_notify     event      wait_notify
event_notify     shutdown   close_wakes_a_blocked_waiter
route_done       dispatch   leader_wakes_a_parked_caller
take_acquire     dispatch   leader_wakes_a_parked_caller
park_fence       dispatch   a_leader_that_leaves_promotes_a_parked_caller
unlead_fence     dispatch   a_leader_that_leaves_promotes_a_parked_caller
close_fence      dispatch   close_wakes_a_registered_task
'

# Why a failed run failed, from its log.
reason() {
    if grep -q "Causality violation" "$1"; then echo "data race on a slot (causality)"
    elif grep -q "deadlock" "$1"; then echo "deadlock (lost wake-up)"
    elif grep -q "maximum number of branches" "$1"; then echo "branch limit (livelock)"
    elif grep -q "panicked" "$1"; then
        grep -A1 "panicked at" "$1" | sed -n 2p | cut -c1-60
    else echo "?"
    fi
}

echo "== loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, release)"
start=$SECONDS
if ! cargo test -p loom-tests --release; then
    echo "FAIL: a loom model of the real protocol fails"
    exit 1
fi
echo "models: $((SECONDS - start)) s"

[ "${1:-}" = models ] && exit 0

# A rustc wrapper for workspace crates only: adds the cfg to sbpf-ring alone, so the
# dependencies are built once. Each site gets its own wrapper path, which cargo hashes into
# the artifacts, so the weakened builds neither collide nor rebuild each other.
wrapper="$logs/weaken-rustc"
cat >"$wrapper" <<'EOF'
#!/bin/sh
rustc="$1"; shift
site=$(basename "$(dirname "$0")")
case " $* " in
*" --crate-name sbpf_ring "*) exec "$rustc" "$@" --cfg "loom_weaken=\"$site\"" ;;
esac
exec "$rustc" "$@"
EOF
chmod +x "$wrapper"

rows=()
while read -r site target test; do
    [ -n "$site" ] || continue
    mkdir -p "$logs/$site"
    ln -sf "$wrapper" "$logs/$site/rustc"
    log="$logs/$site/$target-$test.log"
    export RUSTC_WORKSPACE_WRAPPER="$logs/$site/rustc"
    t0=$SECONDS
    if ! cargo test -p loom-tests --release --test "$target" --no-run >"$log" 2>&1; then
        rows+=("$(printf '%-16s %-33s %-9s %4s  %s' "$site" "$target::$test" "ERROR" - "does not build: $log")")
        status=1
        continue
    fi
    if cargo test -p loom-tests --release --test "$target" -- --exact "$test" >>"$log" 2>&1; then
        rows+=("$(printf '%-16s %-33s %-9s %4s  %s' "$site" "$target::$test" "PASSES" $((SECONDS - t0)) "weakening NOT detected")")
        status=1
    else
        rows+=("$(printf '%-16s %-33s %-9s %4s  %s' "$site" "$target::$test" "fails" $((SECONDS - t0)) "$(reason "$log")")")
    fi
    unset RUSTC_WORKSPACE_WRAPPER
done <<<"$weakenings"

echo
echo "== weakened orderings (each must make its model fail)"
printf '%-16s %-33s %-9s %4s  %s\n' "site" "model" "result" "s" "how"
printf '%s\n' "${rows[@]}"
echo
[ "$status" -eq 0 ] && echo "OK" || echo "FAIL"
exit "$status"
