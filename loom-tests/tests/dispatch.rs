//! The dispatcher's waiting protocol (`sbpf_ring::waiters`, the code `Dispatcher::call`
//! runs): callers that lead or park, a "kernel" that posts their completions, a leader
//! that wakes a parked caller by routing its completion or by stepping down, and a close
//! that wakes a parked caller whose request will never complete. A lost wake-up is a
//! deadlock; a result read before it was written is a wrong value.

#![cfg(loom)]

use loom::{
    sync::{Arc, Condvar, Mutex},
    thread,
};
use loom_tests::model;
use sbpf_ring::{
    waiters::{Parked, Waiters},
    Cqe,
};

/// The completion ring as the models need it: completions appear, a leader drains them
/// or blocks until one appears (as `CompletionQueue::wait`).
#[derive(Default)]
struct Cq {
    posted: Mutex<Vec<Cqe>>,
    ready: Condvar,
}

impl Cq {
    fn post(&self, user_data: u64, res: i32) {
        self.posted.lock().unwrap().push(Cqe {
            user_data,
            res,
            ..Cqe::default()
        });
        self.ready.notify_all();
    }

    /// Leader: routes what is posted; blocks until something is if `block`.
    fn drain(&self, w: &Waiters, block: bool) {
        let mut posted = self.posted.lock().unwrap();
        while block && posted.is_empty() {
            posted = self.ready.wait(posted).unwrap();
        }
        for c in posted.drain(..) {
            w.complete(&c);
        }
    }
}

/// A blocking call's wait for slot `index`, as `dispatch::State::wait` runs it (without
/// the spin): take the result (and pass on a promotion), or lead until it is there, or
/// park.
fn wait(w: &Waiters, cq: &Cq, index: u32) -> Option<Cqe> {
    loop {
        if let Some(c) = w.take(index) {
            w.leave();
            return Some(c);
        }
        if w.try_lead() {
            cq.drain(w, false);
            while !w.is_done(index) {
                cq.drain(w, true);
            }
            w.unlead();
            continue;
        }
        if w.park(index, None) == Parked::Closed {
            return w.take(index);
        }
    }
}

/// A caller parks while another thread leads; the leader routes the caller's completion
/// and must wake it with the result the kernel posted.
#[test]
fn leader_wakes_a_parked_caller() {
    model(|| {
        let w = Arc::new(Waiters::new(2, 0x5a5a));
        let cq = Arc::new(Cq::default());
        let (index, user_data) = w.alloc().unwrap();
        // Another thread holds the lead from the start (it is in its own call).
        assert!(w.try_lead());
        let leader = {
            let (w, cq) = (Arc::clone(&w), Arc::clone(&cq));
            thread::spawn(move || {
                cq.post(user_data, 7);
                cq.drain(&w, true);
                w.unlead();
            })
        };
        let c = wait(&w, &cq, index).expect("completed");
        assert_eq!((c.res, c.user_data), (7, user_data));
        leader.join().unwrap();
        assert_eq!(w.in_use(), 0);
    });
}

/// Two callers; the kernel posts their completions one at a time. Whoever leads first may
/// have its own result before the other's is posted: it must step down and hand the lead
/// to the parked one (or the parked one must see no leader), which then leads itself.
#[test]
fn a_leader_that_leaves_promotes_a_parked_caller() {
    model(|| {
        let w = Arc::new(Waiters::new(2, 0));
        let cq = Arc::new(Cq::default());
        let (a, ua) = w.alloc().unwrap();
        let (b, ub) = w.alloc().unwrap();
        let kernel = {
            let cq = Arc::clone(&cq);
            thread::spawn(move || {
                cq.post(ua, 1);
                cq.post(ub, 2);
            })
        };
        let other = {
            let (w, cq) = (Arc::clone(&w), Arc::clone(&cq));
            thread::spawn(move || wait(&w, &cq, b).expect("completed").res)
        };
        assert_eq!(wait(&w, &cq, a).expect("completed").res, 1);
        assert_eq!(other.join().unwrap(), 2);
        kernel.join().unwrap();
        assert_eq!(w.in_use(), 0);
        assert_eq!(w.counts().routed, 2);
    });
}

