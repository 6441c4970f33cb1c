//! The dispatcher: every call gets exactly its own result from any number of threads,
//! forged and stale completions never reach a caller, and closing wakes every waiter. On
//! whichever backend the environment selects (`SBPF_RING_BACKEND=kernel` in the QEMU
//! harness).

mod common;

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use common::{ring, scaled};
use sbpf_ring::{op, AcceptAll, Error, Ring, Sqe};

const THREADS: u64 = 8;

/// Whether the suite runs on the kernel module (in QEMU).
fn kernel() -> bool {
    std::env::var("SBPF_RING_BACKEND").is_ok_and(|b| b == "kernel")
}

/// 8 threads through one ring: each adds to its own word and to a shared one. Its own
/// word's old values must be exactly 0, 1, 2, ... in order (so each call got its own
/// result, not another thread's), and the shared word's old values, over all threads, must
/// be every number below the total exactly once.
#[test]
fn every_call_gets_its_own_result_under_8_threads() {
    let ring = ring(16, 32, 4096);
    let obj = ring.create_object(4096).unwrap();
    // Small enough for the kernel backend under QEMU's emulation, where every park and
    // wake-up of 8 threads on 2 virtual CPUs is slow.
    let per = scaled(if kernel() { 1_000 } else { 5_000 }) as u64;
    let shared: Vec<Vec<u64>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let ring = &ring;
                s.spawn(move || {
                    let own = 8 + t * 8;
                    let mut seen = Vec::with_capacity(per as usize);
                    for i in 0..per {
                        assert_eq!(ring.fetch_add(obj, own, 1).unwrap(), i, "thread {t}");
                        seen.push(ring.fetch_add(obj, 0, 1).unwrap());
                    }
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = shared.into_iter().flatten().collect();
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..THREADS * per));
    for t in 0..THREADS {
        assert_eq!(ring.load(obj, 8 + t * 8).unwrap(), per);
    }
    let stats = ring.dispatcher().unwrap().stats();
    assert_eq!(stats.routed, 2 * THREADS * per + THREADS);
    assert_eq!((stats.forged, stats.stale, stats.in_flight), (0, 0, 0));
}

/// Loads, stores, compare-exchange and batches return their own values.
#[test]
fn typed_helpers_and_batches_return_values() {
    let ring = ring(8, 16, 4096);
    let obj = ring.create_object(64).unwrap();
    ring.store(obj, 8, 41).unwrap();
    assert_eq!(ring.load(obj, 8).unwrap(), 41);
    assert_eq!(ring.compare_exchange(obj, 8, 41, 7).unwrap(), Ok(41));
    assert_eq!(ring.compare_exchange(obj, 8, 41, 9).unwrap(), Err(7));
    assert_eq!(ring.fetch_add(obj, 8, 3).unwrap(), 7);
    // More entries than the slab's half: in chunks, still in order.
    let ops: Vec<Sqe> = (0..40u64)
        .map(|i| op::FetchAdd64::new(obj, 16, i).user_data(999).build())
        .collect();
    let done = ring.call_batch(&ops).unwrap();
    let mut sum = 0;
    for (i, c) in done.iter().enumerate() {
        assert_eq!(c.value(), sum, "entry {i}");
        sum += i as u64;
    }
    // The producer's validator refuses what is out of bounds, with a reason.
    assert!(matches!(ring.load(obj, 64), Err(Error::Rejected { .. })));
    assert!(matches!(ring.load(obj, 3), Err(Error::Rejected { .. })));
}

/// Buffers from the ring's pool: a write then a read of the same bytes, from many threads,
/// and every buffer back in the pool afterwards.
#[test]
fn buffers_move_through_read_and_write_and_come_back() {
    let ring = ring(16, 32, 64 * 1024);
    let obj = ring.create_object(64 * 1024).unwrap();
    let pool = ring.buffers();
    let capacity = pool.available();
    thread::scope(|s| {
        for t in 0..4u64 {
            let (ring, pool) = (&ring, pool.clone());
            s.spawn(move || {
                for i in 0..scaled(2_000) as u64 {
                    let len = 1 + ((t * 31 + i * 7) % 1000) as usize;
                    let data: Vec<u8> = (0..len).map(|k| (k as u64 ^ i ^ t) as u8).collect();
                    let mut buf = pool.alloc(len).expect("a free buffer");
                    buf.write(&data).unwrap();
                    let at = t * 16 * 1024;
                    let (n, buf) = ring.write_from(obj, at, buf);
                    assert_eq!(n.unwrap(), len);
                    drop(buf);
                    let buf = pool.alloc(len).unwrap();
                    let (n, buf) = ring.read_into(obj, at, buf);
                    assert_eq!(n.unwrap(), len);
                    assert_eq!(buf.to_vec(), data);
                }
            });
        }
    });
    assert_eq!(pool.available(), capacity);
}

