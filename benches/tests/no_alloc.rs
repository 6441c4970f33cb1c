//! The submit and complete paths allocate nothing: after a warm-up, rounds of
//! `submit_batch` + `wait` + drain (and single `submit` + `pop`) on a local ring make zero
//! allocations, counted by a global allocator in every thread of the process, the poller
//! included, whose hot path must allocate nothing either.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use sbpf_benches::ring_cases::{batch_entries, local_ring, round_trip, wait_for, RingOp};
use sbpf_ring::op;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static GLOBAL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MINE: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        GLOBAL.fetch_add(1, Ordering::Relaxed);
        // `try_with`: the slot may be gone while a thread exits.
        let _ = MINE.try_with(|m| m.set(m.get() + 1));
    }
}

// SAFETY: forwards to the system allocator unchanged; counting touches no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn submit_and_complete_allocate_nothing() {
    let (ring, obj) = local_ring().expect("local ring");
    let mut sub = ring.submitter();
    let mut cq = ring.completions().expect("completion queue");
    let batches: Vec<Vec<_>> = [
        RingOp::Nop,
        RingOp::Read64,
        RingOp::Write64,
        RingOp::FetchAdd,
    ]
    .into_iter()
    .flat_map(|op| [1, 32, 256].map(|b| batch_entries(op, obj, b)))
    .collect();
    let single = op::Load64::new(obj, 8).user_data(7).build();

    let mut rounds = |n: usize| {
        let mut failed = 0;
        for _ in 0..n {
            for batch in &batches {
                failed += round_trip(&mut sub, &mut cq, batch);
            }
            sub.submit(single).expect("submit");
            wait_for(&mut cq, 1);
            let c = cq.pop().expect("a completion");
            assert_eq!(c.user_data(), 7);
        }
        failed
    };
    assert_eq!(rounds(50), 0, "warm-up requests failed");

    // The counter itself works: a deliberate allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let probe = std::hint::black_box(Vec::<u8>::with_capacity(16));
    COUNTING.store(false, Ordering::SeqCst);
    drop(probe);
    assert!(MINE.with(Cell::get) >= 1 && GLOBAL.load(Ordering::SeqCst) >= 1);

    MINE.with(|m| m.set(0));
    GLOBAL.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let failed = rounds(500);
    COUNTING.store(false, Ordering::SeqCst);
    let (mine, global) = (MINE.with(Cell::get), GLOBAL.load(Ordering::SeqCst));

    assert_eq!(failed, 0, "requests failed");
    assert_eq!(mine, 0, "allocations in the submitting thread");
    assert_eq!(global, 0, "allocations in the process (poller included)");
    drop((sub, cq));
    drop(ring);
}
