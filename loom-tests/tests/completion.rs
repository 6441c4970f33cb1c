//! The completion ring: the kernel posts only into free slots and publishes its tail; the
//! consumer reads up to that tail and releases. Steps 7–9 of the ordering contract.

#![cfg(loom)]

use loom::{sync::Arc, thread};
use loom_tests::{check_completion, check_entry, completion, entry, model, CqConsumer, LOOKS};
use sbpf_ring::{region::HeapRings, Cqe};

/// Posts completions `next..total` as room allows (looking [`LOOKS`] times), each round
/// writing every free slot and publishing once. Returns the new `(tail, next)`.
fn post(rings: &HeapRings, mut tail: u32, mut next: u32, total: u32) -> (u32, u32) {
    let cq = rings.cq();
    for _ in 0..LOOKS {
        let n = cq.room(tail).min(total - next);
        if n == 0 {
            if next == total {
                break;
            }
            thread::yield_now();
            continue;
        }
        for _ in 0..n {
            // SAFETY: the model's one completion producer, at its private tail, with room.
            unsafe { cq.write(tail, &completion(next)) };
            tail = tail.wrapping_add(1);
            next += 1;
        }
        cq.publish(tail);
    }
    (tail, next)
}

/// Four completions through a 2-entry ring: each read once, intact, in order; the kernel
/// never writes a slot the consumer has not released.
#[test]
fn completions_wrap() {
    model(|| {
        let rings = Arc::new(HeapRings::new(1, 2));
        let kernel = {
            let rings = Arc::clone(&rings);
            thread::spawn(move || post(&rings, 0, 0, 4))
        };
        let mut consumer = CqConsumer::new(rings.cq());
        let mut got = Vec::new();
        for _ in 0..LOOKS + 1 {
            if consumer.drain(&mut got) == 0 {
                thread::yield_now();
            }
        }
        let (mut tail, mut next) = kernel.join().unwrap();
        while next < 4 || consumer.head != tail {
            (tail, next) = post(&rings, tail, next, 4);
            consumer.drain(&mut got);
        }
        let order: Vec<u32> = got.iter().map(check_completion).collect();
        assert_eq!(order, [0, 1, 2, 3]);
    });
}

/// Backpressure: with the completion ring full the kernel sees no room and takes no
/// submission; once the consumer frees slots it takes the rest, and every submission gets
/// exactly one completion.
#[test]
fn full_completion_ring() {
    model(|| {
        let rings = Arc::new(HeapRings::new(4, 2));
        let sq = rings.sq();
        for i in 0..3 {
            loom_tests::submit(&sq, &entry(0, i));
        }
        // The kernel's pass: take submissions only while a completion slot is free.
        let pass = |rings: &HeapRings, sq_head: &mut u32, cq_tail: &mut u32| {
            let (sq, cq) = (rings.sq(), rings.cq());
            let room = cq.room(*cq_tail);
            let mut n = 0;
            while n < room {
                // SAFETY: the model's one consumer, at its private head, not yet released.
                let Some(sqe) = (unsafe { sq.peek(*sq_head) }) else {
                    break;
                };
                *sq_head = sq_head.wrapping_add(1);
                let cqe = Cqe {
                    user_data: sqe.user_data,
                    res: check_entry(&sqe).1 as i32,
                    ..Cqe::default()
                };
                // SAFETY: the one completion producer, at its private tail, within `room`.
                unsafe { cq.write(*cq_tail, &cqe) };
                *cq_tail = cq_tail.wrapping_add(1);
                n += 1;
            }
            if n > 0 {
                sq.release(*sq_head);
                cq.publish(*cq_tail);
            }
            n
        };
        let (mut sq_head, mut cq_tail) = (0, 0);
        assert_eq!(pass(&rings, &mut sq_head, &mut cq_tail), 2);
        assert_eq!(rings.cq().room(cq_tail), 0);
        assert_eq!(
            pass(&rings, &mut sq_head, &mut cq_tail),
            0,
            "took into a full ring"
        );

        let kernel = {
            let rings = Arc::clone(&rings);
            thread::spawn(move || {
                for _ in 0..LOOKS {
                    if pass(&rings, &mut sq_head, &mut cq_tail) == 0 {
                        thread::yield_now();
                    }
                }
                (sq_head, cq_tail)
            })
        };
        let mut consumer = CqConsumer::new(rings.cq());
        let mut got = Vec::new();
        for _ in 0..LOOKS {
            if consumer.drain(&mut got) == 0 {
                thread::yield_now();
            }
        }
        let (mut sq_head, mut cq_tail) = kernel.join().unwrap();
        while got.len() < 3 {
            pass(&rings, &mut sq_head, &mut cq_tail);
            consumer.drain(&mut got);
        }
        let order: Vec<i32> = got.iter().map(|c| c.res).collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(
            pass(&rings, &mut sq_head, &mut cq_tail),
            0,
            "a completion too many"
        );
        assert_eq!(consumer.drain(&mut got), 0);
    });
}