/// Raw producers inject NOPs with forged `user_data` (values the dispatcher never made)
/// and replay the `user_data` of finished calls (stale), while 4 threads call. Every call
/// still gets its own result, and every injected completion is counted as forged or
/// stale, none routed.
#[test]
fn forged_and_stale_completions_never_reach_a_caller() {
    let ring = ring(16, 32, 4096);
    let obj = ring.create_object(4096).unwrap();
    let d = ring.dispatcher().unwrap();
    let per = scaled(if kernel() { 1_000 } else { 5_000 }) as u64;
    let mut raw = ring.submitter_with(AcceptAll);
    // Stale: user_data of calls that finished.
    let mut stale: Vec<u64> = (0..16)
        .map(|_| ring.call(op::Nop::new()).unwrap().user_data())
        .collect();
    let calls_before = d.stats().routed;
    let injected = scaled(if kernel() { 4_000 } else { 20_000 }) as u64;
    let mut own_calls = 0;
    thread::scope(|s| {
        for t in 0..4u64 {
            let ring = &ring;
            s.spawn(move || {
                for i in 0..per {
                    assert_eq!(ring.fetch_add(obj, t * 8, 1).unwrap(), i);
                }
            });
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..injected {
            let ud = if i % 2 == 0 {
                stale[(i as usize / 2) % stale.len()]
            } else {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                x
            };
            let mut sqe = op::Nop::new().user_data(ud).build();
            let mut full = 0u32;
            loop {
                match raw.submit(sqe) {
                    Ok(()) => break,
                    Err(e) => {
                        sqe = e.into_entry();
                        full += 1;
                        if full % 64 == 0 {
                            // Only a waiting call routes completions: once the four
                            // callers are done, nothing else frees room in the CQ.
                            ring.call(op::Nop::new()).unwrap();
                            own_calls += 1;
                        } else {
                            thread::yield_now();
                        }
                    }
                }
            }
        }
    });
    // Flush: a call that completes after every injected entry (one consumer, in order).
    ring.call(op::Nop::new()).unwrap();
    stale.clear();
    let stats = d.stats();
    assert_eq!(stats.forged + stats.stale, injected, "{stats:?}");
    assert!(stats.stale >= injected / 2, "{stats:?}");
    assert_eq!(
        stats.routed - calls_before,
        4 * per + own_calls + 1,
        "{stats:?}"
    );
    assert_eq!(stats.in_flight, 0);
}

/// The raw completion queue and the dispatcher exclude each other, in both orders.
#[test]
fn raw_completions_and_the_dispatcher_exclude_each_other() {
    let a = ring(8, 16, 4096);
    let _cq = a.completions().unwrap();
    assert!(matches!(a.dispatcher(), Err(Error::CompletionQueueTaken)));
    assert!(matches!(
        a.call(op::Nop::new()),
        Err(Error::CompletionQueueTaken)
    ));
    let b = ring(8, 16, 4096);
    b.call(op::Nop::new()).unwrap();
    assert!(matches!(b.completions(), Err(Error::CompletionQueueTaken)));
    // Each refusal says why: a single-producer handle, a ring closed by dropping its queue.
    let c = ring(8, 16, 4096);
    let _single = c.single_submitter(AcceptAll).unwrap();
    assert!(matches!(
        c.call(op::Nop::new()),
        Err(Error::ProducerMode(_))
    ));
    let d = ring(8, 16, 4096);
    drop(d.completions().unwrap());
    assert!(matches!(d.call(op::Nop::new()), Err(Error::Closed)));
}

/// Puts 8 threads into calls that cannot finish (no one may route: the test holds the
/// lead, and the completion ring is full of raw NOPs), closes the ring with `close`, and
/// checks that every call returns `Closed`, and that calls after the close do too.
fn close_wakes_every_caller(close: impl FnOnce(Ring)) {
    let ring = ring(4, 4, 4096);
    let obj = ring.create_object(64).unwrap();
    let d = ring.dispatcher().unwrap();
    let hold = d.hold_lead_for_test().unwrap();
    let mut raw = ring.submitter_with(AcceptAll);
    for _ in 0..4 {
        raw.submit(op::Nop::new().user_data(u64::MAX).build())
            .unwrap();
    }
    let start = Arc::new(Barrier::new(THREADS as usize + 1));
    let callers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (d, start) = (d.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                d.fetch_add(obj, t * 8, 1)
            })
        })
        .collect();
    start.wait();
    // Let them reach their waits (parked, or waiting for room); not a correctness bound.
    thread::sleep(Duration::from_millis(200));
    close(ring);
    // The routing the test held back may now run: what it finds must not answer a call.
    drop(hold);
    for c in callers {
        let r = c.join().unwrap();
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    }
    assert!(matches!(d.load(obj, 0), Err(Error::Closed)));
    let stats = d.stats();
    assert_eq!(stats.routed, 0, "{stats:?}");
}

#[test]
fn shutdown_wakes_every_caller_with_closed() {
    close_wakes_every_caller(|ring| {
        ring.shutdown();
        // Kept alive past the shutdown, dropped at the end of the closure.
    });
}

#[test]
fn dropping_the_ring_wakes_every_caller_with_closed() {
    close_wakes_every_caller(drop);
}

