//! SPSC transfer of 64-byte elements from a producer thread to a consumer thread, each
//! pinned to its own core: the ring's raw protocol (`SqView` over `HeapRings`), rtrb, and
//! crossbeam's `ArrayQueue<[u8; 64]>`. Same capacity, same element count, one element per
//! operation on both sides. Throughput = elements / time until the consumer has them all.
//! Latency: every 64th element carries its push timestamp; the consumer's pop time minus
//! it is the sample (queue residence included, so it grows with the capacity).

use std::{
    hint::spin_loop,
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use sbpf_ring::{
    protocol::{SqSlot, SqView},
    region::HeapRings,
    sync::AtomicU32,
    Sqe,
};

use crate::{affinity, result, Budget, CaseResult, Samples};

/// Capacity of every queue.
pub const CAPACITY: usize = 256;

/// Every this many elements carries a timestamp.
const SAMPLE_EVERY: u64 = 64;

/// The queue under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// `ring/raw/entry64`.
    Raw,
    /// `ring/raw-padded/entry64`: the same protocol steps over a cache-line-padded layout
    /// of the bench's own, the check that `HeapRings`' layout costs nothing (see the README).
    RawPadded,
    /// `rtrb/entry64`.
    Rtrb,
    /// `crossbeam/entry64`.
    Crossbeam,
}

impl Queue {
    /// The case name.
    pub fn name(self) -> &'static str {
        match self {
            Queue::Raw => "ring/raw/entry64",
            Queue::RawPadded => "ring/raw-padded/entry64",
            Queue::Rtrb => "rtrb/entry64",
            Queue::Crossbeam => "crossbeam/entry64",
        }
    }
}

#[inline]
fn stamp(i: u64, epoch: Instant) -> u64 {
    if i % SAMPLE_EVERY == 0 {
        epoch.elapsed().as_nanos() as u64
    } else {
        0
    }
}

#[inline]
fn element(i: u64, epoch: Instant) -> [u8; 64] {
    let mut e = [0u8; 64];
    e[..8].copy_from_slice(&i.to_le_bytes());
    e[8..16].copy_from_slice(&stamp(i, epoch).to_le_bytes());
    e
}

#[inline]
fn fields(e: &[u8; 64]) -> (u64, u64) {
    let w = |r: std::ops::Range<usize>| u64::from_le_bytes(e[r].try_into().expect("8 bytes"));
    (w(0..8), w(8..16))
}

/// Checks order and collects latency samples on the consumer side.
struct Checker {
    next: u64,
    samples: Samples,
    epoch: Instant,
}

impl Checker {
    #[inline]
    fn take(&mut self, seq: u64, ts: u64) {
        assert_eq!(seq, self.next, "SPSC order");
        self.next += 1;
        if seq % SAMPLE_EVERY == 0 {
            let now = self.epoch.elapsed().as_nanos() as u64;
            self.samples
                .record(Duration::from_nanos(now.saturating_sub(ts)));
        }
    }
}

/// Runs a producer closure and a consumer closure on two pinned threads after a common
/// start; returns the time from the start until the consumer finished, and its checker.
fn run_pair(
    n: u64,
    produce: impl FnOnce(Instant) + Send + 'static,
    consume: impl FnOnce(&mut Checker) + Send + 'static,
) -> (Duration, Checker) {
    let cores = affinity::producer_consumer();
    let barrier = Arc::new(Barrier::new(2));
    let epoch = Instant::now();
    let b = Arc::clone(&barrier);
    let consumer = thread::spawn(move || {
        if let Some((_, c)) = cores {
            affinity::pin_current(c);
        }
        let mut checker = Checker {
            next: 0,
            samples: Samples::with_capacity((n / SAMPLE_EVERY + 1) as usize),
            epoch,
        };
        b.wait();
        let start = Instant::now();
        consume(&mut checker);
        (start.elapsed(), checker)
    });
    let producer = thread::spawn(move || {
        if let Some((p, _)) = cores {
            affinity::pin_current(p);
        }
        barrier.wait();
        produce(epoch);
    });
    producer.join().expect("producer");
    consumer.join().expect("consumer")
}

/// Where the raw cases' `SqView` lives.
trait RawRings: Send + Sync + 'static {
    fn sq(&self) -> SqView<'_>;
}

impl RawRings for HeapRings {
    fn sq(&self) -> SqView<'_> {
        HeapRings::sq(self)
    }
}

/// A cache line of its own.
#[repr(C, align(64))]
struct Line<T>(T);

/// The same views over a layout like the kernel region's: head, tail and flags each on
/// their own cache line, slots aligned to cache lines (one slot per line).
struct PaddedRings {
    head: Line<AtomicU32>,
    tail: Line<AtomicU32>,
    flags: Line<AtomicU32>,
    slots: Box<Line<[SqSlot; CAPACITY]>>,
}

// SAFETY: `PaddedRings` is not `Sync` only because its slots are `UnsafeCell`s. The two
// threads touch them solely through the protocol's `SqView` steps, as `HeapRings` and the
// library's `RingRegion` do: a slot body is written only by the producer that reserved it
// before its release-publication, and read only by the consumer after the matching acquire
// and before it releases the head.
unsafe impl Sync for PaddedRings {}

