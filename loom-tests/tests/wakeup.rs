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
            if sq.prepare_sleep(ready) {
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
