//! The submission ring: producers reserve, write and publish; the consumer peeks at its
//! private head, copies and releases. Steps 2–6 of the ordering contract.

#![cfg(loom)]

use loom::{sync::Arc, thread};
use loom_tests::{check_entry, entry, model, submit, try_submit, SqConsumer};
use sbpf_ring::region::HeapRings;
use sbpf_ring::Sqe;

/// Two producers, two entries each, into a 2-entry ring that wraps twice: each published
/// entry is consumed once, with the bytes its producer wrote, in its producer's order; a
/// producer is refused only while the ring is full.
#[test]
fn two_producers_wrap() {
    model(|| {
        let rings = Arc::new(HeapRings::new(2, 1));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let rings = Arc::clone(&rings);
                thread::spawn(move || {
                    let mut published = 0;
                    for i in 0..2 {
                        if try_submit(&rings.sq(), &entry(p, i)).is_none() {
                            break;
                        }
                        published += 1;
                    }
                    published
                })
            })
            .collect();
        let mut consumer = SqConsumer::new(rings.sq());
        let mut next = [0u32; 2];
        let mut take = |sqe: Sqe| {
            let (p, i) = check_entry(&sqe);
            assert_eq!(i, next[p as usize], "producer {p} out of order");
            next[p as usize] += 1;
        };
        for _ in 0..4 {
            match consumer.try_take() {
                Some(sqe) => take(sqe),
                None => break,
            }
        }
        let published: Vec<u32> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        while let Some(sqe) = consumer.take() {
            take(sqe);
        }
        assert_eq!(next.to_vec(), published, "an entry lost or consumed twice");
    });
}

/// The single-producer fast path: a private tail, a cached head refreshed only when the
/// ring looks full, three entries through a 2-entry ring.
#[test]
fn single_producer() {
    model(|| {
        let rings = Arc::new(HeapRings::new(2, 1));
        let producer = {
            let rings = Arc::clone(&rings);
            thread::spawn(move || {
                let sq = rings.sq();
                let (mut tail, mut cached_head) = (0u32, 0u32);
                for i in 0..3 {
                    while sq.reserve_single(tail, &mut cached_head, 1) == 0 {
                        thread::yield_now();
                    }
                    // SAFETY: `tail` is reserved by this producer and not published.
                    unsafe { sq.write(tail, &entry(0, i)) };
                    sq.publish(tail);
                    tail = tail.wrapping_add(1);
                }
            })
        };
        let mut consumer = SqConsumer::new(rings.sq());
        for i in 0..3 {
            assert_eq!(check_entry(&consumer.take_blocking()), (0, i));
        }
        producer.join().unwrap();
    });
}

/// Batch publication: reserve two, write both, one release fence, relaxed `seq` stores;
/// the second batch reuses both slots. Over `reserve_single` and over `reserve`.
#[test]
fn batch_publish() {
    for shared in [false, true] {
        model(move || {
            let rings = Arc::new(HeapRings::new(2, 1));
            let producer = {
                let rings = Arc::clone(&rings);
                thread::spawn(move || {
                    let sq = rings.sq();
                    let (mut tail, mut cached_head) = (0u32, 0u32);
                    let mut i = 0;
                    while i < 4 {
                        let (pos, n) = if shared {
                            match sq.reserve(2) {
                                Some(r) => r,
                                None => (tail, 0),
                            }
                        } else {
                            (tail, sq.reserve_single(tail, &mut cached_head, 2))
                        };
                        if n == 0 {
                            thread::yield_now();
                            continue;
                        }
                        assert_eq!(pos, tail);
                        for k in 0..n {
                            // SAFETY: reserved by this producer, not published.
                            unsafe { sq.write(pos.wrapping_add(k), &entry(0, i + k)) };
                        }
                        sq.publish_batch(pos, n);
                        tail = tail.wrapping_add(n);
                        i += n;
                    }
                })
            };
            let mut consumer = SqConsumer::new(rings.sq());
            for i in 0..4 {
                assert_eq!(check_entry(&consumer.take_blocking()), (0, i));
            }
            producer.join().unwrap();
        });
    }
}

/// Backpressure: a full ring refuses a reservation (`None`, or 0 on the fast path) and
/// nothing in it is overwritten; once the consumer has taken a slot, the waiting producer
/// reuses it, after the consumer's copy.
#[test]
fn full_ring() {
    model(|| {
        let rings = Arc::new(HeapRings::new(2, 1));
        let sq = rings.sq();
        submit(&sq, &entry(0, 0));
        submit(&sq, &entry(0, 1));
        assert_eq!(sq.reserve(1), None);
        let mut cached_head = 0;
        assert_eq!(sq.reserve_single(2, &mut cached_head, 1), 0);
        assert_eq!(sq.tail.load(loom::sync::atomic::Ordering::Relaxed), 2);

        let producer = {
            let rings = Arc::clone(&rings);
            thread::spawn(move || {
                let sq = rings.sq();
                // Refused while the consumer has not released slot 0; never overwrites it.
                let pos = loop {
                    match sq.reserve(1) {
                        Some((pos, _)) => break pos,
                        None => thread::yield_now(),
                    }
                };
                assert_eq!(pos, 2);
                // SAFETY: `pos` is reserved by this producer and not published.
                unsafe { sq.write(pos, &entry(1, 0)) };
                sq.publish(pos);
            })
        };
        let mut consumer = SqConsumer::new(sq);
        assert_eq!(check_entry(&consumer.take_blocking()), (0, 0));
        assert_eq!(check_entry(&consumer.take_blocking()), (0, 1));
        assert_eq!(check_entry(&consumer.take_blocking()), (1, 0));
        producer.join().unwrap();
    });
}

/// Backpressure on the single-producer path: the handle asks for room from its cached head
/// (`room_single`), which reloads the shared head only when the cache says full, then
/// reserves without a CAS. The slot it gets back is one the consumer has finished copying.
#[test]
fn full_ring_single() {
    model(|| {
        let rings = Arc::new(HeapRings::new(2, 1));
        let sq = rings.sq();
        submit(&sq, &entry(0, 0));
        submit(&sq, &entry(0, 1));

        let producer = {
            let rings = Arc::clone(&rings);
            thread::spawn(move || {
                let sq = rings.sq();
                let (tail, mut cached_head) = (2u32, 0u32);
                while sq.room_single(tail, &mut cached_head) == 0 {
                    thread::yield_now();
                }
                assert_eq!(sq.reserve_single(tail, &mut cached_head, 1), 1);
                // SAFETY: `tail` is reserved by this producer and not published.
                unsafe { sq.write(tail, &entry(1, 0)) };
                sq.publish(tail);
            })
        };
        let mut consumer = SqConsumer::new(sq);
        assert_eq!(check_entry(&consumer.take_blocking()), (0, 0));
        assert_eq!(check_entry(&consumer.take_blocking()), (0, 1));
        assert_eq!(check_entry(&consumer.take_blocking()), (1, 0));
        producer.join().unwrap();
    });
}
