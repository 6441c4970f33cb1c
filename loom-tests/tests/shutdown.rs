//! Shutdown while a producer publishes: `Gate::close` against reserve, write, `Gate::admit`,
//! publish and `after_publish`, as `Submitter::submit` runs them. Every entry must be either
//! consumed or refused to its producer, never both, never neither.

#![cfg(loom)]

use loom::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread,
};
use loom_tests::{check_entry, entry, model, SqConsumer, LOOKS};
use sbpf_ring::{protocol::Gate, region::HeapRings};

/// Entries the producer tries to submit.
const N: u32 = 2;

/// The gate alone: the consumer waits for the final tail, then takes everything before it.
/// Every entry the gate admits is before the final tail, every entry before it is admitted.
#[test]
fn close_while_publishing() {
    close_model(false);
}

/// The local backend's shutdown: the poller learns the final tail only after `close`
/// returns (`Local::stop`, a release store) and takes published entries until then; the
/// kernel's consumer never learns it. A refused entry must therefore never be published.
/// (This model found the earlier protocol, which checked the gate after publishing, wrong:
/// see the README.)
#[test]
fn close_while_consuming() {
    close_model(true);
}

/// One producer submits while a closer shuts the ring; `consume_early`: the consumer takes
/// published entries before it knows the final tail.
fn close_model(consume_early: bool) {
    model(move || {
        let rings = Arc::new(HeapRings::new(2, 1));
        let gate = Arc::new(Gate::new());
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let producer = {
            let (rings, gate) = (Arc::clone(&rings), Arc::clone(&gate));
            thread::spawn(move || {
                let sq = rings.sq();
                let mut admitted = Vec::new();
                for i in 0..N {
                    if gate.is_closed() {
                        break;
                    }
                    let pos = loop {
                        match sq.reserve(1) {
                            Some((pos, 1)) => break pos,
                            Some(other) => panic!("reserve(1) gave {other:?}"),
                            None => thread::yield_now(),
                        }
                    };
                    // SAFETY: `pos` is reserved by this producer and not published.
                    unsafe { sq.write(pos, &entry(0, i)) };
                    if !gate.admit(pos) {
                        break;
                    }
                    sq.publish(pos);
                    sq.after_publish();
                    admitted.push(i);
                }
                admitted
            })
        };
        let closer = {
            let (rings, gate, stop_at) =
                (Arc::clone(&rings), Arc::clone(&gate), Arc::clone(&stop_at));
            thread::spawn(move || {
                let final_tail = gate.close(&rings.sq());
                stop_at.store(u64::from(final_tail), Ordering::Release);
            })
        };
        let mut consumer = SqConsumer::new(rings.sq());
        let mut consumed = Vec::new();
        // The poller's pass, bounded as in `SqConsumer::try_take`; after the joins it runs
        // on alone to the final tail.
        let mut pass = |consumer: &mut SqConsumer<'_>| {
            let stop = stop_at.load(Ordering::Acquire);
            if stop == u64::from(consumer.head) {
                return true;
            }
            if stop == u64::MAX && !consume_early {
                thread::yield_now();
                return false;
            }
            assert!(
                stop == u64::MAX || (stop as u32).wrapping_sub(consumer.head) as i32 > 0,
                "consumed position {} at or after the final tail {stop}",
                consumer.head.wrapping_sub(1),
            );
            match consumer.take() {
                Some(sqe) => consumed.push(check_entry(&sqe).1),
                None => thread::yield_now(),
            }
            false
        };
        for _ in 0..N + LOOKS {
            if pass(&mut consumer) {
                break;
            }
        }
        let admitted = producer.join().unwrap();
        closer.join().unwrap();
        while !pass(&mut consumer) {}
        assert_eq!(consumed, admitted, "consumed vs admitted by the gate");
    });
}

/// A completion waiter blocked while the ring closes: the local poller posts what it can,
/// then marks itself finished (a release store) and notifies the completion event, as
/// `Local::finish` does; the waiter, in `Event::wait` with the re-check
/// `CompletionQueue::wait` uses, must return, with its completions or seeing the poller
/// gone. A lost wake-up leaves it blocked, which loom reports as a deadlock.
#[test]
fn close_wakes_a_blocked_waiter() {
    use loom::sync::atomic::{AtomicBool, AtomicU32};
    use sbpf_ring::protocol::Event;

    model(|| {
        let event = Arc::new(Event::new());
        let finished = Arc::new(AtomicBool::new(false));
        let posted = Arc::new(AtomicU32::new(0));
        let waiter = {
            let (event, finished, posted) = (
                Arc::clone(&event),
                Arc::clone(&finished),
                Arc::clone(&posted),
            );
            thread::spawn(move || {
                // Waits for two completions; only one is ever posted.
                let ready =
                    || posted.load(Ordering::Acquire) >= 2 || finished.load(Ordering::Acquire);
                while !ready() {
                    event.wait(ready, None);
                }
                assert!(finished.load(Ordering::Acquire));
                posted.load(Ordering::Acquire)
            })
        };
        posted.store(1, Ordering::Release);
        event.notify();
        finished.store(true, Ordering::Release);
        event.notify();
        assert_eq!(waiter.join().unwrap(), 1);
    });
}