impl PaddedRings {
    fn new() -> Self {
        PaddedRings {
            head: Line(AtomicU32::new(0)),
            tail: Line(AtomicU32::new(0)),
            flags: Line(AtomicU32::new(0)),
            slots: Box::new(Line(std::array::from_fn(|_| SqSlot::new()))),
        }
    }
}

impl RawRings for PaddedRings {
    fn sq(&self) -> SqView<'_> {
        SqView {
            head: &self.head.0,
            tail: &self.tail.0,
            flags: &self.flags.0,
            slots: &self.slots.0,
        }
    }
}

fn raw_over<R: RawRings>(rings: R, n: u64) -> (Duration, Checker) {
    let rings = Arc::new(rings);
    let r2 = Arc::clone(&rings);
    run_pair(
        n,
        move |epoch| {
            let sq = rings.sq();
            let (mut tail, mut cached_head) = (0u32, 0u32);
            for i in 0..n {
                let sqe = Sqe {
                    user_data: i,
                    val: stamp(i, epoch),
                    ..Sqe::default()
                };
                while sq.reserve_single(tail, &mut cached_head, 1) == 0 {
                    spin_loop();
                }
                // SAFETY: `tail` was just reserved by this thread, the one producer, and is
                // not published yet.
                unsafe { sq.write(tail, &sqe) };
                sq.publish(tail);
                tail = tail.wrapping_add(1);
            }
        },
        move |check| {
            let sq = r2.sq();
            let mut head = 0u32;
            for _ in 0..n {
                let sqe = loop {
                    // SAFETY: this thread is the one consumer; `head` is its private head,
                    // released only after the copy.
                    match unsafe { sq.peek(head) } {
                        Some(s) => break s,
                        None => spin_loop(),
                    }
                };
                head = head.wrapping_add(1);
                sq.release(head);
                check.take(sqe.user_data, sqe.val);
            }
        },
    )
}

fn raw(n: u64) -> (Duration, Checker) {
    raw_over(HeapRings::new(CAPACITY as u32, 1), n)
}

fn raw_padded(n: u64) -> (Duration, Checker) {
    raw_over(PaddedRings::new(), n)
}

fn rtrb(n: u64) -> (Duration, Checker) {
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; 64]>::new(CAPACITY);
    run_pair(
        n,
        move |epoch| {
            for i in 0..n {
                let mut e = element(i, epoch);
                loop {
                    match tx.push(e) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            e = back;
                            spin_loop();
                        }
                    }
                }
            }
        },
        move |check| {
            for _ in 0..n {
                let e = loop {
                    match rx.pop() {
                        Ok(e) => break e,
                        Err(_) => spin_loop(),
                    }
                };
                let (seq, ts) = fields(&e);
                check.take(seq, ts);
            }
        },
    )
}

fn crossbeam(n: u64) -> (Duration, Checker) {
    let q = Arc::new(crossbeam_queue::ArrayQueue::<[u8; 64]>::new(CAPACITY));
    let q2 = Arc::clone(&q);
    run_pair(
        n,
        move |epoch| {
            for i in 0..n {
                let mut e = element(i, epoch);
                while let Err(back) = q.push(e) {
                    e = back;
                    spin_loop();
                }
            }
        },
        move |check| {
            for _ in 0..n {
                let e = loop {
                    match q2.pop() {
                        Some(e) => break e,
                        None => spin_loop(),
                    }
                };
                let (seq, ts) = fields(&e);
                check.take(seq, ts);
            }
        },
    )
}

fn runner(queue: Queue) -> fn(u64) -> (Duration, Checker) {
    match queue {
        Queue::Raw => raw,
        Queue::RawPadded => raw_padded,
        Queue::Rtrb => rtrb,
        Queue::Crossbeam => crossbeam,
    }
}

/// Transfers `n` elements through `queue`; returns the time from the common start until
/// the consumer had them all (thread start-up excluded).
pub fn transfer(queue: Queue, n: u64) -> Duration {
    runner(queue)(n).0
}

/// One SPSC case.
pub fn spsc_case(queue: Queue, budget: &Budget) -> CaseResult {
    let run = runner(queue);
    run(budget.spsc_elements / 10); // warm-up
    let n = budget.spsc_elements;
    let (elapsed, checker) = run(n);
    assert_eq!(checker.next, n);
    let mut note = format!(
        "capacity {CAPACITY}, {n} elements, one per operation; latency = push-to-pop of every \
         {SAMPLE_EVERY}th element (queue residence included)"
    );
    match queue {
        Queue::Raw => note.push_str(
            "; HeapRings: reserve_single/write/publish, peek/release per element, no wake-up \
             fence",
        ),
        Queue::RawPadded => note.push_str(
            "; as ring/raw over a padded layout (head/tail/flags on own lines, 64-byte-aligned \
             slots)",
        ),
        _ => {}
    }
    result(queue.name(), 1, n, elapsed, checker.samples, note)
}