/// Two parked callers under a leader that routes only the first one's completion, then
/// steps down and only then posts the second one's. Its promotion may unpark the first
/// caller, which is leaving with its result and will not lead: that caller must pass the
/// promotion on (`leave`), or the second waits parked with no one routing.
#[test]
fn a_caller_leaving_with_its_result_passes_a_promotion_on() {
    model(|| {
        let w = Arc::new(Waiters::new(3, 0));
        let cq = Arc::new(Cq::default());
        let (a, ua) = w.alloc().unwrap();
        let (b, ub) = w.alloc().unwrap();
        assert!(w.try_lead());
        let leader = {
            let (w, cq) = (Arc::clone(&w), Arc::clone(&cq));
            thread::spawn(move || {
                cq.post(ua, 1);
                cq.drain(&w, true);
                w.unlead();
                cq.post(ub, 2);
            })
        };
        let first = {
            let (w, cq) = (Arc::clone(&w), Arc::clone(&cq));
            thread::spawn(move || wait(&w, &cq, a).expect("completed").res)
        };
        assert_eq!(wait(&w, &cq, b).expect("completed").res, 2);
        assert_eq!(first.join().unwrap(), 1);
        leader.join().unwrap();
        assert_eq!(w.in_use(), 0);
    });
}

/// A caller parks while a leader that will never route its completion holds the lead; the
/// ring closes: the caller must wake and see it closed.
#[test]
fn close_wakes_a_parked_caller() {
    model(|| {
        let w = Arc::new(Waiters::new(2, 0));
        let (index, _) = w.alloc().unwrap();
        assert!(w.try_lead());
        let caller = {
            let w = Arc::clone(&w);
            thread::spawn(move || loop {
                if w.take(index).is_some() {
                    return false;
                }
                if w.park(index, None) == Parked::Closed || w.closed_hint() {
                    return true;
                }
            })
        };
        w.close();
        assert!(caller.join().unwrap());
    });
}

/// A stale and a forged completion posted before the real one are dropped and counted;
/// the caller gets its own.
#[test]
fn stale_and_forged_completions_are_dropped() {
    model(|| {
        let w = Arc::new(Waiters::new(2, 0x1234));
        let cq = Arc::new(Cq::default());
        let (old, old_ud) = w.alloc().unwrap();
        w.cancel_unsubmitted(old);
        let (index, user_data) = w.alloc().unwrap();
        let kernel = {
            let cq = Arc::clone(&cq);
            thread::spawn(move || {
                cq.post(old_ud, -1);
                cq.post(0x1234 ^ 99, -2);
                cq.post(user_data, 5);
            })
        };
        assert_eq!(wait(&w, &cq, index).expect("completed").res, 5);
        kernel.join().unwrap();
        // The kernel may post the stale and forged ones after our completion was routed.
        cq.drain(&w, false);
        let counts = w.counts();
        assert_eq!((counts.routed, counts.stale, counts.forged), (1, 1, 1));
    });
}

/// Wakes a parked loom thread: the waker of a "task" in these models.
struct Unpark(loom::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// A task registers its waker (no parked list: `InFlight::poll`'s path) and then looks at
/// `is_closed`; `close` (flag, full fence, scan of the slots for registered waiters) must
/// either find the waker or be seen.
#[test]
fn close_wakes_a_registered_task() {
    model(|| {
        let w = Arc::new(Waiters::new(2, 0));
        let (index, _) = w.alloc().unwrap();
        let task = {
            let w = Arc::clone(&w);
            thread::spawn(move || {
                let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(thread::current())));
                assert!(w.register(index, sbpf_ring::waiters::Waiter::Task(waker)));
                if !w.is_closed() {
                    thread::park();
                }
            })
        };
        w.close();
        task.join().unwrap();
    });
}

/// Sets its flag when dropped: the orphan (a buffer) of a given-up request.
struct DropFlag(Arc<loom::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// A router moves a request to DONE and is preempted before it takes the waiter; the
/// owner takes the result, the slot is reused by a request that is given up (its buffer
/// kept as the orphan until it completes). The late router must not take that orphan:
/// the buffer would return to its pool while its request may still use it.
#[test]
fn a_late_router_leaves_the_next_requests_orphan() {
    model(|| {
        let w = Arc::new(Waiters::new(2, 0));
        let (i, ud) = w.alloc().unwrap();
        let waker = std::task::Waker::noop().clone();
        assert!(w.register(i, sbpf_ring::waiters::Waiter::Task(waker)));
        let router = {
            let w = Arc::clone(&w);
            thread::spawn(move || {
                w.complete(&Cqe {
                    user_data: ud,
                    res: 1,
                    ..Cqe::default()
                });
            })
        };
        while w.take(i).is_none() {
            thread::yield_now();
        }
        let (j, _) = w.alloc().unwrap();
        assert_eq!(i, j, "the freed slot is reused");
        let dropped = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        w.abandon(j, Some(Box::new(DropFlag(Arc::clone(&dropped)))));
        router.join().unwrap();
        assert!(
            !dropped.load(loom::sync::atomic::Ordering::SeqCst),
            "the orphan of a request in flight was dropped"
        );
    });
}
