//! Helpers shared by the ring's integration tests. Tests build rings with
//! `BackendChoice::Auto`, so `SBPF_RING_BACKEND=kernel` (as the QEMU harness sets) runs the
//! same suite on the kernel module.
#![allow(dead_code)]

use std::time::Duration;

use sbpf_ring::{Completion, CompletionQueue, Ring, Sqe, SubmitError, Submitter};

/// Scales a workload down under miri, which is slow.
pub fn scaled(n: usize) -> usize {
    if cfg!(miri) {
        (n / 200).max(4)
    } else {
        n
    }
}

/// A ring on the backend the environment selects.
pub fn ring(sq: u32, cq: u32, arena: u64) -> Ring {
    Ring::builder()
        .sq_entries(sq)
        .cq_entries(cq)
        .arena_size(arena)
        .idle(Duration::from_millis(2))
        .build()
        .expect("ring setup")
}

/// Submits `sqe`, draining completions into `done` while the ring is full.
pub fn submit_draining(
    s: &mut Submitter,
    cq: &mut CompletionQueue,
    sqe: Sqe,
    done: &mut Vec<Completion>,
) {
    let mut sqe = sqe;
    loop {
        match s.submit(sqe) {
            Ok(()) => return,
            Err(SubmitError::Full(e)) => {
                sqe = e;
                let _ = cq.wait(1, Some(Duration::from_millis(100)));
                done.extend(cq.iter());
            }
            Err(e) => panic!("submit failed: {e}"),
        }
    }
}

/// Waits until `n` completions have been collected into `done`. The bound is for liveness
/// only (a lost completion fails instead of hanging): a minute, which an emulated guest on
/// a loaded host needs for the small-ring tests' thousands of wake-ups.
pub fn collect(cq: &mut CompletionQueue, done: &mut Vec<Completion>, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while done.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} completions arrived",
            done.len()
        );
        let _ = cq.wait(1, Some(Duration::from_millis(100)));
        done.extend(cq.iter());
    }
}

/// Submits every entry and returns their completions in submission order of user_data.
/// The consumer's validation is what is under test, so the producer accepts everything.
pub fn run_all(ring: &Ring, cq: &mut CompletionQueue, entries: &[Sqe]) -> Vec<Completion> {
    let mut s = ring.submitter_with(sbpf_ring::AcceptAll);
    let mut done = Vec::new();
    for e in entries {
        submit_draining(&mut s, cq, *e, &mut done);
    }
    collect(cq, &mut done, entries.len());
    done.sort_by_key(|c| c.user_data());
    done
}
