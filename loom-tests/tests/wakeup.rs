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

impl Kick {
    fn sleep(&self) {
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

/// The handshake with a sleep that only a kick ends.
#[test]
fn need_wakeup_kick() {
    model(|| {
        let rings = Arc::new(HeapRings::new(2, 1));
        let kick = Arc::new(Kick::default());
        let producer = {
            let (rings, kick) = (Arc::clone(&rings), Arc::clone(&kick));
            thread::spawn(move || {
                let sq = rings.sq();
                for i in 0..N {
                    submit(&sq, &entry(0, i));
                    if sq.after_publish() {
                        kick.kick();
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
            if sq.prepare_sleep(|| sq.is_published(head)) {
                kick.sleep();
                sq.clear_wakeup();
            }
        }
        producer.join().unwrap();
    });
}

/// The handshake as the local backend runs it: the poller sleeps on an [`Event`] with the
/// same re-check, the producer's kick is `Event::notify`.
#[test]
fn need_wakeup_event() {
    model(|| {
        let rings = Arc::new(HeapRings::new(2, 1));
        let event = Arc::new(Event::new());
        let producer = {
            let (rings, event) = (Arc::clone(&rings), Arc::clone(&event));
            thread::spawn(move || {
                let sq = rings.sq();
                for i in 0..N {
                    submit(&sq, &entry(0, i));
                    if sq.after_publish() {
                        event.notify();
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
            if sq.prepare_sleep(ready) {
                event.wait(ready, None);
                sq.clear_wakeup();
            }
        }
        producer.join().unwrap();
    });
}