/// A buffer of one ring's pool is refused by another ring: its offset names bytes of the
/// first ring's arena, which in the second belong to someone else.
#[test]
fn a_buffer_of_another_ring_is_refused() {
    let (a, b) = (ring(8, 16, 64 * 1024), ring(8, 16, 64 * 1024));
    let obj = a.create_object(64).unwrap();
    a.store(obj, 0, u64::from_ne_bytes(*b"RINGDATA")).unwrap();
    let mut foreign = b.buffers().alloc(8).unwrap();
    foreign.write(b"........").unwrap();
    // The block at the same offset of `a`'s own pool, to see that nothing lands there.
    let mine = a.buffers().alloc(8).unwrap();
    assert_eq!(mine.offset(), foreign.offset());
    let (r, foreign) = a.read_into(obj, 0, foreign);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let (r, foreign) = a.write_from(obj, 0, foreign);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(foreign.to_vec(), b"........");
    assert_ne!(mine.to_vec(), b"RINGDATA");
    assert_eq!(a.load(obj, 0).unwrap(), u64::from_ne_bytes(*b"RINGDATA"));
}

/// A batch cut short by a close keeps what completed: `call_batch_into` returns `Closed`
/// with the completions of a prefix of the batch, in order, each its own entry's. The
/// batch adds 0, 1, 2, ... to one word, so entry `i`'s old value is the sum below `i`.
#[test]
fn a_batch_cut_short_by_close_keeps_what_completed() {
    let ring = Arc::new(ring(16, 32, 4096));
    let obj = ring.create_object(64).unwrap();
    let n = scaled(if kernel() { 100_000 } else { 1_000_000 }) as u64;
    let ops: Vec<Sqe> = (0..n)
        .map(|i| op::FetchAdd64::new(obj, 8, i).build())
        .collect();
    let batch = {
        let ring = Arc::clone(&ring);
        thread::spawn(move || {
            let mut out = Vec::new();
            let r = ring.call_batch_into(&ops, &mut out);
            (r, out)
        })
    };
    // Close once more than a few rounds have run (at most half the slab each), so that
    // earlier rounds' completions exist to be kept.
    let few = scaled(200) as u64;
    let mut seen = 0;
    while seen < few * (few - 1) / 2 && !batch.is_finished() {
        match ring.load(obj, 8) {
            Ok(v) => seen = v,
            Err(e) => panic!("load: {e}"),
        }
    }
    ring.shutdown();
    let (r, out) = batch.join().unwrap();
    match r {
        Err(Error::Closed) => assert!(
            !out.is_empty() && (out.len() as u64) < n,
            "{} of {n} completions kept",
            out.len()
        ),
        Ok(()) => assert_eq!(out.len() as u64, n, "finished before the close"),
        Err(e) => panic!("{e}"),
    }
    let mut sum = 0;
    for (i, c) in out.iter().enumerate() {
        assert!(c.is_ok(), "entry {i}: {c:?}");
        assert_eq!(c.value(), sum, "entry {i}");
        sum += i as u64;
    }
}

/// A call that times out gives its slot up; the request completes later and its slot is
/// reclaimed, not handed to anyone.
#[test]
fn a_timed_out_call_leaks_no_slot() {
    let ring = ring(8, 16, 4096);
    let d = ring.dispatcher().unwrap();
    let hold = d.hold_lead_for_test().unwrap();
    let r = d.call_timeout(op::Nop::new(), Duration::from_millis(20));
    assert!(matches!(r, Err(Error::TimedOut)), "{r:?}");
    assert_eq!(d.stats().in_flight, 1);
    drop(hold);
    ring.call(op::Nop::new()).unwrap();
    let stats = d.stats();
    assert_eq!(
        (stats.in_flight, stats.routed, stats.stale),
        (0, 2, 0),
        "{stats:?}"
    );
}

/// Batches larger than the free slots, from more threads than the slab has room for at
/// once: no batch waits for a slot while it holds unpublished ones, so none starves.
#[test]
fn concurrent_batches_larger_than_the_free_slots_complete() {
    let ring = ring(8, 16, 4096);
    let obj = ring.create_object(4096).unwrap();
    let rounds = scaled(200) as u64;
    thread::scope(|s| {
        for t in 0..4u64 {
            let ring = &ring;
            s.spawn(move || {
                let batch: Vec<Sqe> = (0..12)
                    .map(|_| op::FetchAdd64::new(obj, t * 8, 1).build())
                    .collect();
                for r in 0..rounds {
                    let done = ring.call_batch(&batch).unwrap();
                    let old: Vec<u64> = done.iter().map(|c| c.value()).collect();
                    assert!(old.iter().copied().eq(r * 12..(r + 1) * 12), "thread {t}");
                }
            });
        }
    });
    for t in 0..4u64 {
        assert_eq!(ring.load(obj, t * 8).unwrap(), rounds * 12);
    }
    assert_eq!(ring.dispatcher().unwrap().stats().in_flight, 0);
}
