//! The NEED_WAKEUP handshake: a consumer that finds nothing sets the flag, fences and
//! looks once more before it sleeps; a producer fences after publishing and kicks if it sees
//! the flag. A lost wake-up leaves the consumer asleep forever, which loom reports as a
//! deadlock.

#![cfg(loom)]

use loom::{
    sync::{Arc, Condvar, Mutex},
    thread,
};
use loom_tests::{check_entry, entry, model, submit, SqConsumer};
use sbpf_ring::{protocol::Event, region::HeapRings};

/// Entries the producer submits.
const N: u32 = 2;

/// The kernel's sleep: a wait queue that only a kick ends (the ENTER ioctl's wake-up). It
/// re-checks nothing itself, so the handshake alone must prevent a lost wake-up.
#[derive(Default)]
struct Kick {
    kicked: Mutex<bool>,
    cond: Condvar,
}

/// How the consumer sleeps and how a producer wakes it.
trait Sleep: Send + Sync + 'static {
    /// Sleeps; `ready` is the consumer's re-check, for sleeps that make one.
    fn sleep(&self, ready: &dyn Fn() -> bool);
    /// Wakes a sleeping consumer.
    fn kick(&self);
}

impl Sleep for Kick {
    fn sleep(&self, _ready: &dyn Fn() -> bool) {
        let mut kicked = self.kicked.lock().unwrap();
        while !*kicked {
            kicked = self.cond.wait(kicked).unwrap();
        }
        *kicked = false;
    }

    fn kick(&self) {
        *self.kicked.lock().unwrap() = true;
        self.cond.notify_one();
    }
}

/// The local backend's sleep: the poller waits on an [`Event`] with the same re-check; the
/// producer's kick is `Event::notify`.
impl Sleep for Event {
    fn sleep(&self, ready: &dyn Fn() -> bool) {
        self.wait(ready, None);
    }

    fn kick(&self) {
        self.notify();
    }
}

/// One producer publishes `N` entries and kicks when `after_publish` says so; the consumer
/// takes them, and when it finds nothing it runs `prepare_sleep` and sleeps.
fn handshake<S: Sleep>(sleeper: fn() -> S) {
    model(move || {
        let rings = Arc::new(HeapRings::new(2, 1));
        let sleeper = Arc::new(sleeper());
        let producer = {
            let (rings, sleeper) = (Arc::clone(&rings), Arc::clone(&sleeper));
            thread::spawn(move || {
                let sq = rings.sq();
                for i in 0..N {
                    submit(&sq, &entry(0, i));
                    if sq.after_publish() {
                        sleeper.kick();
                    }
                }
            })
        };
        let sq = rings.sq();
        let mut consumer = SqConsumer::new(sq);
        let mut i = 0;
        while i < N {
            if let Some(sqe) = consumer.take() {
                assert_eq!(check_entry(&sqe), (0, i));
                i += 1;
                continue;
            }
            let head = consumer.head;
            let ready = || sq.is_published(head);
            if sq.prepare_sleep(false, ready) {
                sleeper.sleep(&ready);
                sq.clear_wakeup();
            }
        }
        producer.join().unwrap();
    });
}

/// The handshake with a sleep that only a kick ends.
#[test]
fn need_wakeup_kick() {
    handshake(Kick::default);
}

/// The handshake as the local backend runs it.
#[test]
fn need_wakeup_event() {
    handshake(Event::new);
}

/// The full-CQ sleep: a kernel that cannot post because the completion ring is full sets
/// NEED_WAKEUP, fences and looks at the room once more before it sleeps; the consumer,
/// after releasing slots, fences and kicks if it sees the flag (`CqView::after_release`).
/// A lost wake-up leaves the kernel asleep with room it never sees, and the consumer
/// waiting for a completion forever.
fn full_cq_sleep<S: Sleep>(sleeper: fn() -> S) {
    model(move || {
        let rings = Arc::new(HeapRings::new(2, 1));
        let sleeper = Arc::new(sleeper());
        let sq = rings.sq();
        for i in 0..2 {
            submit(&sq, &entry(0, i));
        }
        let consumer = {
            let (rings, sleeper) = (Arc::clone(&rings), Arc::clone(&sleeper));
            thread::spawn(move || {
                let (sq, cq) = (rings.sq(), rings.cq());
                let mut head = 0u32;
                while head < 2 {
                    if cq.available() == head {
                        thread::yield_now();
                        continue;
                    }
                    // SAFETY: the model's one completion consumer; `head` is before the
                    // tail just loaded and not released.
                    let cqe = unsafe { cq.read(head) };
                    assert_eq!(cqe.user_data, entry(0, head).user_data);
                    head += 1;
                    cq.release(head);
                    if cq.after_release(&sq, sbpf_ring::abi::SQ_CQ_FULL) {
                        sleeper.kick();
                    }
                }
            })
        };
        let cq = rings.cq();
        let mut consumer_side = SqConsumer::new(sq);
        let mut cq_tail = 0u32;
        while cq_tail < 2 {
            let head = consumer_side.head;
            if cq.room(cq_tail) > 0 {
                if let Some(sqe) = consumer_side.take() {
                    let cqe = sbpf_ring::Cqe {
                        user_data: sqe.user_data,
                        ..Default::default()
                    };
                    // SAFETY: the model's one completion producer, at its private tail,
                    // with room.
                    unsafe { cq.write(cq_tail, &cqe) };
                    cq_tail += 1;
                    cq.publish(cq_tail);
                    continue;
                }
            }
            let ready = || sq.is_published(head) && cq.room(cq_tail) > 0;
            let cq_full = cq.room(cq_tail) == 0;
            if sq.prepare_sleep(cq_full, ready) {
                sleeper.sleep(&ready);
                sq.clear_wakeup();
            }
        }
        consumer.join().unwrap();
    });
}

/// The full-CQ sleep with a sleep that only a kick ends.
#[test]
fn full_cq_kick() {
    full_cq_sleep(Kick::default);
}

/// The full-CQ sleep as the local backend runs it.
#[test]
fn full_cq_event() {
    full_cq_sleep(Event::new);
}
