//! Loom models of the sbpf-ring protocol.
//!
//! The models live in `tests/`; each drives the real functions of [`sbpf_ring::protocol`]
//! over [`sbpf_ring::region::HeapRings`], built with `--cfg loom` so that the ring's atomics
//! and slot cells are loom's. This library holds what they share: the model builder, entries
//! whose every field says who wrote them, and the consumer side as the local poller runs it.
//! `run.sh` runs the models, then checks that each deliberately weakened ordering
//! (`--cfg loom_weaken="<site>"`) makes its model fail. See the README.

#![cfg(loom)]

use sbpf_ring::{
    protocol::{CqView, SqView},
    Cqe, Sqe,
};

/// Runs `f` under loom, exploring every interleaving within the preemption bound given by
/// `LOOM_MAX_PREEMPTIONS` (read by the builder). The branch limit is raised from loom's
/// 1000: a thread waiting for a slot or an entry yields in a loop, and each yield is a
/// branch.
pub fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    builder.check(f);
}

/// The entry producer `producer` submits as its `i`-th: every field depends on both, so a
/// torn, stale or misdirected slot shows in [`check_entry`].
pub fn entry(producer: u32, i: u32) -> Sqe {
    let tag = u64::from(producer) << 32 | u64::from(i);
    Sqe {
        opcode: 5 + producer as u8,
        obj_id: 100 + producer,
        obj_off: tag.wrapping_mul(8),
        arena_off: !tag,
        len: 1000 * producer + i,
        user_data: tag,
        val: tag ^ 0x5a5a_5a5a_5a5a_5a5a,
        cmp: tag.rotate_left(17),
        ..Sqe::default()
    }
}

/// The `(producer, i)` of an entry made by [`entry`], asserting that every field agrees.
pub fn check_entry(sqe: &Sqe) -> (u32, u32) {
    let (producer, i) = ((sqe.user_data >> 32) as u32, sqe.user_data as u32);
    let expected = entry(producer, i);
    assert_eq!(
        *sqe,
        Sqe {
            seq: sqe.seq,
            ..expected
        },
        "entry ({producer}, {i}) torn or stale"
    );
    (producer, i)
}

/// The completion the kernel posts for its `i`-th completion.
pub fn completion(i: u32) -> Cqe {
    Cqe {
        user_data: 0xc0de_0000 + u64::from(i),
        res: i as i32,
        flags: 0,
        value: u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        resv: !u64::from(i),
    }
}

/// The index of a completion made by [`completion`], asserting that every field agrees.
pub fn check_completion(cqe: &Cqe) -> u32 {
    let i = cqe.res as u32;
    assert_eq!(*cqe, completion(i), "completion {i} torn or stale");
    i
}

/// How many times a model's thread looks again for a slot or an entry before it gives up.
/// Unbounded waiting loops multiply loom's executions (each look may read any value not yet
/// overwritten for it); a bounded one still covers every interleaving of the orderings, and
/// the model checks afterwards, single-threaded, that nothing was lost.
pub const LOOKS: u32 = 2;

/// A producer sharing the ring: reserve one position (looking [`LOOKS`] times while full),
/// write, publish. Returns the position, or `None` if the ring stayed full.
pub fn try_submit(sq: &SqView<'_>, sqe: &Sqe) -> Option<u32> {
    for _ in 0..LOOKS {
        match sq.reserve(1) {
            Some((pos, 1)) => {
                // SAFETY: `pos` was just reserved by this producer and is not published.
                unsafe { sq.write(pos, sqe) };
                sq.publish(pos);
                return Some(pos);
            }
            Some(other) => panic!("reserve(1) gave {other:?}"),
            None => loom::thread::yield_now(),
        }
    }
    None
}

/// A producer sharing the ring, waiting as long as it takes for a slot.
pub fn submit(sq: &SqView<'_>, sqe: &Sqe) -> u32 {
    loop {
        if let Some(pos) = try_submit(sq, sqe) {
            return pos;
        }
    }
}

/// The submission ring's consumer as the poller runs it: a private head, `peek` at it, and
/// `release` after the copy.
#[derive(Debug)]
pub struct SqConsumer<'a> {
    /// The ring.
    pub sq: SqView<'a>,
    /// The private head.
    pub head: u32,
}

impl<'a> SqConsumer<'a> {
    /// A consumer at position 0.
    pub fn new(sq: SqView<'a>) -> Self {
        SqConsumer { sq, head: 0 }
    }

    /// Takes the entry at the head if it is published, and hands its slot back.
    pub fn take(&mut self) -> Option<Sqe> {
        // SAFETY: the model's one consumer, at its private head, not yet released.
        let sqe = unsafe { self.sq.peek(self.head) }?;
        self.head = self.head.wrapping_add(1);
        self.sq.release(self.head);
        Some(sqe)
    }

    /// Takes the next entry, looking [`LOOKS`] times.
    pub fn try_take(&mut self) -> Option<Sqe> {
        for _ in 0..LOOKS {
            if let Some(sqe) = self.take() {
                return Some(sqe);
            }
            loom::thread::yield_now();
        }
        None
    }

    /// Takes the next entry, yielding to the other threads until it is published.
    pub fn take_blocking(&mut self) -> Sqe {
        loop {
            if let Some(sqe) = self.take() {
                return sqe;
            }
            loom::thread::yield_now();
        }
    }
}

/// The completion ring's consumer: reads up to the kernel's tail, then releases.
#[derive(Debug)]
pub struct CqConsumer<'a> {
    /// The ring.
    pub cq: CqView<'a>,
    /// The private head.
    pub head: u32,
}

impl<'a> CqConsumer<'a> {
    /// A consumer at position 0.
    pub fn new(cq: CqView<'a>) -> Self {
        CqConsumer { cq, head: 0 }
    }

    /// Reads every available completion into `out` and hands the slots back; returns how
    /// many.
    pub fn drain(&mut self, out: &mut Vec<Cqe>) -> u32 {
        let tail = self.cq.available();
        let n = tail.wrapping_sub(self.head);
        assert!(
            n <= self.cq.entries(),
            "tail {tail} beyond head {}",
            self.head
        );
        while self.head != tail {
            // SAFETY: the model's one completion consumer; `head` is before the tail it
            // loaded and not released.
            out.push(unsafe { self.cq.read(self.head) });
            self.head = self.head.wrapping_add(1);
        }
        if n > 0 {
            self.cq.release(self.head);
        }
        n
    }
}
